"""Conflicts: a field a phone changed that the server had also changed since the phone's last pull.

The push merges field by field (docs/sync.md "Push"): the phone's changed fields are applied, and where the
server had changed the same field since `last_pulled_at` to a different value, the overwritten server value
and the phone's value are kept in `sync_conflicts` for a supervisor to look at. No accepted edit is lost
without trace. Supervisors (and admins) list them in their area and mark them resolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, or_, select
from sqlmodel import Session, SQLModel, col

from app.core.actor import Actor
from app.core.errors import Conflict, NotFound
from app.core.types import utcnow
from app.ledger import audit
from app.ledger.models import SyncLog
from app.sync.models import SyncConflict, SyncDevice
from app.sync.wire import shape

VALUES_MAX = 8000


class ConflictResolved(Conflict):
    code = "conflict_already_resolved"
    en = "This conflict has already been resolved."
    zh = "此冲突已处理。"


class ResolveOutcome(StrEnum):
    """What the supervisor decided (a code: no free text, which could carry personal details)."""

    acknowledged = "acknowledged"  # the phone's value stands
    corrected = "corrected"  # the record was corrected through the normal API afterwards
    referred = "referred"  # taken up with the worker


@dataclass(frozen=True)
class ServerChange:
    """The server changed the record since the phone's last pull: these fields (None: possibly all)."""

    fields: frozenset[str] | None

    def covers(self, name: str) -> bool:
        return self.fields is None or name in self.fields


def server_change(session: Session, table: str, record_id: str, after: int,
                  device_row_id: str | None = None) -> ServerChange | None:
    """The fields logged for the record with `seq > after` (committed changes the phone has not pulled), not
    counting the changes this device's own earlier pushes made (editing a field twice is no conflict)."""
    stmt = select(col(SyncLog.fields)).where(col(SyncLog.table_name) == table, col(SyncLog.record_id) == record_id,
                                             col(SyncLog.seq) > after)
    if device_row_id is not None:
        stmt = stmt.where(or_(col(SyncLog.device_row_id).is_(None), col(SyncLog.device_row_id) != device_row_id))
    rows = session.execute(stmt).all()
    if not rows:
        return None
    names: set[str] = set()
    for (fields,) in rows:
        # NULL: a create, delete or area exit (or an update of very many columns). A record created after the
        # base reached the phone in the pull just before this push, so the phone cannot have edited it since
        # (unless it is the phone's own create, which is no conflict): not counted.
        if fields is not None:
            names.update(fields.split(","))
    return ServerChange(frozenset(names)) if names else None


def _wire(table: str, record: SQLModel, names: Iterable[str]) -> dict[str, Any]:
    s = shape(table)
    wanted = set(names)
    return {c.name: (v if f is None else f(v)) for c, f in zip(s.columns, s.out, strict=True)
            if c.name in wanted for v in (getattr(record, c.name),)}


def _dump(values: dict[str, Any]) -> str:
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUES_MAX else json.dumps({"truncated": sorted(values)})


@dataclass(frozen=True)
class PushContext:
    device_row_id: str
    user_id: str
    last_pulled_at: int  # the conflict base (conflict_base), not necessarily the push's own cursor


def conflict_base(session: Session, device_row_id: str, after: int) -> int:
    """Since when a server change counts as concurrent with the phone's local edits.

    `synchronize()` pulls right before it pushes, and WatermelonDB keeps local changes over the pulled values
    of the same columns. So the server changes the phone's edits may overwrite unseen are those the pull just
    before this push handed out: since *its* `last_pulled_at`. That pull answered `after`. When it was recorded
    (it handed out changes), `last_cursor == after` and `cursor_lag` says where it started. A quiet pull records
    nothing, but a quiet pull can only answer `after` when the pull before it did too without handing out
    anything — a recorded pull that handed out changes moves the counter past its cursor (devices.record_pull).
    So a push presenting a cursor no recorded pull answered follows a quiet pull: nothing was handed out
    unseen, the base is `after` itself. (A phone that edits after a pull and pushes a minute later went
    through a quiet pull first: its edit overwrites nothing it had not seen, so no conflict is recorded.)"""
    device = session.get(SyncDevice, device_row_id)
    if device is not None and device.last_cursor == after and device.cursor_lag is not None:
        return max(after - device.cursor_lag, 0)
    return after


def record_if_any(session: Session, ctx: PushContext, table: str, record: SQLModel,
                  changes: dict[str, Any], client_raw: dict[str, Any]) -> list[str]:
    """Before the phone's `changes` are applied to `record`: keep the server values they overwrite where
    the server changed the same fields since the phone's pull. Returns the conflicting field names."""
    record_id = str(getattr(record, "id"))  # noqa: B009 (SQLModel has no `id` for mypy)
    since = server_change(session, table, record_id, ctx.last_pulled_at, ctx.device_row_id)
    if since is None:
        return []
    fields = sorted(name for name in changes if since.covers(name))
    if not fields:
        return []
    area = getattr(record, "area_path", None) or "/"
    session.add(SyncConflict(
        table_name=table, record_id=record_id, device_row_id=ctx.device_row_id,
        user_id=ctx.user_id, fields=json.dumps(fields), server_values=_dump(_wire(table, record, fields)),
        client_values=_dump({f: client_raw.get(f) for f in fields}), area_path=area,
        district_code=getattr(record, "district_code", None),
    ))
    return fields


# --- supervisors' view -------------------------------------------------------------------------------------


def conflicts_query(actor: Actor, *, resolved: bool | None, table: str | None) -> Select[Any]:
    stmt = select(SyncConflict).where(actor.area_filter(col(SyncConflict.area_path), col(SyncConflict.district_code)))
    if resolved is not None:
        stmt = stmt.where(col(SyncConflict.resolved_at).is_not(None) if resolved
                          else col(SyncConflict.resolved_at).is_(None))
    if table is not None:
        stmt = stmt.where(col(SyncConflict.table_name) == table)
    return stmt.order_by(col(SyncConflict.created_at).desc(), col(SyncConflict.id))


def audit_read(session: Session, ids: list[str]) -> None:
    """Conflicts carry record values: reading them is a sensitive read (ids only in the audit)."""
    if ids:
        audit.record(session, "sync.conflicts.read", target_type="sync_conflict", detail={"ids": ids})


def resolve(session: Session, actor: Actor, conflict_id: str, outcome: ResolveOutcome) -> SyncConflict:
    row = session.execute(
        conflicts_query(actor, resolved=None, table=None).where(col(SyncConflict.id) == conflict_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound()
    if row.resolved_at is not None:
        raise ConflictResolved()
    row.resolved_at, row.resolved_by = utcnow(), actor.user_id
    session.add(row)
    session.flush()
    audit.record(session, "sync.conflict.resolve", target_type="sync_conflict", target_id=row.id,
                 detail={"outcome": outcome.value, "table": row.table_name})
    return row
