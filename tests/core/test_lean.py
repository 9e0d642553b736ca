"""Lean statements (app/core/lean.py) behave as `Connection.execute` does: the same values stored and read back
(the columns' own conversions), the same errors, inside the same transaction, seen by the same listeners; on both
databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from app.core.db import create_db_engine
from app.core.lean import Lean, run
from app.core.queries import ByKey
from app.core.types import UTCDateTime

META = MetaData()
SCRATCH = Table("lean_scratch", META, Column("id", String(32), primary_key=True), Column("at", UTCDateTime()),
                Column("day", Date()), Column("n", Integer()), Column("lat", Float()))
INSERT = Lean(insert(SCRATCH).values(id=bindparam("id"), at=bindparam("at"), day=bindparam("day"),
                                     n=bindparam("n"), lat=bindparam("lat")))
# Float: on PostgreSQL its result processor depends on the type the driver reports (a coordinate, in the app).
BY_ID = ByKey(lambda key: select(SCRATCH.c.id, SCRATCH.c.at, SCRATCH.c.day, SCRATCH.c.n, SCRATCH.c.lat)
              .where(key(SCRATCH.c.id)), lean=True)
AFTER = Lean(select(SCRATCH.c.id).where(SCRATCH.c.at > bindparam("since", type_=UTCDateTime())).order_by(SCRATCH.c.id))
AT = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture()
def scratch(engine: Engine) -> Iterator[Engine]:
    META.create_all(engine)
    try:
        yield engine
    finally:
        META.drop_all(engine)


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "at": AT + timedelta(minutes=i), "day": date(2026, 12, i + 1), "n": i, "lat": 34.75 + i}
            for i in range(n)]


def test_values_round_trip_as_through_sqlalchemy(scratch: Engine) -> None:
    with scratch.begin() as conn:
        INSERT.many(conn, _rows(3))
    with scratch.connect() as conn:
        core = conn.execute(select(SCRATCH).order_by(SCRATCH.c.id)).all()
        lean = [BY_ID(["r0"])[0].rows(conn, {"among_key": f"r{i}"})[0] for i in range(3)]
        assert [tuple(r) for r in lean] == [tuple(r) for r in core]
        first = lean[0]
        assert first.at == AT and first.at.tzinfo is not None and first.at.utcoffset() == timedelta(0)
        assert first.day == date(2026, 12, 1) and first.n == 0 and first.id == "r0"
        assert first.lat == 34.75 and isinstance(first.lat, float)
        # A bound datetime goes through the column type's conversion too (stored as UTC text on SQLite).
        assert [r.id for r in AFTER.rows(conn, {"since": AT + timedelta(seconds=30)})] == ["r1", "r2"]
        assert AFTER.first(conn, {"since": AT + timedelta(hours=1)}) is None
        # Lists of keys: the same rows and values (SQLite: the IN list written here; PostgreSQL: one array).
        assert sorted(tuple(r) for r in run(conn, *BY_ID(["r2", "r0", "r9"]))) == [tuple(core[0]), tuple(core[2])]
        # Another expanding list (not ByKey's): through Core, the same rows.
        assert Lean(select(SCRATCH.c.n).where(SCRATCH.c.id.in_(["r1", "r2"])).order_by(SCRATCH.c.n)).rows(conn) \
            == [(1,), (2,)]
        assert Lean(text("SELECT count(*) FROM lean_scratch")).scalar(conn) == 3
        with pytest.raises(LookupError):
            Lean(select(SCRATCH.c.id)).scalar(conn)


def test_errors_are_sqlalchemys_and_the_transaction_is_the_connections(scratch: Engine) -> None:
    with scratch.begin() as conn:
        INSERT.many(conn, _rows(1))
    with pytest.raises(IntegrityError), scratch.begin() as conn:
        INSERT.rows(conn, _rows(1)[0])
    with scratch.connect() as conn:
        conn.begin()
        INSERT.rows(conn, {**_rows(2)[1]})
        assert Lean(text("SELECT count(*) FROM lean_scratch")).scalar(conn) == 2
        conn.rollback()  # the lean insert was in the connection's transaction
        assert Lean(text("SELECT count(*) FROM lean_scratch")).scalar(conn) == 1


def test_listeners_see_lean_statements(scratch: Engine) -> None:
    seen: list[tuple[str, bool]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        seen.append((statement, many))

    event.listen(scratch, "before_cursor_execute", listen)
    try:
        with scratch.begin() as conn:
            INSERT.many(conn, _rows(2))
            BY_ID(["r1"])[0].rows(conn, {"among_key": "r1"})
    finally:
        event.remove(scratch, "before_cursor_execute", listen)
    assert [many for _, many in seen] == [True, False]
    assert seen[0][0].startswith("INSERT INTO lean_scratch") and "WHERE lean_scratch.id =" in seen[1][0]


def test_a_lost_postgresql_connection_is_invalidated(engine: Engine) -> None:
    """The server ends the connection (a restart, a failover): the lean statement fails as SQLAlchemy's own would,
    with the connection invalidated, and the pool's next connection works (the app answers 503 meanwhile)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server to lose")
    app_engine = create_db_engine(engine.url.render_as_string(hide_password=False))
    killer = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with app_engine.connect() as conn:
            pid = Lean(text("SELECT pg_backend_pid()")).scalar(conn)
            with killer.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(OperationalError) as failed:
                Lean(text("SELECT 1")).rows(conn)
            assert failed.value.connection_invalidated
        with app_engine.connect() as conn:
            assert Lean(text("SELECT 1")).scalar(conn) == 1
    finally:
        killer.dispose()
        app_engine.dispose()


def test_utc_text_matches_on_sqlite(scratch: Engine) -> None:
    """On SQLite the stored text is what the ORM stores (the bulk writer and lean binds agree with it)."""
    if scratch.dialect.name != "sqlite":
        pytest.skip("PostgreSQL stores timestamptz")
    with scratch.begin() as conn:
        INSERT.many(conn, _rows(1))
        stored = conn.execute(text("SELECT at FROM lean_scratch")).scalar_one()
    assert stored == AT.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def test_lists_of_keys_run_on_the_driver_whatever_their_length(scratch: Engine) -> None:
    """ByKey's list form is one statement, compiled once: a list of 2 or of 3,000 keys runs as one driver
    statement (no Core execution), finds exactly the listed rows, and each list length has its own text; an
    empty list matches nothing; a None among the keys matches nothing."""
    with scratch.begin() as conn:
        INSERT.many(conn, _rows(5))
    core: list[str] = []
    driver: list[str] = []
    event.listen(scratch, "before_execute", lambda *args: core.append("execute"))
    event.listen(scratch, "before_cursor_execute", lambda _c, _cur, sql, *rest: driver.append(sql))
    wanted = ["r4", "r1"]
    with scratch.connect() as conn:
        for keys in (wanted, [*wanted, None], [*(f"absent-{n}" for n in range(3_000)), *wanted]):
            statement, params = BY_ID(keys)
            assert statement is BY_ID(["a", "b"])[0]  # one statement object for every list
            assert sorted(r.id for r in run(conn, statement, params)) == ["r1", "r4"]
        assert core == [] and len(driver) == 3
        if scratch.dialect.name == "sqlite":  # the placeholders written per length
            assert [sql.count("?") for sql in driver] == [2, 3, 3_002]
        else:  # one array, whatever the length
            assert len({sql for sql in driver}) == 1 and "ANY" in driver[0]
        assert run(conn, *BY_ID([])) == []
        assert run(conn, *BY_ID([None, None])) == []
