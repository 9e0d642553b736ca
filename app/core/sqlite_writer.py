"""SQLite's one writer: the process's write lock for a file, the connection that queues on it, and the engine's
transaction control (BEGIN issued by us, straight to the driver).

SQLite lets one writer in at a time. Writers of one process queue on a lock for the file before BEGIN IMMEDIATE
(`WriterConnection`); a read runs statement by statement or in a deferred read transaction; the first reads of a
write that begins later refuse writes on the connection until it begins (`WRITES_LATER`, app.core.db).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

IMMEDIATE = "app_begin_immediate"
# A read whose statements each see the latest commit, with no BEGIN (and so no ROLLBACK) of its own;
# `UnitOfWork.snapshot()` turns it into one snapshot when the reads must agree with each other.
STATEMENT_READS = "app_statement_reads"
# The reads of a write that has not begun yet (`UnitOfWork(reads_first=True)`): SQLite refuses any write on the
# connection (PRAGMA query_only) until `UnitOfWork.begin_write()`, so a write made too early fails loudly
# instead of committing on its own, outside the unit of work's transaction.
WRITES_LATER = "app_writes_later"


SQLITE_WAIT_SECONDS = 30  # how long a write waits for SQLite's write lock (then 503 service_busy)
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def write_lock_for(database: str) -> threading.Lock | None:
    """The process's lock for writing to one SQLite file (None for an in-memory database: one per connection)."""
    if not database or database == ":memory:":
        return None
    with _write_locks_guard:
        return _write_locks.setdefault(str(Path(database).resolve()), threading.Lock())


class WriterConnection(sqlite3.Connection):
    """A connection whose write transactions queue on the process's lock for the file before BEGIN IMMEDIATE.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps 1, 2, 5, … up to
    100 ms between tries. Sixteen phones posting visits at once spent most of their time asleep there: more
    connections made fewer visits a second than one, and the slowest waited seconds (bench/floor.py). Queued on
    a lock, the next writer starts the moment the last one commits. Other processes (`--workers 2`, the CLI)
    still meet in SQLite's busy handler, as before."""

    write_lock: threading.Lock | None = None
    holds_write_lock = False
    refuses_writes = False

    def refuse_writes(self, refuse: bool) -> None:
        """PRAGMA query_only: while it is on, any write on this connection fails (SQLITE_READONLY)."""
        if refuse != self.refuses_writes:
            self.execute(f"PRAGMA query_only={'ON' if refuse else 'OFF'}")
            self.refuses_writes = refuse

    def begin_write(self) -> None:
        self.refuse_writes(False)
        lock = self.write_lock
        if lock is not None and not self.holds_write_lock:
            if not lock.acquire(timeout=SQLITE_WAIT_SECONDS):
                raise sqlite3.OperationalError("database is locked")  # errors.transient: 503 service_busy
            self.holds_write_lock = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release_write_lock()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self.holds_write_lock and self.write_lock is not None:
            self.holds_write_lock = False
            self.write_lock.release()


def configure_sqlite(engine: Engine, write_lock: threading.Lock | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.write_lock = write_lock
        # Take transaction control from the driver so BEGIN is ours to issue (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_SECONDS * 1000}")
        # LIKE as on PostgreSQL (case-sensitive), which also lets prefix matches use indexes.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        # Straight to the driver: nothing of SQLAlchemy's statement machinery is needed for a BEGIN.
        driver = conn.connection.driver_connection
        if options.get(STATEMENT_READS, False):  # the driver stays in autocommit: each statement is its own read
            driver.refuse_writes(options.get(WRITES_LATER, False))
        elif options.get(IMMEDIATE, False):
            driver.begin_write()
        else:
            driver.refuse_writes(False)
            driver.execute("BEGIN")

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if getattr(dbapi_connection, "refuses_writes", False):  # a write that never began: writable again
            dbapi_connection.refuse_writes(False)
