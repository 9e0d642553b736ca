"""SQLite writers of one process queue on the process's lock for the file (`db.WriterConnection`) before BEGIN
IMMEDIATE, instead of sleeping in SQLite's busy handler; the lock is given back however the transaction ends."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from app.core.db import WriterConnection, writing


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
