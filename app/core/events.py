"""Domain events: how a lower layer tells a higher one that something happened, without importing it.

Plain and in-process. An event is a small dataclass defined by the domain that emits it; a higher domain
subscribes a handler, explicitly, when the application is wired (`app.wiring.install`), never at import.
`emit` runs the handlers at once, in subscription order, in the caller's unit of work: what they write
commits or rolls back with the change that caused it, and an error they raise is the caller's error.

An event may carry a place for the handlers' answer (a visit write learns which tasks it completed),
which keeps the emitting domain ignorant of who answered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

E = TypeVar("E")
Handler = Callable[[Session, Any], None]
_handlers: defaultdict[type, list[Handler]] = defaultdict(list)


def subscribe(event_type: type[E], handler: Callable[[Session, E], None]) -> None:
    """Run `handler(session, event)` for every `event_type` emitted (once, however often it is called)."""
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def emit(session: Session, event: E) -> E:
    """Run the subscribed handlers now, in the caller's transaction; returns the event (with any answer)."""
    for handler in _handlers.get(type(event), ()):
        handler(session, event)
    return event


def subscribers(event_type: type) -> list[Handler]:
    return list(_handlers.get(event_type, ()))
