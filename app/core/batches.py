"""Write batches: concurrent one-record writes share one transaction and one durable commit.

Sixteen phones posting visits at once each paid for a transaction of its own, and queued anyway: on SQLite for its
one writer's lock, on PostgreSQL for the audit chain's lock (the change log's counter row, which every write
transaction holds from its seal to the end of its commit). Each paid the lock's hand-over between threads, BEGIN,
the chain's tail, the counter, a commit with its flush (and on SQLite the log frames of pages the others touch
too). A route that writes one record (`POST /visits`) hands its work in here instead
(`app.auth.deps.Hop.run(batched=True)`), from the event loop, holding no connection and no thread. While no batch
is under way, the first to arrive starts a writer thread (`WRITERS`), which takes every job waiting (at most
`MAX_BATCH`), runs each on one session in one write unit of work — each under its own request's context, so its
audit records name its request — and commits once. Each request then answers from its own job's result, once the
commit that holds it is durable. The writer takes a pooled connection outside the admission gate (`db.admitted`),
as the ledger's committer does: every request whose job waits holds a place at the gate and no connection, so a
connection is free for it.

A job that fails in a batch is taken out and the rest run again without it: nothing of the failed attempt is
kept (it was one transaction). The failed job's request then runs alone, on its own unit of work, exactly as it
would have without batches (`RunAlone`): its refusal, the changes a refusal keeps, its audit of the denial. A
failed commit (a deadlock's victim, a lost connection, a full disk) sends every job of the batch that way. So a
batch never changes what a request answers, only how many commits it takes. One writer per process and database:
with `--workers 2` each process batches its own requests.

Not for an in-memory SQLite database (one per connection: `batches_of` answers None).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.core import context
from app.core.db import UnitOfWork, begin

MAX_BATCH = 32  # jobs in one transaction: a batch's commit waits for the slowest job in it
BATCHES = "_app_write_batches"  # on the engine (as app.core.db keeps its variants): one queue per database
WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="write-batch")  # one writer per database at a time


class RunAlone(Exception):  # an instruction more than an error: the request runs its work itself
    """The job failed in a batch (or its batch could not commit): its request runs it alone instead."""


@dataclass
class _Job:
    work: Callable[[Session], Any]
    ctx: context.RequestContext | None
    done: Future[Any] = field(default_factory=Future)


class WriteBatches:
    """The queue of one database's batched writes, and its writer (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False

    def submit(self, work: Callable[[Session], Any]) -> Future[Any]:
        """Queue `work(session)`; the future holds what it returned once its batch is committed, or `RunAlone`."""
        job = _Job(work, context.get())
        with self._lock:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if lead:
            try:
                WRITERS.submit(self._lead)
            except BaseException:  # the interpreter is shutting down: every job waiting runs alone
                with self._lock:
                    waiting, self._queue, self._leading = self._queue, [], False
                for waiter in waiting:
                    waiter.done.set_exception(RunAlone())
        return job.done

    def _lead(self) -> None:
        while True:
            with self._lock:
                taken, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not taken:
                    self._leading = False
                    return
            # A request cancelled while it waited is not written; from here on, its job runs to the end.
            batch = [job for job in taken if job.done.set_running_or_notify_cancel()]
            try:
                self._write(batch)
            except BaseException:  # even the rollback failed: no request may wait for ever, nor the queue stop
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(RunAlone())

    def _write(self, batch: list[_Job]) -> None:
        while batch:
            failed = self._attempt(batch)
            if failed is None:
                return
            for job in failed:
                job.done.set_exception(RunAlone())
            batch = [job for job in batch if job not in failed]

    def _attempt(self, batch: list[_Job]) -> list[_Job] | None:
        """Every job in one write unit of work: None once committed (each job's future done), else the jobs to
        take out (the one that failed; all of them when the commit failed). Nothing of a failed attempt is kept."""
        uow = UnitOfWork(self._engine, write=True)
        results: list[Any] = []
        try:
            begin(uow.session, write=True)  # the connection is the writer's, not the first job's request's
            for job in batch:
                token = context.set_current(job.ctx)
                try:
                    results.append(job.work(uow.session))
                    uow.session.flush()  # what the ORM's listeners record at a flush (audit, sync log) is this job's
                except BaseException:
                    uow.abandon()
                    return [job]
                finally:
                    context.reset(token)
            uow.finish()
        except BaseException:
            uow.abandon()
            return batch
        for job, result in zip(batch, results, strict=True):
            job.done.set_result(result)
        return None


def batches_of(engine: Engine) -> WriteBatches | None:
    """The engine's write batches (one queue per engine; None for an in-memory SQLite database)."""
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return None
    found = engine.__dict__.get(BATCHES)
    if found is None:
        found = engine.__dict__.setdefault(BATCHES, WriteBatches(engine))
    return found
