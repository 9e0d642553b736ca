"""Group commit: audit records of concurrent reads share one durable commit, each request still waits for its
own, and a failed commit fails every request of its batch (and only those)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from sqlmodel import Session

from app.ledger.service import GroupCommit
from app.ledger.state import ledger_of


def _event(n: int) -> dict[str, Any]:
    return {"action": f"test.read.{n}"}


def test_requests_queued_behind_a_commit_share_the_next_one_and_wait_for_it_without_a_thread() -> None:
    group = GroupCommit()
    first_started, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []
    led: list[Future[None]] = []

    def write(work: Callable[[Session], None]) -> None:
        session = Session()
        work(session)
        batches.append([e["action"] for e in ledger_of(session).events])
        if len(batches) == 1:
            first_started.set()
            release.wait(10)  # the first commit is slow: everyone else arrives meanwhile

    leader = threading.Thread(target=lambda: led.append(group.submit([_event(0)], write)))
    leader.start()
    assert first_started.wait(10)
    # The others hand their records in and get their commit's future back at once: no thread of theirs waits.
    followers = [group.submit([_event(n)], write) for n in range(1, 8)]
    assert len(group._queue) == 7 and not any(f.done() for f in followers)
    release.set()
    for f in followers:
        assert f.result(timeout=10) is None
    leader.join(10)
    assert not leader.is_alive()
    assert led[0].done() and led[0].result() is None  # the leader returns once its own batch has committed
    assert batches[0] == ["test.read.0"]
    assert sorted(batches[1]) == sorted(f"test.read.{n}" for n in range(1, 8))  # one commit for seven reads
    assert len(batches) == 2 and not group._leading


def test_a_failed_commit_fails_its_whole_batch_and_nothing_else() -> None:
    group = GroupCommit()
    calls: list[int] = []

    def failing(work: Callable[[Session], None]) -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    failed = group.submit([_event(1)], failing)
    with pytest.raises(RuntimeError, match="disk full"):
        failed.result(timeout=0)
    assert not group._leading and group._queue == []

    def fine(work: Callable[[Session], None]) -> None:
        work(Session())

    assert group.submit([_event(2)], fine).result(timeout=0) is None  # the next request leads again and succeeds
    assert calls == [1]
