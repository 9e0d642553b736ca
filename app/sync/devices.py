"""Devices: registered on first sync, their bookkeeping, the scope they hold, revocation and listing.

A device's scope (the division path prefixes whose records it holds) changes only once the device proves
it received the pull that sent the new scope: a later pull with `last_pulled_at >= pending_cursor` and
`> pending_from`. A pull whose response was lost is retried with the old cursor and sends the scope again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.auth.models import User
from app.core.actor import Actor, Role
from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.lean import Lean
from app.core.types import utcnow
from app.ledger import audit, changes
from app.ledger.models import SyncCounter
from app.sync.models import SyncDevice, SyncRejection

DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
SKEW_MAX_MS = 10 * 365 * 86_400_000


class DeviceIdRequired(Unprocessable):
    code = "device_id_required"
    en = "The X-Device-Id header is required: 8 to 64 letters, digits, '.', '_' or '-'."
    zh = "需要 X-Device-Id 请求头：8至64位字母、数字、“.”、“_”或“-”。"


class DeviceRevoked(Forbidden):
    code = "device_revoked"
    en = "This device has been revoked; ask your supervisor."
    zh = "此设备已被停用，请联系上级主管。"


def check_device_id(value: str | None) -> str:
    if value is None or not DEVICE_ID.match(value):
        raise DeviceIdRequired()
    return value


def scope_key(prefixes: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(sorted(prefixes)).encode()).hexdigest()


def _prefixes(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(raw))


@dataclass(frozen=True)
class DeviceState:
    row_id: str | None  # None: a device the server has not registered yet
    held_scope: tuple[str, ...] | None  # None: unknown (a new device, or none acknowledged yet)
    # What the last recorded pull left (to skip bookkeeping for a quiet pull that would change nothing).
    last_pull_at: datetime | None = None
    last_cursor: int | None = None
    app_version: str | None = None
    schema_version: int | None = None
    pending: bool = False
    open_rejections: bool = False
    register: bool = False  # the pull must register the device or settle its scope (a write)


def _settles(device: Any, last_pulled_at: int) -> bool:
    """Does this pull acknowledge the scope sent to the device earlier (so the device row must change)?"""
    pending_cursor, pending_from = device.pending_cursor, device.pending_from
    return (device.pending_scope is not None and pending_cursor is not None and pending_from is not None
            and last_pulled_at >= pending_cursor and last_pulled_at > pending_from)


def pull_state(session: Session, actor: Actor, device_id: str, last_pulled_at: int) -> tuple[DeviceState, int]:
    """The device's state for a pull, and the pull's cursor (the change counter), read without writing (a pull
    is a read): what `open_device` would make of the device — a new device holds no scope; a scope the pull
    acknowledges is the one it holds. The pull's bookkeeping (`open_device`, `record_pull`) is written after the
    read, unless the pull is quiet. One statement, built once: every phone polls with it."""
    row = _PULL_STATE.first(session.connection(), {"user_id": actor.user_id, "device_id": device_id})
    assert row is not None, "sync_counter has its one row from the first migration"
    cursor = int(row.cursor)
    if row.id is None:
        return DeviceState(None, None, register=True), cursor
    if row.revoked_at is not None:
        raise DeviceRevoked()
    state = _state_of(row, last_pulled_at, bool(row.open_rejections))
    if _settles(row, last_pulled_at):
        assert row.pending_scope is not None
        held = _prefixes(row.pending_scope)
        return dataclasses.replace(state, held_scope=held, pending=False, register=True), cursor
    return state, cursor


def open_device(session: Session, actor: Actor, device_id: str, last_pulled_at: int) -> DeviceState:
    """Register the device or find it (403 when revoked) and settle an acknowledged scope (a write).

    Two first syncs of one phone at once: the second insert meets the first one's row (unique per user and
    device) and uses it."""
    device = _locked(session, actor, device_id)
    if device is None:
        area, district = _home(actor.area_prefixes or ())
        try:
            with session.begin_nested():
                session.add(SyncDevice(user_id=actor.user_id, device_id=device_id, area_path=area,
                                       district_code=district))
                session.flush()
        except IntegrityError:
            pass
        device = _locked(session, actor, device_id)
        assert device is not None
    if device.revoked_at is not None:
        raise DeviceRevoked()
    if _settles(device, last_pulled_at):
        assert device.pending_scope is not None
        device.scope_prefixes, device.scope_key = device.pending_scope, _key_of(device.pending_scope)
        device.pending_scope = device.pending_cursor = device.pending_from = None
        session.add(device)
    return _state(session, device, last_pulled_at)


# Built once (every pull reads them; building a statement costs more than running it on its index).
_DEVICE = select(SyncDevice).where(col(SyncDevice.user_id) == bindparam("user_id"),
                                   col(SyncDevice.device_id) == bindparam("device_id"))
_DEVICE_LOCKED = _DEVICE.with_for_update()
_OPEN_REJECTION = select(col(SyncRejection.id)).where(col(SyncRejection.device_row_id) == bindparam("device_row_id"),
                                                      col(SyncRejection.reconciled).is_(False)).limit(1)
# A pull's first read: the counter's one row, the device (if registered) and whether it has an open rejection.
_DEVICES = SyncDevice.__table__  # type: ignore[attr-defined]
_PULL_STATE = Lean(select(
    col(SyncCounter.seq).label("cursor"),
    *(_DEVICES.c[name] for name in ("id", "revoked_at", "scope_prefixes", "last_pull_at", "last_cursor", "app_version",
                                     "schema_version", "pending_scope", "pending_cursor", "pending_from")),
    exists().where(col(SyncRejection.device_row_id) == _DEVICES.c.id, col(SyncRejection.reconciled).is_(False))
    .label("open_rejections"),
).select_from(SyncCounter).outerjoin(_DEVICES, and_(_DEVICES.c.user_id == bindparam("user_id"),
                                                    _DEVICES.c.device_id == bindparam("device_id"))
                                     ).where(col(SyncCounter.id) == 1))


def _locked(session: Session, actor: Actor, device_id: str) -> SyncDevice | None:
    return session.execute(_DEVICE_LOCKED, {"user_id": actor.user_id, "device_id": device_id}).scalar_one_or_none()


def _state(session: Session, device: SyncDevice, last_pulled_at: int) -> DeviceState:
    open_rejections = session.execute(_OPEN_REJECTION, {"device_row_id": device.id}).first() is not None
    return _state_of(device, last_pulled_at, open_rejections)


def _state_of(device: Any, last_pulled_at: int, open_rejections: bool) -> DeviceState:
    """From a `SyncDevice`, or a row of its columns."""
    return DeviceState(device.id, _prefixes(device.scope_prefixes) if last_pulled_at else None,
                       device.last_pull_at, device.last_cursor, device.app_version, device.schema_version,
                       device.pending_scope is not None, open_rejections)


# A pull that sends nothing and changes nothing is recorded at most this often (the device list shows the
# last pull to the minute), so phones polling an unchanged server cost one read, not a durable write.
QUIET_PULL_RESOLUTION = timedelta(seconds=60)


def quiet(state: DeviceState, pull: PullRecord) -> bool:
    """True when recording this pull would only move `last_pull_at` by less than QUIET_PULL_RESOLUTION."""
    counts = pull.counts
    if counts.get("updated") or counts.get("deleted") or counts.get("full_tables"):
        return False
    if pull.cursor != pull.last_pulled_at or state.last_cursor != pull.cursor:
        return False
    if state.register or state.pending or state.open_rejections or state.held_scope is None:
        return False
    if set(state.held_scope) != set(pull.actor.area_prefixes or ()):
        return False
    if (state.app_version, state.schema_version) != (pull.app_version, pull.schema_version):
        return False
    return state.last_pull_at is not None and utcnow() - state.last_pull_at < QUIET_PULL_RESOLUTION


def _home(prefixes: tuple[str, ...]) -> tuple[str, str | None]:
    """Where a device is listed: its user's first assigned area (supervisors of that area see it)."""
    area = prefixes[0] if prefixes else "/"
    parts = [p for p in area.split("/") if p]
    return area, parts[1] if len(parts) > 1 else None


def usernames(session: Session, user_ids: set[str]) -> dict[str, str]:
    rows = session.execute(select(col(User.id), col(User.username)).where(col(User.id).in_(user_ids))).all()
    return {i: u for i, u in rows}


def _key_of(raw: str) -> str:
    return scope_key(tuple(json.loads(raw)))


@dataclass(frozen=True)
class PullRecord:
    device_id: str  # the phone's own id (X-Device-Id)
    actor: Actor
    last_pulled_at: int
    cursor: int
    held_scope: tuple[str, ...] | None
    app_version: str | None
    schema_version: int
    device_time_ms: int | None
    counts: dict[str, Any]


def record_pull(session: Session, pull: PullRecord) -> None:
    """After a pull (in a short write transaction once its read has ended): register the device or settle its
    scope, then its bookkeeping, the scope just sent, reconciled rejections, the audit event."""
    state = open_device(session, pull.actor, pull.device_id, pull.last_pulled_at)
    device = session.get(SyncDevice, state.row_id, with_for_update=True)
    if device is None:  # pragma: no cover - rows are never deleted
        return
    now = utcnow()
    device.last_pull_at, device.last_cursor = now, pull.cursor
    device.cursor_lag = max(pull.cursor - pull.last_pulled_at, 0)
    device.pulls += 1
    device.app_version, device.schema_version = pull.app_version, pull.schema_version
    if pull.device_time_ms is not None:
        device.clock_skew_ms = max(min(pull.device_time_ms - int(now.timestamp() * 1000), SKEW_MAX_MS), -SKEW_MAX_MS)
    prefixes = pull.actor.area_prefixes or ()
    device.area_path, device.district_code = _home(prefixes)
    if pull.held_scope is not None and set(pull.held_scope) == set(prefixes):
        device.pending_scope = device.pending_cursor = device.pending_from = None
    else:
        device.pending_scope = json.dumps(sorted(prefixes))
        device.pending_cursor, device.pending_from = pull.cursor, pull.last_pulled_at
        # Move the counter past this pull's cursor, so the pull acknowledging the scope presents a cursor
        # greater than the one the device had (a retry presents the old one), even when nothing else is written.
        changes.stage(session)
    if pull.counts.get("updated") or pull.counts.get("deleted"):
        # A pull that handed out changes moves the counter past its cursor too, so no later pull can answer the
        # same cursor while writing nothing: a push presenting this cursor follows this very pull, and one
        # presenting a later cursor follows a pull that came after it (app/sync/conflicts.py conflict_base).
        changes.stage(session)
    session.add(device)
    if pull.last_pulled_at:
        rejections = SyncRejection.__table__  # type: ignore[attr-defined]
        session.execute(
            update(rejections)
            .where(rejections.c.device_row_id == device.id, rejections.c.reconciled.is_(False),
                   rejections.c.seq_at <= pull.last_pulled_at)
            .values(reconciled=True)
        )
    audit.record(session, "sync.pull", target_type="sync_device", target_id=device.id, detail=pull.counts)


def record_push(session: Session, device_row_id: str, app_version: str | None, device_time_ms: int | None,
                counts: dict[str, Any]) -> None:
    """After a push (same transaction): the device's bookkeeping and the `sync.push` audit event."""
    device = session.get(SyncDevice, device_row_id, with_for_update=True)
    if device is None:  # pragma: no cover - rows are never deleted
        return
    now = utcnow()
    device.last_push_at = now
    device.pushes += 1
    device.last_rejected = int(counts["rejected"])
    device.rejected_total += device.last_rejected
    if app_version is not None:
        device.app_version = app_version
    if device_time_ms is not None:
        device.clock_skew_ms = max(min(device_time_ms - int(now.timestamp() * 1000), SKEW_MAX_MS), -SKEW_MAX_MS)
    session.add(device)
    session.flush()
    audit.record(session, "sync.push", target_type="sync_device", target_id=device.id, detail=counts)


def pending_rejections(session: Session, device_row_id: str, after: int, cursor: int) -> list[tuple[str, str]]:
    """(table, record id) of the device's rejected records it has not been sent yet for sure: stamped after
    the cursor it presents (a device presenting a later cursor has received a pull that carried them)."""
    rows = session.execute(
        select(col(SyncRejection.table_name), col(SyncRejection.record_id))
        .where(col(SyncRejection.device_row_id) == device_row_id, col(SyncRejection.reconciled).is_(False),
               col(SyncRejection.seq_at) > after, col(SyncRejection.seq_at) <= cursor)
    ).all()
    return [(t, r) for t, r in rows]


# --- listing and revocation ------------------------------------------------------------------------------

def devices_query(actor: Actor) -> Select[Any]:
    """Devices the actor may see: a worker their own; supervisors those of users in their area; admins all."""
    stmt = select(SyncDevice).order_by(col(SyncDevice.first_seen_at), col(SyncDevice.id))
    if actor.role == Role.worker:
        return stmt.where(col(SyncDevice.user_id) == actor.user_id)
    return stmt.where(actor.area_filter(col(SyncDevice.area_path)))


def revoke(session: Session, actor: Actor, row_id: str) -> SyncDevice:
    row = session.execute(
        devices_query(actor).where(col(SyncDevice.id) == row_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound()
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = utcnow(), actor.user_id
        session.add(row)
        session.flush()
    return row
