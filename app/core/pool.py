"""The pool's checks of a PostgreSQL connection (`app.core.db.create_db_engine` installs them)."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.pq import ConnStatus
from sqlalchemy.exc import DisconnectionError


def check_alive(driver: Any, record: Any, proxy: Any) -> None:
    """A pooled PostgreSQL connection is checked before a request gets it, without a round trip (SQLAlchemy's
    `pool_pre_ping` sends a `SELECT 1` at every checkout: one more round trip for every request).

    An idle connection has nothing to read. A server that restarted, or ended the backend, has left its FATAL
    message and its end-of-file on the socket: what is readable is read until nothing is, and a connection that
    libpq then finds closed is dead; anything else (a notification, TLS housekeeping) leaves it in use.
    `DisconnectionError` makes the pool drop a dead one and check out another, up to three times. A connection
    that dies silently (a network cut) is found by its first statement, whose disconnect error invalidates the
    pool (SQLAlchemy), and the request answers 503 `service_busy` (docs/architecture.md)."""
    if driver.closed or driver.broken:
        raise DisconnectionError("connection closed")
    for _ in range(3):  # the server's FATAL message, then its end-of-file: libpq reads them one at a time
        if not select.select([driver.fileno()], [], [], 0)[0]:
            return
        try:
            driver.pgconn.consume_input()
        except psycopg.OperationalError:
            raise DisconnectionError("the server ended the connection") from None
        if driver.pgconn.status != ConnStatus.OK:
            raise DisconnectionError("the server ended the connection")
    raise DisconnectionError("the server keeps sending on an idle connection")
