"""Engine and unit of work.

One unit of work per request: `get_session` opens a transaction, the route runs, pending audit events are
sealed into the hash chain, and the transaction commits before the response is sent. Services flush,
never commit. On SQLite, write requests start with BEGIN IMMEDIATE so a read-then-write can never fail
half-way on a stale snapshot; read requests run in a deferred (read-only) transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.core.config import get_settings

IMMEDIATE = "app_begin_immediate"
_engine_override: Engine | None = None


def use_engine(engine: Engine | None) -> None:
    """Point the application at another engine (tests give each test its own database)."""
    global _engine_override
    _engine_override = engine


def get_engine(url: str | None = None) -> Engine:
    if url is None and _engine_override is not None:
        return _engine_override
    return _shared_engine(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _shared_engine(url: str) -> Engine:
    return create_db_engine(url)


def create_db_engine(url: str) -> Engine:
    settings = get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size,
                         pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to issue (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # LIKE as on PostgreSQL (case-sensitive), which also lets prefix matches use indexes.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writing(engine: Engine) -> Engine:
    """The engine (same pool) whose transactions begin as writes: BEGIN IMMEDIATE on SQLite; PostgreSQL ignores it."""
    return engine.execution_options(**{IMMEDIATE: True})


def begin(session: Session, *, write: bool) -> None:
    """Start the session's transaction; `write=True` takes SQLite's write lock up front."""
    session.connection(execution_options={IMMEDIATE: True} if write else None)


@contextmanager
def unit_of_work(*, write: bool = True, engine: Engine | None = None) -> Iterator[Session]:
    """A transaction outside a request (CLI, jobs, side transactions): commit on success."""
    from app.audit.service import seal_pending

    with Session(engine or get_engine(), expire_on_commit=False) as session:
        begin(session, write=write)
        try:
            yield session
            seal_pending(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
