"""SQLite writers of one process queue on the process's lock for the file (`sqlite_writer.WriterConnection`)
before BEGIN IMMEDIATE, instead of sleeping in SQLite's busy handler; the lock is given back however the
transaction ends. A write whose reads come first takes it only when it begins."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.core.db import UnitOfWork, writing
from app.core.sqlite_writer import WriterConnection


@pytest.fixture()
def lock(engine: Engine) -> threading.Lock:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, WriterConnection) and driver.write_lock is not None
        return driver.write_lock


def held(lock: threading.Lock) -> bool:
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


@pytest.mark.parametrize("end", ["commit", "rollback", "close", "invalidate"])
def test_a_write_holds_the_lock_until_its_transaction_ends(engine: Engine, lock: threading.Lock, end: str) -> None:
    session = Session(writing(engine))
    session.execute(select(1))
    assert held(lock)
    if end == "commit":
        session.commit()
    elif end == "rollback":
        session.rollback()
    elif end == "invalidate":
        session.connection().invalidate()
    session.close()
    assert not held(lock)


def test_a_read_takes_no_lock(engine: Engine, lock: threading.Lock) -> None:
    with Session(engine) as session:
        session.execute(select(1))
        assert not held(lock)


def test_a_failed_begin_gives_the_lock_back(engine: Engine, lock: threading.Lock) -> None:
    import sqlite3

    other = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, WriterConnection)
            driver.execute("PRAGMA busy_timeout=0")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                driver.begin_write()
            assert not held(lock) and not driver.holds_write_lock
    finally:
        other.rollback()
        other.close()


def test_concurrent_writers_follow_each_other(engine: Engine, lock: threading.Lock) -> None:
    """Sixteen threads each add one to a counter in a read-then-write transaction: no update is lost and none
    fails, and the lock is free afterwards."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE writers_probe (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO writers_probe (n) VALUES (0)"))
    errors: list[BaseException] = []

    def add_one() -> None:
        try:
            with Session(writing(engine)) as session:
                n = session.execute(text("SELECT n FROM writers_probe")).scalar_one()
                session.execute(text("UPDATE writers_probe SET n = :n"), {"n": n + 1})
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add_one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM writers_probe")).scalar_one() == 16
    assert not held(lock)


# --- a write whose reads come first (`UnitOfWork(reads_first=True)`: the one-hop routes) ---------------------


@pytest.fixture()
def probe(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE writers_probe (n INTEGER NOT NULL)"))


def _probe_values(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(n) for n, in conn.execute(text("SELECT n FROM writers_probe ORDER BY n"))]


def _add(n: int) -> Callable[[Session], None]:
    return lambda session: session.execute(text("INSERT INTO writers_probe (n) VALUES (:n)"), {"n": n}) and None


def test_a_write_that_reads_first_takes_the_lock_when_it_begins(engine: Engine, lock: threading.Lock,
                                                                probe: None) -> None:
    """Its reads hold no lock; a write before `begin_write` is refused (never committed on its own); side work
    its reads asked for runs in its transaction; the lock is held from `begin_write` to the commit."""
    uow = UnitOfWork(engine, write=True, snapshot=False, reads_first=True)
    try:
        assert uow.session.execute(text("SELECT count(*) FROM writers_probe")).scalar_one() == 0
        assert not held(lock)
        with pytest.raises(OperationalError, match="readonly"):
            _add(1)(uow.session)
        uow.side_write(_add(2))
        assert _probe_values(engine) == [] and not held(lock)
        uow.begin_write()
        assert held(lock)
        _add(3)(uow.session)
        assert _probe_values(engine) == []  # not committed yet
        uow.finish()
    finally:
        uow.close()
    assert _probe_values(engine) == [2, 3] and not held(lock)


@pytest.mark.parametrize("end", ["finish", "abandon", "close"])
def test_a_write_that_never_began(engine: Engine, lock: threading.Lock, probe: None, end: str) -> None:
    """Finished, it begins and commits its side work (a session touch); abandoned or closed, it writes nothing.
    Either way its connection goes back to the pool writable."""
    uow = UnitOfWork(engine, write=True, snapshot=False, reads_first=True)
    uow.session.execute(select(1))
    driver = uow.session.connection().connection.driver_connection
    assert isinstance(driver, WriterConnection) and driver.refuses_writes
    uow.side_write(_add(7))
    if end == "finish":
        uow.finish()
    elif end == "abandon":
        uow.abandon()  # the side work is written after the rollback, as a read's would be
    else:
        uow.close()
    assert _probe_values(engine) == ([] if end == "close" else [7])
    assert not held(lock) and not driver.refuses_writes
    assert driver.execute("PRAGMA query_only").fetchone() == (0,)


def test_reads_first_is_an_ordinary_write_elsewhere(engine: Engine) -> None:
    """PostgreSQL has no database-wide write lock to spare: the write begins at its first statement."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite is the case above")
    uow = UnitOfWork(engine, write=True, snapshot=False, reads_first=True)
    try:
        uow.session.execute(text("CREATE TEMPORARY TABLE reads_first_probe (n INTEGER)"))
        uow.session.execute(text("INSERT INTO reads_first_probe (n) VALUES (1)"))
        uow.begin_write()  # nothing to do
        assert uow.session.execute(text("SELECT n FROM reads_first_probe")).scalar_one() == 1
    finally:
        uow.close()
