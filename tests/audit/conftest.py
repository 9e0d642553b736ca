"""Helpers for the audit tests: raw rows, an attacker's connection, the auditor's view."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from tests.conftest import BACKEND, TAMPERED, Api

EVENTS = "/api/v1/audit/events"
VERIFY = "/api/v1/audit/verify"


def raw_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every audit row as stored, every column as text (to search for leaked values)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY id"))]


def events(api: Api, **params: Any) -> list[dict[str, Any]]:
    """The auditor's view of the log (everything, newest first, within one page)."""
    response = api.as_("auditor", "GET", EVENTS, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@contextmanager
def attacker(engine: Engine) -> Iterator[Connection]:
    """A connection that gets past the append-only guard, as someone with the database file (SQLite) or
    superuser rights (PostgreSQL) would; the application's own connections never do this."""
    TAMPERED.add(id(engine))
    with engine.begin() as conn:
        if BACKEND == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        yield conn


@pytest.fixture()
def activity(api: Api, world: Any) -> dict[str, Any]:
    """A little of everything the log must hold: logins good and bad, a refresh and its reuse, a write,
    denied requests (403 and 401)."""
    c = api.client
    assert c.post("/api/v1/auth/login", json={"username": "worker1", "password": "Wrong-Pass-123"}).status_code == 401
    assert c.post("/api/v1/auth/login", json={"username": "nobody", "password": "Wrong-Pass-123"}).status_code == 401
    tokens = api.login("worker2")
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 200
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert api.as_("worker1", "GET", "/api/v1/users").status_code == 403
    assert c.get("/api/v1/users").status_code == 401
    uid = world.users["worker3"]
    user = api.as_("admin", "GET", f"/api/v1/users/{uid}").json()
    response = api.as_("admin", "PATCH", f"/api/v1/users/{uid}",
                       json={"display_name": "Activity Name", "version": user["version"]})
    assert response.status_code == 200, response.text
    return {"patched": uid}
