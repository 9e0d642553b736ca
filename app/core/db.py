"""Engine and unit of work.

One unit of work per request (or per CLI command, per job): one Session, and through it **one pooled
connection at a time**. A request never waits for a second connection while it holds one: when every
connection is held by a request waiting for another, nothing moves (the stall of 16 phones pulling at once).
So side work runs on the unit of work's own session — inside its transaction (a write), or in a short write
transaction after its read transaction has ended and given the connection back (`side_write`). A test pool
guard (`guard_single_checkout`) makes a nested checkout fail loudly.

Writes begin with BEGIN IMMEDIATE on SQLite, so a read-then-write never fails half-way on a stale snapshot.
The one-hop routes' writes (`reads_first`) check their caller first, statement by statement, and only then
begin the write (`UnitOfWork.begin_write`): SQLite lets one writer in at a time, and every other writer waits
for as long as one holds the write lock.
A request's reads run statement by statement, with no transaction of their own (SQLite: the driver in
autocommit; PostgreSQL: AUTOCOMMIT, so neither a BEGIN nor a ROLLBACK goes to the server); a route whose reads
must agree with each other (the sync cursor and the tables a pull reads, the chain's walk, a report's figures)
asks for one snapshot with `UnitOfWork.snapshot()`: a read transaction on SQLite, REPEATABLE READ READ ONLY on
PostgreSQL. Services flush, never commit.

What every write leaves behind (the audit chain, the sync change log) is not the unit of work's business:
the ledger registers a `CommitHook` (`on_commit`) when the application is wired, and the unit of work runs
it right before each commit, and tells it when work is abandoned (the ledger refuses to queue anything
while its hook is not installed, rather than lose it).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.core import context
from app.core.config import get_settings
from app.core.errors import ServiceBusy
from app.core.pool import check_alive
from app.core.sqlite_writer import (
    IMMEDIATE,
    SQLITE_WAIT_SECONDS,
    STATEMENT_READS,
    WRITES_LATER,
    WriterConnection,
    configure_sqlite,
    write_lock_for,
)

UOW = "unit_of_work"  # session.info: the session's UnitOfWork (the ledger keeps its own key)
_engine_override: Engine | None = None


def use_engine(engine: Engine | None) -> None:
    """Point the application at another engine (tests give each test its own database)."""
    global _engine_override
    _engine_override = engine


def get_engine(url: str | None = None) -> Engine:
    if url is None and _engine_override is not None:
        return _engine_override
    return _shared_engine(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _shared_engine(url: str) -> Engine:
    return create_db_engine(url)


def create_db_engine(url: str) -> Engine:
    settings = get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_WAIT_SECONDS,
                                                  "factory": WriterConnection},
                               pool_size=settings.db_pool_size, max_overflow=0)
        configure_sqlite(engine, write_lock_for(parsed.database or ""))
        return engine
    # No overflow: an overflow connection is closed when it comes back, so under load every request would pay
    # for a new one; the admission gate (`admitted`) keeps requests to the pool's size instead.
    engine = create_engine(url, pool_size=settings.db_pool_size, max_overflow=0)
    event.listen(engine, "checkout", check_alive)
    return engine




def capacity(engine: Engine) -> int:
    """How many connections the engine's pool hands out at once (its size and its overflow)."""
    pool: Any = engine.pool
    size = pool.size() if hasattr(pool, "size") else 1
    return max(1, int(size) + max(int(getattr(pool, "_max_overflow", 0)), 0))


# An option engine costs ~40 µs to make (SQLAlchemy copies the engine's dispatch): made once per engine and kind,
# not once per unit of work (py-spy, 2026-12-06: 3 % of a `GET /auth/me`).
# Kept on the engine itself (a weak-keyed map would never let go: each variant refers to its engine).
VARIANTS = "_app_variants"


def _variant(engine: Engine, kind: str, make: Callable[[], Engine]) -> Engine:
    made: dict[str, Engine] = engine.__dict__.setdefault(VARIANTS, {})
    found = made.get(kind)
    if found is None:
        found = made[kind] = make()
    return found


def writes_later(engine: Engine) -> Engine:
    """SQLite: the engine (same pool) of a write's first reads, statement by statement, with writes refused until
    `UnitOfWork.begin_write()` (`reads_first`)."""
    return _variant(engine, "writes_later",
                    lambda: engine.execution_options(**{STATEMENT_READS: True, WRITES_LATER: True}))


def writing(engine: Engine) -> Engine:
    """The engine (same pool) whose transactions begin as writes: BEGIN IMMEDIATE on SQLite; PostgreSQL ignores it."""
    return _variant(engine, "writing", lambda: engine.execution_options(**{IMMEDIATE: True}))


def reading(engine: Engine) -> Engine:
    """The engine (same pool) whose transactions are one read-only snapshot (REPEATABLE READ on PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        return _variant(engine, "reading", lambda: engine.execution_options(isolation_level="REPEATABLE READ",
                                                                           postgresql_readonly=True))
    return engine


def statement_reads(engine: Engine) -> Engine:
    """A request's reads: each statement reads the latest commit, with no transaction of its own. A BEGIN and a
    ROLLBACK fewer: on SQLite each is a trip through the GIL; on PostgreSQL each is a round trip to the server,
    and of a `GET /auth/me`'s four (the pool's ping, BEGIN, the actor, ROLLBACK) leaves two
    (docs/performance.md). `UnitOfWork.snapshot()` makes them one snapshot where they must agree."""
    if engine.dialect.name == "sqlite":
        return _variant(engine, "statements", lambda: engine.execution_options(**{STATEMENT_READS: True}))
    return _variant(engine, "statements", lambda: engine.execution_options(isolation_level="AUTOCOMMIT"))


def begin_write(session: Session) -> None:
    """Before a service's first write: its unit of work's write transaction begins here if it has not yet
    (`UnitOfWork(reads_first=True)`, whose route checks what it can before it writes); otherwise nothing."""
    uow = UnitOfWork.of(session)
    if uow is not None:
        uow.begin_write()


def begin(session: Session, *, write: bool) -> None:
    """Start the session's transaction; `write=True` takes SQLite's write lock up front."""
    session.connection(execution_options={IMMEDIATE: True} if write else None)


# --- admission: never more units of work than connections -------------------------------------------------

# One gate per event loop and engine: a uvicorn worker has one loop; tests start a loop per client.
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = \
    weakref.WeakKeyDictionary()


@asynccontextmanager
async def admitted(engine: Engine) -> AsyncIterator[None]:
    """A place among the engine's connections, waited for in the event loop (never in a worker thread).

    Without it, once every connection is taken, requests wait for one inside the thread pool; when the requests
    holding the connections need a thread to finish, nothing moves until the pool's timeout fails them all (the
    stall of 16 phones pulling at once). Waiting longer than DB_QUEUE_SECONDS is 503 `service_busy`."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(id(engine))
    if gate is None:
        gate = gates[id(engine)] = asyncio.Semaphore(capacity(engine))
    if gate.locked():  # wait in line (wait_for wraps the wait in a task of its own: only when there is a line)
        try:
            await asyncio.wait_for(gate.acquire(), get_settings().db_queue_seconds)
        except TimeoutError:
            raise ServiceBusy({"reason": "queue"}) from None
    else:
        await gate.acquire()  # a free place: taken at once, without suspending
    try:
        yield
    finally:
        gate.release()


# --- commit hooks ----------------------------------------------------------------------------------------

Work = Callable[[Session], None]


class CommitHook(Protocol):
    """What must be written with every write transaction (registered once, by the ledger)."""

    def pending(self, session: Session) -> bool:
        """Is there anything to write at the next commit?"""

    def seal(self, session: Session) -> None:
        """Write it, in the transaction about to commit."""

    def discard(self, session: Session) -> None:
        """Forget it: the work it belonged to was rolled back."""

    def write_alone(self, session: Session) -> Future[None] | None:
        """A read's leftovers when nothing else must be written, after its read has ended: hand them in to be
        written elsewhere, possibly together with other requests' (a group commit), and return the future of
        their commit; or return None to have them sealed in an ordinary write transaction on this session."""


_hooks: list[CommitHook] = []


def on_commit(hook: CommitHook) -> None:
    """Register a commit hook (idempotent). Done explicitly when the application is wired, never at import."""
    if hook not in _hooks:
        _hooks.append(hook)


class UnitOfWork:
    """One session, one connection at a time, committed (or abandoned) once."""

    def __init__(self, engine: Engine | None = None, *, write: bool, snapshot: bool = True,
                 reads_first: bool = False) -> None:
        self.engine = engine or get_engine()
        self.write = write
        # SQLite's one writer: a write whose first reads (the caller's check) need no write transaction begins it
        # at `begin_write()`, so those reads do not hold the process's write lock (every other writer waits on it).
        self._write_pending = write and reads_first and self.engine.dialect.name == "sqlite"
        if self._write_pending:
            bind = writes_later(self.engine)
        else:
            bind = writing(self.engine) if write else reading(self.engine) if snapshot else statement_reads(self.engine)
        self.session = Session(bind, expire_on_commit=False)
        self.session.info[UOW] = self
        self._deferred: list[Work] = []
        self.finished = False

    def begin_write(self) -> None:
        """A write made with `reads_first`: its write transaction begins here (BEGIN IMMEDIATE, on the connection
        its reads used), and the side work its reads asked for runs in it. Otherwise, nothing to do: a write
        transaction begins at its first statement. A commit begins it too, if nothing did."""
        if not self._write_pending:
            return
        self._write_pending = False
        self._driver().begin_write()
        deferred, self._deferred = self._deferred, []
        for work in deferred:
            work(self.session)

    def snapshot(self) -> None:
        """From here on, the reads of this unit of work agree with each other: one snapshot, begun now if its reads
        ran statement by statement (SQLite: a read transaction; PostgreSQL: REPEATABLE READ READ ONLY, which the
        unit of work's end commits: `_end_snapshot`). A write, or a read made a snapshot from the start, is one
        already."""
        if self.write:
            return
        driver = self._driver()
        if driver is None:
            return
        if self.engine.dialect.name == "sqlite":
            if not driver.in_transaction:
                driver.execute("BEGIN")
        elif driver.autocommit and driver.info.transaction_status == TransactionStatus.IDLE:
            driver.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @staticmethod
    def of(session: Session) -> UnitOfWork | None:
        uow = session.info.get(UOW)
        return uow if isinstance(uow, UnitOfWork) else None

    def side_write(self, work: Work) -> None:
        """Write work a read must not do in its own (read-only) transaction: a write unit of work runs it now,
        in its transaction (one made with `reads_first`, once that begins); a read one after its read transaction
        has ended, in a short write transaction on the same session, whether the request succeeds or fails (a
        session touch, a device's registration)."""
        if self.write and not self._write_pending:
            work(self.session)
        else:
            self._deferred.append(work)

    def finish(self, *, wait: bool = True) -> Future[None] | None:
        """Success: commit a write; end a read, then write what it deferred and what it must leave behind.

        A read's audit record may be committed elsewhere, together with other requests' (a group commit).
        `wait=False` returns that commit's future instead of waiting for it here: a request awaits it in the event
        loop (`app.core.threads.durable`), and its thread goes on to the next request."""
        if self.finished:
            return None
        self.finished = True
        pending: Future[None] | None = None
        try:
            if self.write:
                self._commit()
            else:
                self._end_snapshot()
                if self._deferred or any(hook.pending(self.session) for hook in _hooks):
                    self.session.rollback()  # read-only: gives the connection back
                    pending = self._write_deferred()
        finally:
            self.close()  # gives the connection back (a SQLite read snapshot still open ends here)
        if wait and pending is not None:
            pending.result()
            return None
        return pending

    def commit_and_release(self) -> None:
        """A write unit of work commits what it wrote so far and gives its connection back; its next statement
        starts a new write transaction (on a connection again). For slow work between two short writes that
        must hold neither a lock nor a connection: a sign-in's password hash is checked between them."""
        assert self.write, "only a write unit of work commits mid-way"
        self._commit()

    def abandon(self, *, keep: bool = False, then: Work | None = None) -> None:
        """Failure: roll back (a write with `keep` commits what it wrote: a failed sign-in still counts), then
        write a read's deferred work and `then` (the denial's audit record) in a short write transaction."""
        try:
            if keep and self.write:
                self._commit()
            else:
                self.session.rollback()
                for hook in _hooks:
                    hook.discard(self.session)
            if then is not None:
                self._deferred.append(then)
            pending = self._write_deferred()
        finally:
            self.close()
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self.session.close()  # rolls back whatever was not committed; gives the connection back

    def _end_snapshot(self) -> None:
        """A read that succeeded ends its PostgreSQL snapshot with COMMIT: to a read-only transaction the same as
        ROLLBACK, but at a ROLLBACK psycopg forgets every statement it prepared on the connection (and sends
        DEALLOCATE ALL), so the next requests on it would plan their statements again (docs/performance.md).
        Straight to the driver: nothing the session holds is flushed."""
        if self.engine.dialect.name != "postgresql" or not self.session.in_transaction():
            return
        driver = self._driver()
        if driver is not None and driver.info.transaction_status == TransactionStatus.INTRANS:
            driver.commit()

    def _driver(self) -> Any:
        """The driver's connection under the session's (sqlite3's or psycopg's; None once it is detached)."""
        return self.session.connection().connection.driver_connection

    def _commit(self) -> None:
        self.begin_write()
        self.session.flush()
        for hook in [hook for hook in _hooks if hook.pending(self.session)]:
            hook.seal(self.session)
        self.session.commit()
        self.session.bind = writing(self.engine)  # a next transaction (`commit_and_release`) begins as a write

    def _write_deferred(self) -> Future[None] | None:
        pending = [hook for hook in _hooks if hook.pending(self.session)]
        if not self._deferred and not pending:
            return None
        if not self._deferred and len(pending) == 1:
            handed_in = pending[0].write_alone(self.session)
            if handed_in is not None:
                return handed_in  # a sensitive read's audit record, committed with other requests' (group commit)
        work, self._deferred = self._deferred, []

        def everything(session: Session) -> None:
            for item in work:
                item(session)

        self._write(everything)
        return None

    def _write(self, work: Callable[[Session], None]) -> None:
        """`work` in a short write transaction on this unit of work's session, sealed and committed."""
        self.session.bind = writing(self.engine)  # the next transaction is a write (one connection again)
        self.write, self._write_pending = True, False
        begin(self.session, write=True)
        try:
            work(self.session)
            self._commit()
        except BaseException:
            self.session.rollback()
            for hook in _hooks:
                hook.discard(self.session)
            raise


@contextmanager
def unit_of_work(*, write: bool = True, engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work outside a request (CLI, jobs, tests): commit on success, abandon on error."""
    uow = UnitOfWork(engine, write=write)
    try:
        yield uow.session
    except BaseException:
        uow.abandon()
        raise
    uow.finish()


# --- one connection per request, enforced in tests ---------------------------------------------------------


class NestedCheckout(RuntimeError):
    """A request asked the pool for a second connection while it held one: under load, that deadlocks."""


def guard_single_checkout(engine: Engine) -> None:
    """Make a second checkout by the same request fail loudly (tests install it on every engine).

    The request is the one of `app.core.context` (a context variable, which follows the request into the
    thread pool); the connection remembers who checked it out, so a check-in from elsewhere counts right.
    """

    @event.listens_for(engine, "checkout")
    def _checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        ctx = context.get()
        if ctx is None:
            return
        if ctx.connections_held:
            raise NestedCheckout("a request checked out a second pooled connection while holding one")
        ctx.connections_held += 1
        record.info["request_context"] = ctx

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi: Any, record: Any) -> None:
        ctx = record.info.pop("request_context", None)
        if ctx is not None:
            ctx.connections_held -= 1
