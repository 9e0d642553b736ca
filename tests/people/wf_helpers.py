"""Helpers for the workflow tests (transfers, duplicates, corrections)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from app.people.rules import check_char
from tests.conftest import Api, World
from tests.db import rows

RESIDENTS = "/api/v1/residents"


def id_number(birth: str = "19900315", seq: str = "002", area: str = "411602") -> str:
    """A valid 18-digit ID (even sequence = female, odd = male)."""
    first17 = area + birth + seq
    return first17 + check_char(first17)


def resident_body(world: World, community: str = "c1", dwelling: int = 0, **over: Any) -> dict[str, Any]:
    c = world.community(community)
    data: dict[str, Any] = {
        "name": "张丽",
        "id_number": id_number(),
        "phone": "13800138000",
        "hukou_code": "411602",
        "arrival_date": "2026-01-05",
        "dwelling_id": world.dwellings[c["id"]][dwelling],
    }
    data.update(over)
    return data


def register(api: Api, user: str, world: World, community: str = "c1", **over: Any) -> dict[str, Any]:
    response = api.as_(user, "POST", RESIDENTS, json=resident_body(world, community, **over))
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_events(engine: Engine, action: str) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM audit_events WHERE action = :a ORDER BY id", a=action)


def all_audit_text(engine: Engine) -> str:
    """Everything the audit log holds, as one string, to prove no personal value leaked into it."""
    return "\n".join(" ".join(str(v) for v in row.values()) for row in rows(engine, "SELECT * FROM audit_events"))


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


