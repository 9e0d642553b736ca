"""Pushing as a phone does: raw WatermelonDB records and the push call."""

from __future__ import annotations

import json
import secrets
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.sync.wire import date_to_ms, to_ms
from tests.conftest import Api
from tests.factories import valid_id
from tests.sync.helpers import V1, pull

PUSH = V1 + "/sync/push"
ALPHABET = string.ascii_letters + string.digits


def wid() -> str:
    """A WatermelonDB id: 16 characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(ALPHABET) for _ in range(16))


def push_raw(api: Api, user: str, changes: Any, last: int | str | None, *, device: str = "phone-0001",
             headers: dict[str, str] | None = None, wrap: bool = True, **kwargs: Any) -> Any:
    params = {} if last is None else {"last_pulled_at": last}
    body = {"changes": changes} if wrap else changes
    return api.as_(user, "POST", PUSH, params=params, content=json.dumps(body),
                   headers={"X-Device-Id": device, "X-App-Version": "1.0.0", "Content-Type": "application/json",
                            **(headers or {})}, **kwargs)


def push(api: Api, user: str, changes: Any, last: int, **kwargs: Any) -> dict[str, Any]:
    response = push_raw(api, user, changes, last, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cursor(api: Api, user: str, device: str = "phone-0001", last: int | None = None) -> int:
    return int(pull(api, user, last, device=device)["timestamp"])


def resident_raw(record_id: str, dwelling: str, serial: str, **extra: Any) -> dict[str, Any]:
    """A resident created on the phone (as WatermelonDB sends it with sendCreatedAsUpdated)."""
    return {"id": record_id, "_status": "created", "_changed": "", "name": "手机登记", "id_number":
            valid_id("41170219910101" + serial), "sex": None, "birth_date": None, "dwelling_id": dwelling,
            "community_id": None, "hukou_code": "411702", "arrival_date": date_to_ms(date(2026, 9, 1)),
            "marital_status": "unknown", "phone": "+86 138 0013 8000", "status": "REGISTERED", "key_person": False,
            "created_at": 1_790_000_000_000, "updated_at": 1_790_000_000_000, "version": 1, **extra}


def visit_raw(record_id: str, resident_id: str, **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return {"id": record_id, "_status": "created", "_changed": "", "resident_id": resident_id, "mode": "phone",
            "purpose": "routine", "outcome": "met", "started_at": to_ms(start),
            "ended_at": to_ms(start + timedelta(minutes=5)), "notes": "[]", "lat": None, "lng": None,
            "worker_id": "ignored", "flags": "[]", **extra}


def delivery_raw(record_id: str, visit_id: str, code: str = "education", quantity: int = 1) -> dict[str, Any]:
    return {"id": record_id, "_status": "created", "_changed": "", "visit_id": visit_id, "item_code": code,
            "quantity": quantity, "notes": "[]", "item_id": None}


def changes(**tables: dict[str, list[Any]]) -> dict[str, dict[str, list[Any]]]:
    return {name: {"created": t.get("created", []), "updated": t.get("updated", []), "deleted": t.get("deleted", [])}
            for name, t in tables.items()}


def codes(body: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["code"] for r in body["rejected"]}
