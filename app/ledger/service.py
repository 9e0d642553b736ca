"""The ledger's place in the unit of work: its commit hook, its flush listeners, and savepoints.

`install()` is called once when the application is wired (`app.wiring.install`): it registers the commit
hook with the unit of work and the flush listeners with SQLAlchemy's Session class. Nothing happens at
import.

At commit (`seal`), under the chain lock: the change log's rows get the transaction's sequence number (its
counter's update takes the lock), then the audit events join the chain. A savepoint (`savepoint`) snapshots
the database *and* the ledger together, so a rolled-back record leaves neither a change-log row nor an audit
event behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.core import db
from app.ledger import audit, changes
from app.ledger.state import Ledger, ledger_of, mark_installed, peek


def seal(session: Session) -> None:
    """Write what the ledger holds, in the current write transaction (the commit follows)."""
    session.flush()
    ledger = peek(session)
    if ledger is None or not ledger.pending:
        return
    if not changes.stamp(session, ledger):  # stamping takes the chain lock (it updates the counter's row)
        audit.lock_chain(session.connection())
    audit.append(session.connection(), ledger.events)
    ledger.clear()


class GroupCommit:
    """Audit records of concurrent reads share one durable commit; each request still waits for its own.

    A read that leaves only audit events behind (a sensitive read) hands them in here, after its read has ended
    and given its connection back. While no commit is under way, the first to arrive starts one: on a connection of
    its own (no session: `_write_batch`), the committer writes every batch handed in meanwhile in one transaction
    (one fsync), until the queue is empty. Each request waits for the batch with its events, holding no connection and
    (`UnitOfWork.finish(wait=False)`) no thread; a failed batch fails each of its requests as it would have failed
    alone. One committer at a time per database (`group_of`).

    Who commits depends on the database. On PostgreSQL, a thread of `COMMITTERS`, never a request's: a commit
    waits for the server's flush, and a request that led would hold its short-lane thread for as long as others
    kept arriving (a resident's read waited up to 0.9 s at 64 connections; 0.2 s with the committer). On SQLite,
    the request that starts it, in its own thread (`inline`): the commit is the process's own CPU, and handing it
    to another thread cost audited reads 10-15 % of their throughput (docs/performance.md). A committer takes a
    pooled connection outside the admission gate (`db.admitted`); it can wait for one, never for ever: no request
    waits for a group commit while it holds a connection.
    """

    def __init__(self, write: Callable[[list[dict[str, Any]]], None], *, inline: bool = False) -> None:
        self._write = write
        self._inline = inline
        self._lock = threading.Lock()
        self._queue: list[tuple[list[dict[str, Any]], Future[None]]] = []
        self._leading = False

    def submit(self, events: list[dict[str, Any]]) -> Future[None]:
        """Hand the events in; the future is done once they are durable (or holds why they are not)."""
        done: Future[None] = Future()
        with self._lock:
            self._queue.append((events, done))
            lead = not self._leading
            self._leading = True
        if lead and self._inline:
            self._lead()
        elif lead:
            try:
                COMMITTERS.submit(self._lead)
            except BaseException as exc:  # the interpreter is shutting down: nobody will write them
                with self._lock:
                    batch, self._queue, self._leading = self._queue, [], False
                for _, waiter in batch:
                    waiter.set_exception(exc)
        return done

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._leading = False
                    return
            try:
                self._write([e for events, _ in batch for e in events])
            except BaseException as exc:  # each waiter fails as it would have alone; the committer goes on
                for _, waiter in batch:
                    waiter.set_exception(exc)
            else:
                for _, waiter in batch:
                    waiter.set_result(None)


# Threads that commit batches of audit records: one at a time per database, a few databases at once (tests).
COMMITTERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="audit-group-commit")
GROUPS = "_app_group_commit"  # on the engine (as app.core.db keeps its variants): one group per database


def group_of(engine: Engine) -> GroupCommit:
    group = engine.__dict__.get(GROUPS)
    if group is None:
        group = engine.__dict__.setdefault(GROUPS, GroupCommit(partial(_write_batch, engine),
                                                               inline=engine.dialect.name == "sqlite"))
    return group


def _write_batch(engine: Engine, events: list[dict[str, Any]]) -> None:
    """The batch in one write transaction on a connection of its own: the chain's lock, its rows, the commit.
    Audit events are all it writes, so it needs no session: a unit of work's begin, seal and commit took twice
    the database's own work for a batch of one (docs/performance.md)."""
    with db.writing(engine).begin() as conn:
        audit.lock_chain(conn)
        audit.append(conn, events)


class _Hook:
    """The ledger's commit hook (app.core.db.CommitHook)."""

    def write_alone(self, session: Session) -> Future[None] | None:
        ledger = peek(session)
        uow = db.UnitOfWork.of(session)
        if uow is None or ledger is None or not ledger.events or ledger.rows or ledger.selects or ledger.staged:
            return None
        events, ledger.events = ledger.events, []
        return group_of(uow.engine).submit(events)

    def pending(self, session: Session) -> bool:
        ledger = peek(session)
        return ledger is not None and ledger.pending

    def seal(self, session: Session) -> None:
        seal(session)

    def discard(self, session: Session) -> None:
        ledger = peek(session)
        if ledger is not None:
            ledger.clear()


HOOK = _Hook()


@contextmanager
def savepoint(session: Session, *, keep: Callable[[BaseException], bool] = lambda _exc: False) -> Iterator[Ledger]:
    """A savepoint of the database and the ledger together. An exception rolls both back (and propagates),
    unless `keep(exc)`: then what was written is kept (a refusal that keeps its changes)."""
    ledger = ledger_of(session)
    mark = ledger.mark()
    nested = session.begin_nested()
    try:
        yield ledger
    except BaseException as exc:
        if keep(exc) and nested.is_active:
            nested.commit()
        else:
            if nested.is_active:
                nested.rollback()
            ledger.restore(mark)
        raise
    nested.commit()


def _before_flush(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    if not (session.new or session.dirty or session.deleted):
        return
    audit.collect(session)
    changes.collect(session, ledger_of(session))  # type: ignore[arg-type]


def _after_flush(session: OrmSession, _ctx: Any) -> None:
    ledger = peek(session)  # type: ignore[arg-type]
    if ledger is not None and ledger.flushing:
        changes.write(session, ledger)


def install() -> None:
    """Register the commit hook and the flush listeners (idempotent)."""
    db.on_commit(HOOK)
    for name, listener in (("before_flush", _before_flush), ("after_flush", _after_flush)):
        if not event.contains(OrmSession, name, listener):
            event.listen(OrmSession, name, listener)
    mark_installed()
