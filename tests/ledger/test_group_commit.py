"""Group commit: audit records of concurrent reads share one durable commit, written by a committer thread (never
a request's) on PostgreSQL, by the request that starts it on SQLite; each request gets the future of its own batch,
and a failed commit fails every request of its batch (and only those). Through a database: a sensitive read's record
is durable when its request is answered."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from app.core.db import UnitOfWork, unit_of_work
from app.ledger import audit
from app.ledger.models import AuditEvent
from app.ledger.service import GroupCommit, group_of


def _event(n: int) -> dict[str, Any]:
    return {"action": f"test.read.{n}"}


def test_requests_queued_behind_a_commit_share_the_next_one_and_no_request_thread_writes() -> None:
    first_started, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []
    writers: set[str] = set()

    def write(events: list[dict[str, Any]]) -> None:
        writers.add(threading.current_thread().name)
        batches.append([e["action"] for e in events])
        if len(batches) == 1:
            first_started.set()
            release.wait(10)  # the first commit is slow: everyone else arrives meanwhile

    group = GroupCommit(write)
    first = group.submit([_event(0)])
    assert first_started.wait(10)
    # The others hand their records in and get their commit's future back at once: no thread of theirs waits.
    followers = [group.submit([_event(n)]) for n in range(1, 8)]
    assert len(group._queue) == 7 and not first.done() and not any(f.done() for f in followers)
    release.set()
    for f in [first, *followers]:
        assert f.result(timeout=10) is None
    assert batches[0] == ["test.read.0"]
    assert sorted(batches[1]) == sorted(f"test.read.{n}" for n in range(1, 8))  # one commit for seven reads
    assert len(batches) == 2 and not group._leading
    assert threading.current_thread().name not in writers and all(w.startswith("audit-group-commit") for w in writers)


def test_inline_the_request_that_starts_a_commit_writes_it_in_its_own_thread() -> None:
    writers: list[str] = []
    group = GroupCommit(lambda events: writers.append(threading.current_thread().name), inline=True)
    done = group.submit([_event(1)])
    assert done.done() and done.result() is None  # written before submit returned (SQLite's way)
    assert writers == [threading.current_thread().name] and not group._leading


def test_a_failed_commit_fails_its_whole_batch_and_nothing_else() -> None:
    calls: list[list[str]] = []

    def write(events: list[dict[str, Any]]) -> None:
        calls.append([e["action"] for e in events])
        if len(calls) == 1:
            raise OSError("disk full")

    group = GroupCommit(write)
    with pytest.raises(OSError, match="disk full"):
        group.submit([_event(1)]).result(timeout=10)
    assert group.submit([_event(2)]).result(timeout=10) is None  # the next one starts a commit again and succeeds
    assert calls == [["test.read.1"], ["test.read.2"]] and not group._leading


def test_a_read_leaves_its_record_through_the_databases_group_and_it_is_durable_when_finish_returns(
        engine: Engine) -> None:
    def recorded() -> int:
        with unit_of_work(write=False, engine=engine) as session:
            return int(session.execute(select(func.count()).select_from(AuditEvent)
                                       .where(AuditEvent.action == "test.group.read")).scalar_one())

    before = recorded()
    uow = UnitOfWork(engine, write=False)
    audit.record(uow.session, "test.group.read", target_type="residents", target_id="r1")
    pending = uow.finish(wait=False)  # the read ends; its record goes to the committer
    assert pending is not None and pending.result(timeout=10) is None
    assert recorded() == before + 1
    uow = UnitOfWork(engine, write=False)
    audit.record(uow.session, "test.group.read", target_type="residents", target_id="r2")
    assert uow.finish() is None  # waits here (the CLI's way): durable on return
    assert recorded() == before + 2
    group = group_of(engine)
    assert group is group_of(engine) and not group._leading
    assert group._inline == (engine.dialect.name == "sqlite")
