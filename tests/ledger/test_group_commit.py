"""Group commit: audit records of concurrent reads share one durable commit, each request still waits for its
own, and a failed commit fails every request of its batch (and only those)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from app.ledger.service import GroupCommit
from app.ledger.state import ledger_of


def _event(n: int) -> dict[str, Any]:
    return {"action": f"test.read.{n}"}


def test_requests_queued_behind_a_commit_share_the_next_one() -> None:
    group = GroupCommit()
    first_started, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []
    arrived = threading.Semaphore(0)

    def write(work: Callable[[Session], None]) -> None:
        session = Session()
        work(session)
        batches.append([e["action"] for e in ledger_of(session).events])
        if len(batches) == 1:
            first_started.set()
            release.wait(10)  # the first commit is slow: everyone else arrives meanwhile

    def request(n: int) -> None:
        arrived.release()
        group.submit([_event(n)], write)

    leader = threading.Thread(target=request, args=(0,))
    leader.start()
    assert first_started.wait(10)
    others = [threading.Thread(target=request, args=(n,)) for n in range(1, 8)]
    for t in others:
        t.start()
    for _ in range(8):
        assert arrived.acquire(timeout=10)
    while len(group._queue) < 7:  # everyone is waiting behind the first commit
        threading.Event().wait(0.01)
    release.set()
    for t in [leader, *others]:
        t.join(10)
        assert not t.is_alive()
    assert batches[0] == ["test.read.0"]
    assert sorted(batches[1]) == sorted(f"test.read.{n}" for n in range(1, 8))  # one commit for seven reads
    assert len(batches) == 2 and not group._leading


def test_a_failed_commit_fails_its_whole_batch_and_nothing_else() -> None:
    group = GroupCommit()
    calls: list[int] = []

    def failing(work: Callable[[Session], None]) -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        group.submit([_event(1)], failing)
    assert not group._leading and group._queue == []

    def fine(work: Callable[[Session], None]) -> None:
        work(Session())

    group.submit([_event(2)], fine)  # the next request leads again and succeeds
    assert calls == [1]
