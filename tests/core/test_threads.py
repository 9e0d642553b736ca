"""The short lane (`app.core.threads`): at most HOP_THREADS of its calls run at once, the others wait their turn in
the event loop; 0 means one thread per core on SQLite and four on PostgreSQL. A group commit's future is awaited
in the event loop, and its failure reaches the request that waits for it."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future

import pytest

from app.core.config import get_settings
from app.core.threads import durable, run_short, short_lane_size


def _most_at_once(calls: int) -> tuple[int, set[str]]:
    running, most, names = 0, 0, set()
    guard, overlap = threading.Lock(), threading.Event()

    def work() -> None:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
            names.add(threading.current_thread().name)
        overlap.wait(0.05)  # long enough for every other call to start, were it allowed to
        with guard:
            running -= 1

    async def scenario() -> None:
        await asyncio.gather(*(run_short(work) for _ in range(calls)))

    asyncio.run(scenario())
    return most, names


@pytest.mark.parametrize("threads", [1, 3])
def test_no_more_than_hop_threads_calls_run_at_once(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "hop_threads", threads)
    most, names = _most_at_once(12)
    assert most == threads
    assert threading.current_thread().name not in names  # never on the event loop's thread


def test_the_lane_is_one_thread_per_core_on_sqlite_and_four_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "hop_threads", 0)
    cores = os.cpu_count() or 1
    monkeypatch.setattr(settings, "database_url", "sqlite:///x.db")
    assert short_lane_size() == cores
    monkeypatch.setattr(settings, "database_url", "postgresql+psycopg://u@h/db")
    assert short_lane_size() == 4 * cores
    monkeypatch.setattr(settings, "hop_threads", 5)
    assert short_lane_size() == 5


def test_a_commit_led_elsewhere_is_awaited_and_its_failure_raised() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        await durable(None)  # nothing handed in: nothing to wait for
        done: Future[None] = Future()
        done.set_result(None)
        await durable(done)
        pending: Future[None] = Future()
        waiter = asyncio.ensure_future(durable(pending))
        await asyncio.sleep(0)
        seen.append("waiting" if not waiter.done() else "done too early")
        threading.Thread(target=pending.set_result, args=(None,)).start()  # the leader's thread commits
        await asyncio.wait_for(waiter, 5)
        failed: Future[None] = Future()
        failed.set_exception(OSError("disk full"))
        with pytest.raises(OSError, match="disk full"):
            await durable(failed)
        seen.append("raised")
        return seen

    assert asyncio.run(scenario()) == ["waiting", "raised"]
