"""No write is ever skipped by a pull that ran while it was still open (PostgreSQL: real concurrent
transactions; SQLite has a single writer and snapshot reads, so the race cannot arise there)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from app.core.db import begin
from app.ledger.models import SyncLog
from app.ledger.service import seal
from app.people.models import Resident
from tests.conftest import BACKEND, Api, World
from tests.sync.helpers import ids, pull

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="concurrent writers need PostgreSQL")
WAIT = 30.0


def residents_of(engine: Engine, world: World, n: int) -> list[str]:
    with Session(engine) as s:
        return list(s.execute(select(Resident.id).where(
            Resident.area_path.startswith(world.community("c1")["path"]), Resident.status == "REGISTERED")
            .order_by(Resident.id).limit(n)).scalars())


def open_writer(engine: Engine, resident_id: str, occupation: str) -> Session:
    """A write transaction that changed a synced record (flushed: its sync_log row is staged) and is open."""
    session = Session(engine, expire_on_commit=False)
    begin(session, write=True)
    resident = session.get(Resident, resident_id)
    assert resident is not None
    resident.occupation, resident.version = occupation, resident.version + 1
    session.add(resident)
    session.flush()
    return session


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def finish(thread: threading.Thread, out: dict[str, Any]) -> Any:
    thread.join(WAIT)
    assert not thread.is_alive(), "deadlock: the thread did not finish"
    if "error" in out:
        raise out["error"]
    return out["value"]


def wait_for_lock_waiters(engine: Engine, count: int) -> None:
    """Until `count` backends wait on the audit chain lock (the change log counter's row lock, which a stamp's
    update takes and an audit-only append asks for with FOR UPDATE), bounded."""
    event = threading.Event()
    for _ in range(int(WAIT * 20)):
        with engine.connect() as conn:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%sync_counter%'")).scalar_one()
        if waiting >= count:
            return
        event.wait(0.05)
    raise AssertionError("no backend ever waited on the chain lock")


def settled_cursor(api: Api) -> int:
    first = pull(api, "worker1")
    return int(pull(api, "worker1", first["timestamp"])["timestamp"])


def test_pull_during_an_open_write_misses_nothing(api: Api, world: World, engine: Engine) -> None:
    (rid,) = residents_of(engine, world, 1)
    cursor = settled_cursor(api)
    writer = open_writer(engine, rid, "open-write")
    try:
        # The pull runs while the write is open: it only reads, so it completes, without the write.
        during = finish(*in_thread(lambda: pull(api, "worker1", cursor)))
        assert rid not in ids(during, "residents")
        seal(writer)
        writer.commit()
    finally:
        writer.close()
    after = pull(api, "worker1", during["timestamp"])
    assert rid in ids(after, "residents")
    assert next(r for r in after["changes"]["residents"]["updated"] if r["id"] == rid)["occupation"] == "open-write"


def test_a_stamped_but_uncommitted_write_is_not_skipped(api: Api, world: World, engine: Engine) -> None:
    rid, other = residents_of(engine, world, 2)
    cursor = settled_cursor(api)
    # A committed change for the pull to send: a pull that sends nothing records nothing (a quiet pull) and
    # would not queue behind the writer at all.
    seen = api.as_("worker1", "GET", f"/api/v1/residents/{other}").json()
    edited = api.as_("worker1", "PATCH", f"/api/v1/residents/{other}",
                     json={"version": seen["version"], "occupation": "保洁"})
    assert edited.status_code == 200, edited.text
    writer = open_writer(engine, rid, "stamped")
    try:
        seal(writer)  # holds its sequence number and the chain lock until commit
        with Session(engine) as s:
            stamped = s.execute(text("SELECT count(*) FROM sync_log WHERE seq IS NOT NULL AND record_id = :r"),
                                {"r": rid}).scalar_one()
        assert stamped == 0  # invisible until commit
        thread, out = in_thread(lambda: pull(api, "worker1", cursor))
        # The pull has read its snapshot and waits to append its audit record behind the writer.
        wait_for_lock_waiters(engine, 1)
        writer.commit()
    finally:
        writer.close()
    during = finish(thread, out)
    with Session(engine) as s:
        seq = s.execute(select(SyncLog.seq).where(SyncLog.record_id == rid)).scalars().one()
    assert during["timestamp"] < seq and rid not in ids(during, "residents") and other in ids(during, "residents")
    after = pull(api, "worker1", during["timestamp"])
    assert rid in ids(after, "residents") and after["timestamp"] >= seq


def test_queued_writers_are_seen_in_sequence_order(api: Api, world: World, engine: Engine) -> None:
    first_id, second_id = residents_of(engine, world, 2)
    cursor = settled_cursor(api)
    a = open_writer(engine, first_id, "writer-a")
    b = open_writer(engine, second_id, "writer-b")
    try:
        seal(a)  # A holds the lock
        b_thread, b_out = in_thread(lambda: (seal(b), b.commit()))
        wait_for_lock_waiters(engine, 1)  # B waits for A
        a.commit()
        finish(b_thread, b_out)
    finally:
        a.close()
        b.close()
    with Session(engine) as s:
        seqs = dict(s.execute(select(SyncLog.record_id, SyncLog.seq).where(
            SyncLog.record_id.in_([first_id, second_id]))).all())
    assert seqs[first_id] < seqs[second_id]
    after = pull(api, "worker1", cursor)
    assert {first_id, second_id} <= ids(after, "residents") and after["timestamp"] >= seqs[second_id]
