"""Appending to and verifying the hash-chained audit log.

Events are queued on the session (`record`) and sealed into the chain at commit (`seal_pending`), under
a chain lock: PostgreSQL takes a transaction-level advisory lock; SQLite already holds its single write
lock (write transactions begin IMMEDIATE). Holding the lock only for the final inserts keeps it short.

Every ORM write is recorded automatically (table, record id, changed field names — never values) by a
`before_flush` listener, so no service can forget. Bulk statements record their own events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel

from app.audit.models import AuditEvent
from app.core import context
from app.core.types import utcnow

GENESIS = "0" * 64
PENDING = "audit_pending"
CHAIN_LOCK_KEY = 7_301_042  # advisory lock id for the chain on PostgreSQL
# Tables whose writes are bookkeeping, recorded by explicit auth events instead.
UNAUDITED_TABLES = {"audit_events", "auth_sessions", "refresh_tokens", "login_throttle"}
HASHED_COLUMNS = (
    "id", "at", "actor_id", "actor_role", "action", "target_type", "target_id", "fields", "outcome",
    "status_code", "purpose", "request_id", "client_ip", "detail",
)


def record(
    session: Session,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    fields: Iterable[str] | None = None,
    outcome: str = "success",
    status_code: int | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
    actor_id: str | None = None,
    actor_role: str | None = None,
) -> None:
    """Queue an audit event; it is written when the unit of work commits."""
    ctx = context.current()
    session.info.setdefault(PENDING, []).append(
        {
            "at": utcnow(),
            "actor_id": actor_id or ctx.actor_id,
            "actor_role": actor_role or ctx.actor_role,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "fields": ",".join(sorted(fields)) if fields is not None else None,
            "outcome": outcome,
            "status_code": status_code,
            "purpose": purpose,
            "request_id": ctx.request_id,
            "client_ip": ctx.client_ip,
            "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else None,
        }
    )


def take_pending(session: Session) -> list[dict[str, Any]]:
    return session.info.pop(PENDING, [])


def row_hash(values: dict[str, Any], prev_hash: str) -> str:
    def norm(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    payload = json.dumps([norm(values[c]) for c in HASHED_COLUMNS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def seal_pending(session: Session, events: list[dict[str, Any]] | None = None) -> None:
    """Write queued events into the chain inside the current (write) transaction."""
    events = (events or []) + take_pending(session)
    if not events:
        return
    session.flush()  # the listener may queue more events for the last changes
    events += take_pending(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    last = session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    next_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    rows = []
    for values in events:
        values = {**values, "id": next_id}
        digest = row_hash(values, prev)
        rows.append({**values, "prev_hash": prev, "hash": digest})
        prev, next_id = digest, next_id + 1
    session.execute(AuditEvent.__table__.insert(), rows)  # type: ignore[attr-defined]


@dataclass
class ChainReport:
    checked: int
    first_broken_id: int | None
    reason: str | None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order; name the first row whose link or content does not check out."""
    checked = 0
    prev_hash: str | None = None
    expected_id: int | None = None
    for row in _iter_rows(session, batch):
        if prev_hash is None:
            # The first kept row anchors the chain (older rows may have been purged after retention).
            prev_hash = row.prev_hash
            expected_id = row.id
        if row.id != expected_id:
            return ChainReport(checked, expected_id, "missing row")
        if row.prev_hash != prev_hash:
            return ChainReport(checked, row.id, "link to previous row broken")
        values = {c: getattr(row, c) for c in HASHED_COLUMNS}
        if row_hash(values, prev_hash) != row.hash:
            return ChainReport(checked, row.id, "content does not match its hash")
        prev_hash, expected_id = row.hash, row.id + 1
        checked += 1
    return ChainReport(checked, None, None)


def _iter_rows(session: Session, batch: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(batch)  # type: ignore[arg-type]
        ).scalars().all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        session.expunge_all()


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


@event.listens_for(OrmSession, "before_flush")
def _record_writes(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    if PENDING not in session.info and not (session.new or session.dirty or session.deleted):
        return
    for obj, action in (
        *((o, "create") for o in session.new),
        *((o, "update") for o in session.dirty),
        *((o, "delete") for o in session.deleted),
    ):
        if not isinstance(obj, SQLModel):
            continue
        table = getattr(obj, "__tablename__", None)
        if not isinstance(table, str) or table in UNAUDITED_TABLES:
            continue
        state = inspect(obj)
        if action == "update":
            changed = [a.key for a in state.attrs if a.history.has_changes()]
            if not changed:
                continue
        elif action == "create":
            changed = [a.key for a in state.attrs if a.value is not None]
        else:
            changed = []
        ident = state.mapper.primary_key_from_instance(obj)
        record(
            session,  # type: ignore[arg-type]
            f"{table}.{action}",
            target_type=table,
            target_id=":".join(str(i) for i in ident if i is not None) or None,
            fields=changed,
        )
