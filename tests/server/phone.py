"""A phone and an office talking to a real server over HTTP (helpers of the real-server tests)."""

from __future__ import annotations

import csv
import io
import json
import secrets
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.core.db import create_db_engine
from app.people.rules import check_char
from app.sync.wire import to_ms
from tests.server.harness import CLIENT_TIMEOUT_S

V1 = "/api/v1"
ALPHABET = string.ascii_letters + string.digits


def wid() -> str:
    """A WatermelonDB id: 16 characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(ALPHABET) for _ in range(16))


def login(base: str, username: str, password: str) -> dict[str, Any]:
    response = httpx.post(base + V1 + "/auth/login", json={"username": username, "password": password},
                          timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return dict(response.json())


def sync_headers(token: str, device: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Device-Id": device, "X-App-Version": "1.0.0"}


def pull(base: str, token: str, device: str, last: int | None = None) -> dict[str, Any]:
    response = httpx.get(base + V1 + "/sync/pull", headers=sync_headers(token, device), timeout=CLIENT_TIMEOUT_S,
                         params={"schema_version": 1, "last_pulled_at": "null" if last is None else last})
    assert response.status_code == 200, response.text
    return dict(response.json())


def acknowledged_cursor(base: str, token: str, device: str) -> int:
    """A first pull, then the pulls that acknowledge the scope it sent: the cursor a settled phone holds."""
    cursor = int(pull(base, token, device)["timestamp"])
    for _ in range(2):
        cursor = int(pull(base, token, device, cursor)["timestamp"])
    return cursor


def push(base: str, token: str, device: str, last: int, changes: dict[str, Any],
         timeout: float = CLIENT_TIMEOUT_S) -> httpx.Response:
    return httpx.post(base + V1 + "/sync/push", params={"last_pulled_at": last}, content=json.dumps(changes),
                      headers={**sync_headers(token, device), "Content-Type": "application/json"}, timeout=timeout)


def visits_changes(residents: list[str], n: int) -> tuple[dict[str, Any], list[str], list[str]]:
    """`n` new phone visits with one service delivery each, as WatermelonDB pushes them (sendCreatedAsUpdated)."""
    start = datetime.now(UTC) - timedelta(hours=2)
    visits, deliveries = [], []
    for i in range(n):
        vid = wid()
        began = start + timedelta(seconds=i)
        visits.append({"id": vid, "_status": "created", "_changed": "", "resident_id": residents[i % len(residents)],
                       "mode": "phone", "purpose": "routine", "outcome": "met", "started_at": to_ms(began),
                       "ended_at": to_ms(began + timedelta(minutes=5)), "notes": "[]", "lat": None, "lng": None})
        deliveries.append({"id": wid(), "_status": "created", "_changed": "", "visit_id": vid,
                           "item_code": "education", "quantity": 1, "notes": "[]", "item_id": None})
    changes = {"visits": {"created": [], "updated": visits, "deleted": []},
               "service_deliveries": {"created": [], "updated": deliveries, "deleted": []}}
    return changes, [v["id"] for v in visits], [d["id"] for d in deliveries]


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def residents_of(url: str, community_id: str) -> list[str]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT id FROM residents WHERE community_id = :c AND status = 'REGISTERED' "
                                          "ORDER BY id"), {"c": community_id}).scalars())
    finally:
        engine.dispose()


def count_in(url: str, table: str, column: str, values: list[str]) -> int:
    """How many rows of `table` have `column` in `values` (chunked)."""
    engine = create_db_engine(url)
    total = 0
    try:
        with engine.connect() as conn:
            for start in range(0, len(values), 500):
                chunk = values[start:start + 500]
                marks = ", ".join(f":v{i}" for i in range(len(chunk)))
                total += conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})"),  # noqa: S608
                                      {f"v{i}": v for i, v in enumerate(chunk)}).scalar_one()
    finally:
        engine.dispose()
    return total


def id_numbers(n: int, area: str = "411602") -> list[str]:
    """`n` distinct valid ID numbers no demo resident has (sequence 100–599: the demo's are 600–999)."""
    out: list[str] = []
    day = date(1980, 1, 1)
    while len(out) < n:
        for seq in range(100, 600):
            first17 = f"{area}{day:%Y%m%d}{seq:03d}"
            out.append(first17 + check_char(first17))
            if len(out) == n:
                break
        day += timedelta(days=1)
    return out


def import_csv(numbers: list[str], dwelling_id: str) -> bytes:
    """A register in the import template's columns (CSV, UTF-8 with BOM): one person per ID number."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["姓名", "公民身份号码", "户籍地代码", "到达日期", "住所编号"])
    for i, number in enumerate(numbers):
        writer.writerow([f"导入{i:05d}", number, "411602", "2026-09-01", dwelling_id])
    return out.getvalue().encode("utf-8-sig")
