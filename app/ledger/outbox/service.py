"""Write events into the outbox with the change, claim the due ones, settle each attempt.

- `enqueue` runs in the writing transaction: the event commits or rolls back with the change.
- `claim` is a short write transaction of its own: the due events (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two
  workers never take the same rows; SQLite: the write lock) get a lease — `claimed_by`, one more attempt counted,
  and `next_attempt_at` moved to the lease's end. A worker that dies holding a lease loses nothing: the event comes
  due again when the lease ends and is sent again with the same id (at least once).
- `settle` is another short write transaction, after the HTTP calls (no connection is held while sending): a
  delivered event is marked once (`state = 'pending'` in the WHERE clause); a failure is retried after an
  exponential backoff with jitter, or dead-lettered after `max_attempts` tries.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlmodel import Session, col

from app.core.bulk import table_of
from app.core.config import get_settings
from app.core.types import new_id, utcnow
from app.ledger.outbox.models import OutboxDelivery, OutboxEvent, OutboxState


@dataclass(frozen=True)
class Policy:
    """How often and how patiently an event is attempted (from the OUTBOX_* settings by default)."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    lease_seconds: float
    batch_size: int

    @classmethod
    def from_settings(cls) -> Policy:
        s = get_settings()
        return cls(max_attempts=s.outbox_max_attempts, backoff_seconds=s.outbox_backoff_seconds,
                   backoff_max_seconds=s.outbox_backoff_max_seconds, lease_seconds=s.outbox_lease_seconds,
                   batch_size=s.outbox_batch_size)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try: exponential, capped, with "equal jitter" (half fixed,
        half random) so receivers coming back up are not hit by every retry at once."""
        ceiling = min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.backoff_max_seconds)
        return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to (`status` None: no HTTP answer; `error` a code, never a message)."""

    event_id: str
    status: int | None
    error: str | None
    duration_ms: int
    started_at: datetime

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def enqueue(session: Session, *, type: str, endpoint_id: str, body: str, event_id: str | None = None,
            subject: tuple[str, str, str | None] | None = None) -> OutboxEvent:
    """Add an event to the outbox in the caller's transaction. `subject` is (type, id, district code)."""
    subject_type, subject_id, district = subject or (None, None, None)
    event = OutboxEvent(id=event_id or new_id(), type=type, endpoint_id=endpoint_id, body=body,
                        subject_type=subject_type, subject_id=subject_id, district_code=district)
    session.add(event)
    return event


def claim(session: Session, policy: Policy, *, now: datetime | None = None) -> tuple[str, list[OutboxEvent]]:
    """Lease up to `policy.batch_size` due events to a new claim token; returns (token, events)."""
    now = now or utcnow()
    token = new_id()
    due = (select(col(OutboxEvent.id))
           .where(col(OutboxEvent.state) == OutboxState.pending.value, col(OutboxEvent.next_attempt_at) <= now)
           .order_by(col(OutboxEvent.next_attempt_at), col(OutboxEvent.id))
           .limit(policy.batch_size)
           .with_for_update(skip_locked=True))
    ids = list(session.execute(due).scalars())
    if not ids:
        return token, []
    session.execute(update(OutboxEvent).where(col(OutboxEvent.id).in_(ids)).values(
        claimed_by=token, attempts=col(OutboxEvent.attempts) + 1,
        next_attempt_at=now + timedelta(seconds=policy.lease_seconds)))
    events = session.execute(select(OutboxEvent).where(col(OutboxEvent.claimed_by) == token)
                             .order_by(col(OutboxEvent.created_at), col(OutboxEvent.id))
                             .execution_options(populate_existing=True)).scalars().all()
    return token, list(events)


def settle(session: Session, policy: Policy, token: str, claimed: Sequence[OutboxEvent],
           outcomes: Sequence[Outcome]) -> list[str]:
    """Record the attempts and move each event on; returns the ids marked delivered now (each once ever).

    A few statements per batch, not per event (executemany): the delivered ones still pending, locked and marked;
    the failed ones still under this claim, rescheduled or dead-lettered; the delivery log."""
    now, events = utcnow(), {e.id: e for e in claimed}
    table = table_of(OutboxEvent)
    ok = {o.event_id: o for o in outcomes if o.ok}
    delivered = list(session.execute(
        select(col(OutboxEvent.id)).where(col(OutboxEvent.id).in_(list(ok)),
                                          col(OutboxEvent.state) == OutboxState.pending.value)
        .with_for_update()).scalars()) if ok else []
    if delivered:
        session.execute(update(table).where(table.c.id == bindparam("b_id")).values(
            state=OutboxState.delivered.value, delivered_at=now, claimed_by=None, last_error=None,
            last_status=bindparam("b_status")), [{"b_id": i, "b_status": ok[i].status} for i in delivered])
    verdicts = {i: OutboxState.delivered.value for i in ok}
    failed = []
    for outcome in outcomes:
        if outcome.ok:
            continue
        tries = events[outcome.event_id].attempts
        dead = tries >= policy.max_attempts or outcome.error == "endpoint_gone"
        verdicts[outcome.event_id] = OutboxState.dead.value if dead else "retry"
        state = OutboxState.dead if dead else OutboxState.pending
        failed.append({"b_id": outcome.event_id, "b_state": state.value, "b_next": now + policy.backoff(tries),
                       "b_status": outcome.status, "b_error": outcome.error})
    if failed:
        session.execute(update(table).where(
            table.c.id == bindparam("b_id"), table.c.claimed_by == token, table.c.state == OutboxState.pending.value,
        ).values(state=bindparam("b_state"), claimed_by=None, next_attempt_at=bindparam("b_next"),
                 last_status=bindparam("b_status"), last_error=bindparam("b_error")), failed)
    session.execute(insert(table_of(OutboxDelivery)), [
        {"event_id": o.event_id, "endpoint_id": events[o.event_id].endpoint_id, "attempt": events[o.event_id].attempts,
         "at": o.started_at, "status_code": o.status, "duration_ms": o.duration_ms, "error": o.error,
         "outcome": verdicts[o.event_id]} for o in outcomes])
    return delivered


def redeliver(session: Session, event: OutboxEvent) -> None:
    """A dead event is tried again from the start, with the same id (receivers that got it once dedupe it)."""
    event.state, event.attempts, event.claimed_by = OutboxState.pending.value, 0, None
    event.next_attempt_at = utcnow()
    session.add(event)


def purge(session: Session, *, keep_days: int) -> int:
    """Delete delivered events older than `keep_days` and their delivery log; returns how many events."""
    cutoff = utcnow() - timedelta(days=keep_days)
    old = select(col(OutboxEvent.id)).where(col(OutboxEvent.state) == OutboxState.delivered.value,
                                            col(OutboxEvent.delivered_at) < cutoff)
    ids = list(session.execute(old).scalars())
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        session.execute(delete(OutboxDelivery).where(col(OutboxDelivery.event_id).in_(chunk)))
        session.execute(delete(OutboxEvent).where(col(OutboxEvent.id).in_(chunk)))
    return len(ids)
