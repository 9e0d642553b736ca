"""The framework's floor (bench/floor.py): a bare FastAPI app on the app's database, through the bare driver.

    FLOOR_DATABASE_URL=sqlite:///bench/out/floor.db python -m uvicorn floor_app:app --app-dir bench

Two `def` endpoints, run in the thread pool as the app's routes are, each on a connection of its own thread
(opened once, kept):
- `GET /floor/residents/{id}`: one resident by primary key, every column, returned as JSON;
- `POST /floor/inserts`: the JSON body stored as one row of `floor_scratch`, one durable commit (SQLite: WAL,
  `synchronous=FULL`, as the app connects; PostgreSQL: the server's default `fsync`/`synchronous_commit`).
No authentication, no scope, no audit: what any request on this stack costs at least.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from sqlalchemy.engine import make_url

URL = make_url(os.environ.get("FLOOR_DATABASE_URL", "sqlite:///bench/out/floor.db"))
SQLITE = URL.get_backend_name() == "sqlite"
MARK = "?" if SQLITE else "%s"
SCRATCH = ("CREATE TABLE IF NOT EXISTS floor_scratch (id VARCHAR(32) PRIMARY KEY, created_at VARCHAR(40) NOT NULL, "
           "body TEXT NOT NULL)")
_local = threading.local()


def _connect() -> Any:
    if SQLITE:
        conn = sqlite3.connect(URL.database or "", isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    import psycopg

    return psycopg.connect(URL.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True)


def connection() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect()
    return conn


app = FastAPI(title="floor", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
def healthz() -> dict[str, str]:  # how the bench knows the server is up
    return {"status": "ok"}


@app.get("/floor/residents/{resident_id}")
def read_resident(resident_id: str) -> dict[str, Any]:
    cursor = connection().cursor()
    try:
        cursor.execute(f"SELECT * FROM residents WHERE id = {MARK}", (resident_id,))  # noqa: S608
        row = cursor.fetchone()
        names = [d[0] for d in cursor.description]
    finally:
        cursor.close()
    if row is None:
        raise HTTPException(404)
    return dict(zip(names, row, strict=True))


@app.post("/floor/inserts", status_code=201)
def insert(payload: dict[str, Any] = Body(...)) -> dict[str, str]:
    row_id = uuid.uuid4().hex
    connection().execute(f"INSERT INTO floor_scratch (id, created_at, body) VALUES ({MARK}, {MARK}, {MARK})",  # noqa: S608
                         (row_id, datetime.now(UTC).isoformat(), json.dumps(payload)))
    return {"id": row_id}
