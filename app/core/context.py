"""Per-request context (request id, client address, actor) for audit records.

A mutable object is stored in a context variable by the ASGI middleware; dependencies running in worker
threads fill in the actor on the same object, so every layer sees one request's context.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestContext:
    request_id: str | None = None
    client_ip: str | None = None
    actor_id: str | None = None
    actor_role: str | None = None
    # Pooled connections this request holds (counted only where app.core.db.guard_single_checkout is on).
    connections_held: int = 0


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def current() -> RequestContext:
    ctx = _current.get()
    return ctx if ctx is not None else RequestContext()


def get() -> RequestContext | None:
    """The current request's context, or None outside a request."""
    return _current.get()


def set_current(ctx: RequestContext | None) -> object:
    return _current.set(ctx)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
