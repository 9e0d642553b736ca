"""Request dependencies of the ground floor: the unit of work, settings, and the public-route marker.

Who the caller is (`get_actor`, `allow`, the actor aliases) lives in `app.auth.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.core import events
from app.core.config import Settings, get_settings
from app.core.db import UnitOfWork, admitted, get_engine
from app.core.errors import AppError
from app.core.threads import durable

T = TypeVar("T")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ACCESS_RULE = "__access_rule__"
# Marks a dependency that opens the request's unit of work (the OpenAPI document gives its routes a 503).
OPENS_UNIT_OF_WORK = "__opens_unit_of_work__"


@dataclass(frozen=True)
class RequestRefused:
    """Event: a request ended in an error that is audited (a denial, a lockout). The ledger records it."""

    method: str
    path: str
    status: int
    code: str
    outcome: str


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: one session, one pooled connection at a time, committed before the
    response is sent (app/core/db.py). It starts once a connection is sure to be free (`admitted`).

    Async, so opening it costs no hop to the thread pool: the Session is created here without I/O and its
    transaction begins at its first statement, in the thread that runs it. Finishing runs in the thread pool.
    """
    async with request_unit_of_work(request) as session:
        yield session


setattr(get_session, OPENS_UNIT_OF_WORK, True)


@asynccontextmanager
async def request_unit_of_work(request: Request) -> AsyncIterator[Session]:
    """`get_session`'s body, for a dependency that opens the unit of work itself (app.auth.deps.hop: one
    dependency instead of four on the routes every phone calls)."""
    engine = get_engine()
    async with admitted(engine):  # a connection is free for this request before it takes a thread
        # Reads run statement by statement on SQLite; a route whose reads must agree asks for a snapshot.
        uow = UnitOfWork(engine, write=request.method not in SAFE_METHODS, snapshot=False)
        try:
            yield uow.session
        except AppError as exc:
            then = _refusal(request, exc) if exc.audit_outcome else None
            await run_in_threadpool(uow.abandon, keep=exc.keep_changes, then=then)
            raise
        except BaseException:
            uow.close()  # here, not in the pool: a cancelled request must not leave its connection open
            raise
        else:
            if not uow.finished:  # a one-hop route (app.auth.deps.Hop) finished it in its own thread
                await durable(await run_in_threadpool(uow.finish, wait=False))


async def in_unit_of_work(request: Request, work: Callable[[Session], T], *, write: bool = True) -> T:
    """`work(session)` in a unit of work of its own, admitted and finished (or abandoned) in one trip to the thread
    pool, as `get_session` would. For a route that must give its connection back between two steps, with slow
    work between them that needs none (sign-in: the argon2 check runs between two short writes)."""
    engine = get_engine()
    async with admitted(engine):
        uow = UnitOfWork(engine, write=write, snapshot=False)

        def run() -> T:
            try:
                result = work(uow.session)
            except AppError as exc:
                uow.abandon(keep=exc.keep_changes, then=_refusal(request, exc) if exc.audit_outcome else None)
                raise
            except BaseException:
                uow.close()
                raise
            uow.finish()
            return result

        return await run_in_threadpool(run)


def _refusal(request: Request, exc: AppError) -> Callable[[Session], None]:
    refused = RequestRefused(request.method, request.url.path, exc.status, exc.code, exc.audit_outcome or "denied")

    def record(session: Session) -> None:
        events.emit(session, refused)

    return record


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def _settings() -> Settings:  # async: a cached object, no hop to the thread pool
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def public(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint as deliberately unauthenticated (tests check the list)."""
    setattr(func, ACCESS_RULE, "public")
    return func
