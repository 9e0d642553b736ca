"""Helpers for the workflow tests (transfers, duplicates, corrections)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api, World
from tests.db import rows
from tests.factories import dwelling_id, id_number, register_resident

RESIDENTS = "/api/v1/residents"


def listed(api: Api, user: str, url: str, **params: Any) -> list[dict[str, Any]]:
    """The items of a list endpoint (one big page; the demo world may hold rows of its own)."""
    response = api.as_(user, "GET", url, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def listed_ids(api: Api, user: str, url: str, **params: Any) -> set[str]:
    return {item["id"] for item in listed(api, user, url, **params)}


def flags_of(engine: Engine, *resident_ids: str) -> list[dict[str, Any]]:
    """Duplicate flags touching any of these residents."""
    ids = set(resident_ids)
    return [
        f
        for f in rows(engine, "SELECT * FROM duplicate_flags ORDER BY id")
        if f["resident_a"] in ids or f["resident_b"] in ids
    ]


ID_A = id_number(seq="002")
ID_B = id_number(seq="004")  # same person, mistyped sequence: same name, birth date and phone


def pair(api: Api, world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two records in c1 of one person; the second typed with another ID and phone formatting."""
    a = register_resident(api, "worker1", dwelling_id(world), id_number=ID_A)
    b = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=ID_B, phone="+86 138 0013 8000")
    return a, b


def merge(api: Api, keep: dict[str, Any], merged: dict[str, Any], user: str = "sup_street", **over: Any) -> Any:
    payload = {
        "merged_id": merged["id"],
        "reason": "duplicate_registration",
        "version_keep": keep["version"],
        "version_merged": merged["version"],
        **over,
    }
    return api.as_(user, "POST", f"{RESIDENTS}/{keep['id']}/merge", json=payload)
