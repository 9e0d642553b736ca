"""Helpers for the workflow tests (transfers, duplicates, corrections)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api
from tests.db import rows

RESIDENTS = "/api/v1/residents"


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


