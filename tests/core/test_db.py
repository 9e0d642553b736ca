"""The request's unit of work on SQLite: a write transaction takes the write lock at its first statement
(BEGIN IMMEDIATE), so a read-then-write can never fail half-way on a stale snapshot; a read begins deferred."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from app.core.db import writing
from app.core.deps import SessionDep


def _in_transaction(session: Session) -> bool:
    return bool(session.connection().connection.driver_connection.in_transaction)  # type: ignore[union-attr]


def test_write_sessions_begin_immediate_and_reads_deferred(engine: Engine) -> None:
    """A write takes SQLite's write lock at its first statement; a snapshot read begins a (deferred) read
    transaction; a request's statement-by-statement read holds no transaction at all."""
    import sqlite3

    from app.core.db import UnitOfWork, reading, statement_reads

    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL takes row locks where it writes; there is no database-wide write lock to take")
    with Session(writing(engine)) as writer:
        writer.execute(select(1))
        assert _in_transaction(writer)
        other = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # the write lock is taken already
        finally:
            other.close()
        writer.rollback()
    with Session(reading(engine)) as snapshot:
        snapshot.execute(select(1))
        assert _in_transaction(snapshot)
    with Session(statement_reads(engine)) as reads:
        reads.execute(select(1))
        assert not _in_transaction(reads)
    uow = UnitOfWork(engine, write=False, snapshot=False)
    try:
        uow.session.execute(select(1))
        assert not _in_transaction(uow.session)
        uow.snapshot()
        assert _in_transaction(uow.session)
    finally:
        uow.close()


def _seq(session: Session) -> int:
    return int(session.execute(text("SELECT seq FROM sync_counter WHERE id = 1")).scalar_one())


def _bump(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE sync_counter SET seq = seq + 1 WHERE id = 1"))


def test_a_requests_reads_see_each_commit_until_it_asks_for_a_snapshot(engine: Engine) -> None:
    """On both databases a request's reads run statement by statement (no BEGIN, no ROLLBACK: PostgreSQL in
    AUTOCOMMIT), each seeing the latest commit; after `snapshot()` they read one state, whatever commits
    meanwhile. The connection goes back to the pool as it came: the next unit of work writes in a transaction."""
    from app.core.db import UnitOfWork

    uow = UnitOfWork(engine, write=False, snapshot=False)
    try:
        first = _seq(uow.session)
        _bump(engine)
        assert _seq(uow.session) == first + 1  # statement by statement: the commit is seen at once
        uow.snapshot()
        uow.snapshot()  # a second call keeps the snapshot it has
        seen = _seq(uow.session)
        _bump(engine)
        assert _seq(uow.session) == seen  # one snapshot: the later commit is not
    finally:
        uow.close()
    with Session(engine) as after:
        assert _seq(after) == seen + 1
    writer = UnitOfWork(engine, write=True)
    try:
        _seq(writer.session)
        assert _in_transaction(writer.session) if engine.dialect.name == "sqlite" else \
            not writer.session.connection().connection.driver_connection.autocommit  # type: ignore[union-attr]
    finally:
        writer.close()


def test_a_read_keeps_the_statements_postgresql_prepared_on_its_connection(engine: Engine) -> None:
    """psycopg prepares a statement run five times on a connection, and forgets them all at a ROLLBACK: a read's
    snapshot ends with COMMIT, so the connection's next requests skip the planning."""
    from sqlalchemy import create_engine

    from app.core.db import UnitOfWork

    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are psycopg's (PostgreSQL)")
    one = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    try:
        for _ in range(6):
            uow = UnitOfWork(one, write=False, snapshot=False)
            uow.snapshot()
            _seq(uow.session)
            uow.finish()
        uow = UnitOfWork(one, write=False, snapshot=False)
        try:
            prepared = uow.session.execute(text(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM sync_counter%'")).scalar_one()
        finally:
            uow.close()
    finally:
        one.dispose()
    assert prepared == 1


# --- one connection per request ----------------------------------------------------------------------------


def _second_checkout_app() -> Any:
    """A route that holds the request's connection and asks the pool for another: what deadlocks under load."""
    from fastapi import FastAPI

    from app.core.db import unit_of_work
    from app.core.middleware import RequestContextMiddleware

    app = FastAPI()
    app.add_middleware(RequestContextMiddleware)

    @app.get("/nested")
    def nested(session: SessionDep) -> dict[str, int]:
        session.execute(select(1))  # the request now holds a pooled connection
        with unit_of_work() as side:  # … and asks for a second one
            side.execute(select(1))
        return {"ok": 1}

    @app.get("/single")
    def single(session: SessionDep) -> dict[str, int]:
        session.execute(select(1))
        return {"ok": 1}

    return app


def test_a_second_checkout_inside_a_request_fails_loudly(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from app.core.db import NestedCheckout

    client = TestClient(_second_checkout_app(), raise_server_exceptions=True)
    assert client.get("/single").json() == {"ok": 1}
    with pytest.raises(NestedCheckout):
        client.get("/nested")
    assert client.get("/single").json() == {"ok": 1}  # the guard's count recovered: nothing leaked


def test_read_request_defers_its_writes_until_its_connection_is_back(api: Any, world: Any, engine: Engine) -> None:
    """A read that must write (the session touch after a minute, an audited read) never holds two connections:
    the guard is on for every test engine, and the write still happens, after the read."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.auth.models import AuthSession
    from app.core.types import utcnow
    from app.ledger.models import AuditEvent

    resident = api.as_("worker1", "GET", "/api/v1/residents", params={"limit": 1}).json()["items"][0]
    sessions = AuthSession.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(sessions).values(last_seen_at=utcnow() - timedelta(minutes=5)))
    response = api.as_("worker1", "GET", f"/api/v1/residents/{resident['id']}")
    assert response.status_code == 200
    with Session(engine) as session:
        seen = session.execute(select(AuthSession.last_seen_at)).scalars().all()
        assert seen and all(utcnow() - at < timedelta(minutes=1) for at in seen)
        reads = list(session.execute(select(AuditEvent.action).where(AuditEvent.target_id == resident["id"]))
                     .scalars())
        assert any(action.startswith("resident.read.") for action in reads), reads


def test_pooled_postgresql_connections_the_server_ended_are_replaced_at_checkout(engine: Engine) -> None:
    """A restarted server ends every idle pooled connection. The pool checks each one at checkout without a round
    trip (a readable idle socket is the server's FATAL message and end-of-file) and hands out a live one, so
    the first request after the restart needs neither a `SELECT 1` nor a 503; live connections are kept."""
    from sqlalchemy import create_engine

    from app.core.db import create_db_engine

    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server to lose")
    app_engine = create_db_engine(engine.url.render_as_string(hide_password=False))
    killer = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with app_engine.connect() as first, app_engine.connect() as second:  # two pooled connections
            pids = {first.execute(text("SELECT pg_backend_pid()")).scalar_one(),
                    second.execute(text("SELECT pg_backend_pid()")).scalar_one()}
        with app_engine.connect() as conn:  # an idle connection stays (nothing to read on it)
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() in pids
        with killer.connect() as other:
            for pid in pids:
                other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})  # waits for its end
        with app_engine.connect() as first, app_engine.connect() as second:
            fresh = {first.execute(text("SELECT pg_backend_pid()")).scalar_one(),
                     second.execute(text("SELECT pg_backend_pid()")).scalar_one()}
        assert len(fresh) == 2 and not fresh & pids
    finally:
        killer.dispose()
        app_engine.dispose()


def test_a_pooled_postgresql_connection_with_something_to_read_is_kept_when_it_is_alive(engine: Engine) -> None:
    """A readable idle socket is read before it is judged: a notification (like a notice, or TLS housekeeping)
    leaves a live connection in use rather than costing a reconnect."""
    import select

    from app.core.db import create_db_engine

    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server to lose")
    app_engine = create_db_engine(engine.url.render_as_string(hide_password=False))
    try:
        with app_engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(text("LISTEN pool_check"))
            conn.commit()
            socket = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        with engine.connect() as other:
            other.execute(text("NOTIFY pool_check"))
            other.commit()
        assert select.select([socket], [], [], 10)[0], "the notification never reached the pooled connection"
        with app_engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
    finally:
        app_engine.dispose()
