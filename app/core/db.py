"""Engine and unit of work.

One unit of work per request (or per CLI command, per job): one Session, and through it **one pooled
connection at a time**. A request never waits for a second connection while it holds one: when every
connection is held by a request waiting for another, nothing moves (the stall of 16 phones pulling at once).
So side work runs on the unit of work's own session — inside its transaction (a write), or in a short write
transaction after its read transaction has ended and given the connection back (`side_write`). A test pool
guard (`guard_single_checkout`) makes a nested checkout fail loudly.

Writes begin with BEGIN IMMEDIATE on SQLite, so a read-then-write never fails half-way on a stale snapshot.
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
import sqlite3
import threading
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

IMMEDIATE = "app_begin_immediate"
# A read whose statements each see the latest commit, with no BEGIN (and so no ROLLBACK) of its own;
# `UnitOfWork.snapshot()` turns it into one snapshot when the reads must agree with each other.
STATEMENT_READS = "app_statement_reads"
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
        _configure_sqlite(engine, _write_lock(parsed.database or ""))
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


# --- SQLite's one writer -------------------------------------------------------------------------------------

SQLITE_WAIT_SECONDS = 30  # how long a write waits for SQLite's write lock (then 503 service_busy)
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(database: str) -> threading.Lock | None:
    """The process's lock for writing to one SQLite file (None for an in-memory database: one per connection)."""
    if not database or database == ":memory:":
        return None
    with _write_locks_guard:
        return _write_locks.setdefault(str(Path(database).resolve()), threading.Lock())


class WriterConnection(sqlite3.Connection):
    """A connection whose write transactions queue on the process's lock for the file before BEGIN IMMEDIATE.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps 1, 2, 5, … up to
    100 ms between tries. Sixteen phones posting visits at once spent most of their time asleep there: more
    connections made fewer visits a second than one, and the slowest waited seconds (bench/floor.py). Queued on
    a lock, the next writer starts the moment the last one commits. Other processes (`--workers 2`, the CLI)
    still meet in SQLite's busy handler, as before."""

    write_lock: threading.Lock | None = None
    holds_write_lock = False

    def begin_write(self) -> None:
        lock = self.write_lock
        if lock is not None and not self.holds_write_lock:
            if not lock.acquire(timeout=SQLITE_WAIT_SECONDS):
                raise sqlite3.OperationalError("database is locked")  # errors.transient: 503 service_busy
            self.holds_write_lock = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release_write_lock()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self.holds_write_lock and self.write_lock is not None:
            self.holds_write_lock = False
            self.write_lock.release()


def _configure_sqlite(engine: Engine, write_lock: threading.Lock | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.write_lock = write_lock
        # Take transaction control from the driver so BEGIN is ours to issue (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_SECONDS * 1000}")
        # LIKE as on PostgreSQL (case-sensitive), which also lets prefix matches use indexes.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(STATEMENT_READS, False):
            return  # the driver stays in autocommit: each statement is its own read
        # Straight to the driver: nothing of SQLAlchemy's statement machinery is needed for a BEGIN.
        driver = conn.connection.driver_connection
        if options.get(IMMEDIATE, False):
            driver.begin_write()
        else:
            driver.execute("BEGIN")


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

    def __init__(self, engine: Engine | None = None, *, write: bool, snapshot: bool = True) -> None:
        self.engine = engine or get_engine()
        self.write = write
        bind = writing(self.engine) if write else reading(self.engine) if snapshot else statement_reads(self.engine)
        self.session = Session(bind, expire_on_commit=False)
        self.session.info[UOW] = self
        self._deferred: list[Work] = []
        self.finished = False

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
        in its transaction; a read one after its read transaction has ended, in a short write transaction on
        the same session, whether the request succeeds or fails (a session touch, a device's registration)."""
        if self.write:
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

    def close_unused(self) -> None:
        """Finished without a statement of its own: its work was done elsewhere (app.core.batches)."""
        assert not self.session.in_transaction(), "a unit of work that did something is finished or abandoned"
        self.finished = True
        self.close()

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
        self.session.flush()
        for hook in [hook for hook in _hooks if hook.pending(self.session)]:
            hook.seal(self.session)
        self.session.commit()

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
        self.write = True
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
