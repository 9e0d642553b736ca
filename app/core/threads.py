"""Where a request's blocking work runs: worker threads, some of them on a short lane.

anyio's default pool runs up to 40 threads. Sixteen phones at once then keep sixteen threads busy, each letting
go of the interpreter's lock at every driver call and waiting to get it back: in process, a request cost twice
the CPU it costs alone (`GET /me/tasks` 1.4 → 3.1 ms, docs/performance.md). The routes every phone calls all day
(app.auth.deps.Hop) run on the **short lane** instead: at most `HOP_THREADS` threads at once per event loop, the
other requests waiting in the event loop, where waiting costs nothing. Work that holds a thread for long (a push
of a day's records) stays on the common pool, so it never holds back the short requests behind it.

Nothing a short-lane thread waits for is held by a request that waits for the lane: a request takes no
connection, lock or transaction before its thread runs (`admitted` only counts places), and everything a thread
may wait for (SQLite's write lock, a row lock, a free pooled connection) belongs to a thread that is running; a
sensitive read's audit record is awaited in the event loop (PostgreSQL's committer thread writes it; on SQLite
the request that starts a group commit writes it before its thread returns).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

from app.core.config import get_settings

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, anyio.CapacityLimiter]] = \
    weakref.WeakKeyDictionary()


def limiter(name: str, size: Callable[[], int]) -> anyio.CapacityLimiter:
    """The running event loop's limiter called `name`, made with `size()` places the first time it is asked for (an
    anyio limiter belongs to one event loop: tests run several). `size` is called only then: `os.cpu_count()` reads
    a file under /sys each time."""
    limiters = _limiters.setdefault(asyncio.get_running_loop(), {})
    found = limiters.get(name)
    if found is None:
        found = limiters[name] = anyio.CapacityLimiter(size())
    return found


def one_per_core() -> int:
    return os.cpu_count() or 1


def short_lane_size() -> int:
    """`HOP_THREADS`; when it is 0, one thread per core on SQLite, whose work is the process's own CPU, and four per
    core on PostgreSQL, where a thread also waits for the server's answers (on two cores, eight threads against
    four: audited reads 10–25 % faster in one run, the rest within the noise; docs/performance.md)."""
    settings = get_settings()
    if settings.hop_threads:
        return settings.hop_threads
    per_core = 1 if settings.database_url.startswith("sqlite") else 4
    return per_core * one_per_core()


async def run_short(func: Callable[[*Ts], T], *args: *Ts) -> T:
    """`func(*args)` in a worker thread of the short lane (waiting in the event loop for a place)."""
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter("short", short_lane_size))


async def durable(pending: Future[None] | None) -> None:
    """Wait, in the event loop, for the commit of a read's audit record (the group commit, app.ledger.service); its
    failure is raised here, as if this request had committed alone."""
    if pending is None:
        return
    if pending.done():
        pending.result()
        return
    await asyncio.wrap_future(pending)
