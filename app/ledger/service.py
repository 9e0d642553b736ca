"""The ledger's place in the unit of work: its commit hook, its flush listeners, and savepoints.

`install()` is called once when the application is wired (`app.wiring.install`): it registers the commit
hook with the unit of work and the flush listeners with SQLAlchemy's Session class. Nothing happens at
import.

At commit (`seal`), under the chain lock: the change log's rows get the transaction's sequence number, then
the audit events join the chain. A savepoint (`savepoint`) snapshots the database *and* the ledger
together, so a rolled-back record leaves neither a change-log row nor an audit event behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
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
    audit.lock_chain(session)
    changes.stamp(session, ledger)
    audit.append(session, ledger.events)
    ledger.clear()


class GroupCommit:
    """Audit records of concurrent reads share one durable commit; each request still waits for its own.

    A read that leaves only audit events behind (a sensitive read) hands them in here from its worker thread,
    after its read has ended. The first request to arrive while no write is under way leads: on its own
    connection it writes every batch handed in meanwhile in one transaction (one fsync), until the queue is
    empty. The others wait, holding no connection and (a request, `UnitOfWork.finish(wait=False)`) no thread,
    until the batch with their events has committed (or failed: then each of them fails as it would have alone).
    One leader at a time per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[list[dict[str, Any]], Future[None]]] = []
        self._leading = False

    def submit(self, events: list[dict[str, Any]],
               write: Callable[[Callable[[Session], None]], None]) -> Future[None]:
        """Hand the events in; the future is done once they are durable (at once if this thread led)."""
        done: Future[None] = Future()
        with self._lock:
            self._queue.append((events, done))
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead(write)
        return done

    def _lead(self, write: Callable[[Callable[[Session], None]], None]) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._leading = False
                    return
            try:
                write(_queue_events([e for events, _ in batch for e in events]))
            except BaseException as exc:  # each waiter fails as it would have alone; the leader goes on
                for _, waiter in batch:
                    waiter.set_exception(exc)
            else:
                for _, waiter in batch:
                    waiter.set_result(None)


def _queue_events(events: list[dict[str, Any]]) -> Callable[[Session], None]:
    def queue(session: Session) -> None:
        ledger_of(session).events.extend(events)

    return queue


GROUP = GroupCommit()


class _Hook:
    """The ledger's commit hook (app.core.db.CommitHook)."""

    def write_alone(self, session: Session,
                    write: Callable[[Callable[[Session], None]], None]) -> Future[None] | None:
        ledger = peek(session)
        if ledger is None or not ledger.events or ledger.rows or ledger.selects or ledger.staged:
            return None
        events, ledger.events = ledger.events, []
        return GROUP.submit(events, write)

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
