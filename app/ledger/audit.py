"""The hash-chained audit log: recording, appending, verifying, purging.

Events are queued on the unit of work's ledger (`record`) and appended to the chain when it commits
(`append`, from the ledger's commit hook), under a chain lock: PostgreSQL locks the change log's counter row
(`lock_chain`), which a transaction that stamps change-log rows holds already; SQLite already holds its single
write lock (write transactions begin IMMEDIATE). Holding the lock only for the final statements keeps it short.

Every ORM write is recorded automatically (table, record id, changed field names — never values, and the
row's area) by the ledger's flush listener (`collect`), so no service can forget; a table opts out with
`info={"audited": False}`. Bulk statements record their own events.

Chain format: version 1 rows hash `V1_COLUMNS` with SHA-256; version 2 (from migration 0005) also the target's
area, so a district can read its own part of the log; version 3 (migration 0007) is version 2 keyed: the row
hash is HMAC-SHA-256 under AUDIT_HMAC_KEYS (the key's id, `hmac_kid`, is a hashed column), so write access to
the database is no longer enough to rewrite a row and recompute every later hash. Each row says its version,
so old rows verify as written; a version never goes backwards along the chain (a downgrade to the unkeyed
format is named). Signed checkpoints of the head (app/ledger/checkpoints.py) catch what no chain can: its
newest rows cut off.

`verify_chain` walks the chain and names the first altered, unlinked or missing row; `purge` removes the
oldest rows once retention (>= 180 days) allows, recording the purge as the anchor the kept chain is
verified from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypedDict

from sqlalchemy import Connection, Engine, Row, func, inspect, select, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel, col
from typing_extensions import Unpack

from app.core import context
from app.core.bulk import BulkWriter, table_of
from app.core.config import Settings, get_settings, parse_keys
from app.core.db import begin, get_engine, reading
from app.core.errors import Unprocessable
from app.core.lean import Lean
from app.core.types import utcnow
from app.ledger.models import AuditEvent
from app.ledger.state import ledger_of

GENESIS = "0" * 64
MIN_RETENTION_DAYS = 180  # Cybersecurity Law art. 21; the database guards enforce the same figure
CHAIN_VERSION = 3  # what new rows are written with
KEYED_FROM = 3  # versions from this one on are HMACs
V1_COLUMNS = (
    "id", "at", "actor_id", "actor_role", "action", "target_type", "target_id", "fields", "outcome",
    "status_code", "purpose", "request_id", "client_ip", "detail",
)
HASHED = {1: V1_COLUMNS, 2: (*V1_COLUMNS, "chain_version", "area_path", "district_code")}
HASHED[3] = (*HASHED[2], "hmac_kid")
HASHED_COLUMNS = HASHED[CHAIN_VERSION]
CHAIN_COLUMNS = (*HASHED_COLUMNS, "prev_hash", "hash")


class EventFields(TypedDict, total=False):
    target_type: str | None
    target_id: str | None
    fields: Iterable[str] | None  # field names, never values
    outcome: str  # success (default), denied, failure
    status_code: int | None
    purpose: str | None
    detail: dict[str, Any] | None  # ids, codes and counts only
    actor_id: str | None  # default: the request's actor
    actor_role: str | None
    area_path: str | None  # where the target lies: a district reads its own part of the log
    district_code: str | None  # default: taken from area_path


def record(session: Session, action: str, **values: Unpack[EventFields]) -> None:
    """Queue an audit event on the unit of work's ledger; it joins the chain when the work commits."""
    ledger_of(session).events.append(event(action, **values))


# `json.dumps(detail, sort_keys=True, ensure_ascii=False)` without making an encoder per event (a push records a
# thousand).
_DETAIL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def event(action: str, **values: Unpack[EventFields]) -> dict[str, Any]:
    """An audit event's values: the chain's columns but its position and hashes."""
    ctx = context.current()
    area_path, district_code = values.get("area_path"), values.get("district_code")
    if district_code is None and area_path:
        parts = [p for p in area_path.split("/") if p]
        district_code = parts[1] if len(parts) > 1 else None
    fields, detail = values.get("fields"), values.get("detail")
    return {
        "at": utcnow(),
        "actor_id": values.get("actor_id") or ctx.actor_id,
        "actor_role": values.get("actor_role") or ctx.actor_role,
        "action": action,
        "target_type": values.get("target_type"),
        "target_id": values.get("target_id"),
        "fields": ",".join(sorted(fields)) if fields is not None else None,
        "outcome": values.get("outcome", "success"),
        "status_code": values.get("status_code"),
        "purpose": values.get("purpose"),
        "request_id": ctx.request_id,
        "client_ip": ctx.client_ip,
        "detail": _DETAIL_JSON(detail) if detail else None,
        "chain_version": CHAIN_VERSION,
        "area_path": area_path,
        "district_code": district_code,
        "hmac_kid": chain_keys().current,
    }


class UnknownChainKey(LookupError):
    """A keyed row names a key that is not configured (AUDIT_HMAC_KEYS): it cannot be verified here."""


@dataclass(frozen=True)
class ChainKeys:
    current: str
    secrets: dict[str, bytes]


def chain_keys(settings: Settings | None = None) -> ChainKeys:
    return _chain_keys((settings or get_settings()).audit_hmac_keys)


@lru_cache(maxsize=4)
def _chain_keys(value: str) -> ChainKeys:
    raw = parse_keys(value, "AUDIT_HMAC_KEYS")
    if any(len(kid) > 20 for kid in raw):
        raise ValueError("AUDIT_HMAC_KEYS: key ids are at most 20 characters")
    return ChainKeys(next(iter(raw)), {kid: secret.encode() for kid, secret in raw.items()})


def row_hash(values: dict[str, Any], prev_hash: str, keys: ChainKeys | None = None) -> str:
    """The row's hash over the previous hash and its hashed columns, as its chain version lists them:
    SHA-256 for versions 1 and 2, HMAC-SHA-256 under the row's key (`hmac_kid`) from version 3 on."""
    version = values.get("chain_version") or 1
    hashed = [v.isoformat() if isinstance(v, datetime) else v for v in map(values.__getitem__, HASHED[version])]
    payload = (prev_hash + _HASHED_JSON(hashed)).encode()
    if version < KEYED_FROM:
        return hashlib.sha256(payload).hexdigest()
    secret = (keys or chain_keys()).secrets.get(values.get("hmac_kid") or "")
    if secret is None:
        raise UnknownChainKey(values.get("hmac_kid"))
    return hmac.digest(secret, payload, "sha256").hex()


# The hashed columns' text: `json.dumps` with these options, without making an encoder per row (a push seals a
# thousand); `hmac.digest` above is `hmac.new(...).hexdigest()` in one C call.
_HASHED_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# The chain's last link; built once (every audited request's commit reads it).
_CHAIN_END = Lean(select(col(AuditEvent.id), col(AuditEvent.hash)).order_by(col(AuditEvent.id).desc()).limit(1))


def append(conn: Connection, events: list[dict[str, Any]]) -> None:
    """Append queued events to the chain, in the connection's write transaction (the chain lock is held; a
    session has flushed: `ledger.service.seal`)."""
    if not events:
        return
    last = _CHAIN_END.first(conn)
    next_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    keys = chain_keys()
    rows = []
    for values in events:
        values = {**values, "id": next_id}
        digest = row_hash(values, prev, keys)
        rows.append((*(values[c] for c in HASHED_COLUMNS), prev, digest))
        prev, next_id = digest, next_id + 1
    BulkWriter(conn).write(table_of(AuditEvent), CHAIN_COLUMNS, rows)  # a sync push seals a thousand


def lock_chain(conn: Connection) -> None:
    """PostgreSQL: serialise appends (and purges) with the row lock of the change log's counter (`sync_counter`),
    held until the transaction ends. A transaction that stamps change-log rows takes that lock by updating the
    counter (`changes.stamp`), with no statement of its own: `ledger.service.seal` calls this only for one that
    does not (an audited read's group commit, a sign-in's record, a purge, a checkpoint).

    SQLite needs nothing: write transactions begin IMMEDIATE and so already hold the database's single
    write lock. The lock is re-entrant within a transaction.
    """
    if conn.dialect.name == "postgresql":
        _LOCK_CHAIN.rows(conn)


_LOCK_CHAIN = Lean(text("SELECT seq FROM sync_counter WHERE id = 1 FOR UPDATE"))


@dataclass
class ChainReport:
    checked: int
    first_broken_id: int | None
    reason: str | None
    # The newest row checked: record it outside the system (a printed report, a ticket) to detect a later
    # truncation of the newest rows, which no chain can reveal on its own.
    last_id: int | None = None
    last_hash: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def verify_chain(session: Session, batch: int = 5000, *, keyed_from: int | None = None) -> ChainReport:
    """Walk the chain in order; name the first row whose link or content does not check out.

    The chain starts at id 1 from the genesis hash. After a retention purge it starts at the first kept
    row, and that row is accepted as the start only when an `audit.purge` record names the row before it
    (`anchor_id`) and that row's hash (`anchor_hash`) — so deleting the oldest rows outside a purge is
    found too. A missing row is named by its id. A row whose chain version is lower than its predecessor's,
    or (`keyed_from`, from a checkpoint) an unkeyed row at or after the first keyed one, is a downgrade.
    """
    anchors = _purge_anchors(session)
    keys = chain_keys()
    checked, version = 0, 0
    prev_hash: str | None = None
    expected_id: int | None = None
    last: tuple[int, str] | None = None
    for row in _iter_rows(session, batch):
        tail = last or (None, None)
        if prev_hash is None:
            broken = _check_start(row.id, row.prev_hash, anchors)
            if broken is not None:
                return ChainReport(checked, *broken)
            prev_hash, expected_id = row.prev_hash, row.id
        if row.id != expected_id:
            return ChainReport(checked, expected_id, "missing row", *tail)
        if row.prev_hash != prev_hash:
            return ChainReport(checked, row.id, "link to previous row broken", *tail)
        row_version = row.chain_version or 1
        if row_version < version or (keyed_from is not None and row.id >= keyed_from and row_version < KEYED_FROM):
            return ChainReport(checked, row.id, "chain format downgraded (an unkeyed row after keyed ones)", *tail)
        reason = _content_problem(row, prev_hash, keys)
        if reason is not None:
            return ChainReport(checked, row.id, reason, *tail)
        prev_hash, expected_id, version = row.hash, row.id + 1, row_version
        last = (row.id, row.hash)
        checked += 1
    return ChainReport(checked, None, None, *(last or (None, None)))


def _content_problem(row: Row[Any], prev_hash: str, keys: ChainKeys) -> str | None:
    version = row.chain_version or 1
    if version not in HASHED:
        return "content does not match its hash"
    values = {c: getattr(row, c) for c in HASHED[version]}
    try:
        digest = row_hash({**values, "chain_version": version}, prev_hash, keys)
    except UnknownChainKey:
        return f"chain key {row.hmac_kid!r} is not configured (AUDIT_HMAC_KEYS): the row cannot be verified"
    return None if hmac.compare_digest(digest, row.hash or "") else "content does not match its hash"


def verify_snapshot(engine: Engine | None = None, *, keyed_from: int | None = None) -> ChainReport:
    """`verify_chain` over one consistent snapshot, in its own read-only transaction.

    On PostgreSQL the walk runs in REPEATABLE READ, so a purge committed half-way through cannot show up
    as "missing row"; a SQLite read transaction is a snapshot already.
    """
    with Session(reading(engine or get_engine())) as session:
        begin(session, write=False)
        try:
            return verify_chain(session, keyed_from=keyed_from)
        finally:
            session.rollback()


def _check_start(first_id: int, first_prev: str, anchors: set[tuple[int, str]]) -> tuple[int, str] | None:
    """Is the first kept row a legitimate start of the chain? (first broken id, reason) if not."""
    if first_id < 1:
        return first_id, "row outside the chain (id below 1)"
    if first_id == 1:
        return None if first_prev == GENESIS else (1, "first row does not start from the genesis hash")
    vouched = {h for anchor_id, h in anchors if anchor_id == first_id - 1}
    if first_prev in vouched:
        return None
    if vouched:
        return first_id, "link to the purge anchor broken"
    # Rows before the first kept one are gone without a purge record covering them: name the first of them.
    covered = max((a for a, _ in anchors if a < first_id), default=0)
    return covered + 1, "missing row (older rows deleted outside a purge)"


def _purge_anchors(session: Session) -> set[tuple[int, str]]:
    """(anchor_id, anchor_hash) named by every kept purge record (their own integrity is checked by the walk)."""
    anchors = set()
    details = session.execute(select(col(AuditEvent.detail)).where(col(AuditEvent.action) == PURGE_ACTION))
    for (raw,) in details:
        try:
            detail = json.loads(raw or "null")
        except ValueError:
            continue
        if isinstance(detail, dict):
            anchor_id, anchor_hash = detail.get("anchor_id"), detail.get("anchor_hash")
            if isinstance(anchor_id, int) and isinstance(anchor_hash, str):
                anchors.add((anchor_id, anchor_hash))
    return anchors


def _iter_rows(session: Session, batch: int) -> Iterator[Row[Any]]:
    # Plain rows, not entities: nothing enters the session's identity map (the old version had to
    # expunge_all(), which also detached the caller's own objects).
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in CHAIN_COLUMNS]  # the newest version's: a superset of the older ones
    after: int | None = None  # from the lowest id there is: a row slipped in below 1 is walked (and named)
    while True:
        stmt = select(*columns).order_by(table.c.id).limit(batch)
        if after is not None:
            stmt = stmt.where(table.c.id > after)
        rows = session.execute(stmt).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


# --- retention -------------------------------------------------------------------------------------

PURGE_ACTION = "audit.purge"


class RetentionNotReached(Unprocessable):
    code = "audit_retention"
    en = ("Audit records are kept for the retention period (at least 180 days); only older records can be "
          "purged.")
    zh = "审计记录须保存至少保留期（不少于180天）；只能清理早于保留期的记录。"


@dataclass
class PurgeResult:
    deleted: int
    cutoff: datetime
    anchor_id: int | None  # the last purged row: the kept chain now starts right after it
    anchor_hash: str | None


def db_now(session: Session) -> datetime:
    """The database's clock (PostgreSQL's guard trigger judges row age by it), else the app's."""
    if session.get_bind().dialect.name == "postgresql":
        now: datetime = session.execute(text("SELECT now()")).scalar_one()
        return now.astimezone(UTC)
    return utcnow()


def purge(session: Session, before: datetime, *, settings: Settings | None = None,
          detail: dict[str, Any] | None = None) -> PurgeResult:
    """Delete the oldest audit rows, those recorded before `before`, once retention allows it.

    Refuses (422 `audit_retention`) a cut-off younger than AUDIT_RETENTION_DAYS (never under 180 days,
    Cybersecurity Law art. 21); the database guard refuses it as well. Only a *prefix* of the chain goes:
    rows up to the first row recorded at or after the cut-off, so the kept rows still form one unbroken
    chain (a rare old row sealed after a younger one waits for the next purge). An `audit.purge` record
    with the count and the last purged row's id and hash (the anchor `verify_chain` checks the new first
    row against) is sealed *before* the delete, so the chain head survives even when every row is old.

    Deliberately not reachable over HTTP: admins must not be able to erase audit records, and auditors
    read and verify but do not administer (MLPS separation of duties). Purging is an operator's act on
    the host (`migrant audit-purge`), itself recorded in the chain.
    """
    settings = settings or get_settings()
    if before.tzinfo is None:
        raise ValueError("purge cut-off must be timezone-aware")
    retention = max(settings.audit_retention_days, MIN_RETENTION_DAYS)
    if before > db_now(session) - timedelta(days=retention):
        raise RetentionNotReached({"retention_days": retention})
    lock_chain(session.connection())
    ids = col(AuditEvent.id)
    first_young = session.execute(select(func.min(ids)).where(col(AuditEvent.at) >= before)).scalar()
    head = session.execute(select(func.min(ids))).scalar()
    last_old = first_young - 1 if first_young is not None else session.execute(select(func.max(ids))).scalar()
    count = 0
    anchor_hash = None
    if head is not None and last_old is not None and last_old >= head:
        count = session.execute(select(func.count()).where(ids <= last_old)).scalar_one()
        anchor_hash = session.execute(select(col(AuditEvent.hash)).where(ids == last_old)).scalar_one()
    anchor_id = last_old if count else None
    # Appended now, not queued: the record must be in the chain before the rows it names go.
    anchor = event(PURGE_ACTION, target_type="audit_events", purpose="retention",
                   detail={**(detail or {}), "count": count, "before": before.astimezone(UTC).isoformat(),
                           "retention_days": retention, "anchor_id": anchor_id, "anchor_hash": anchor_hash})
    append(session.connection(), [anchor])
    if count:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            # The guard trigger lets this transaction delete rows older than 180 days, and nothing else.
            session.execute(text("SET LOCAL app.audit_purge = 'on'"))
        table = AuditEvent.__table__  # type: ignore[attr-defined]
        deleted = session.execute(table.delete().where(table.c.id <= last_old)).rowcount  # type: ignore[attr-defined]
        if postgres:
            session.execute(text("SET LOCAL app.audit_purge = 'off'"))
        if deleted != count:
            raise RuntimeError("audit purge deleted an unexpected number of rows")
    return PurgeResult(count, before, anchor_id, anchor_hash)


def collect(session: OrmSession) -> None:
    """Before a flush: queue an event for every ORM write about to be flushed (from the ledger's listener)."""
    for obj, action in (
        *((o, "create") for o in session.new),
        *((o, "update") for o in session.dirty),
        *((o, "delete") for o in session.deleted),
    ):
        if not isinstance(obj, SQLModel):
            continue
        table = getattr(obj, "__table__", None)
        if table is None or table.info.get("audited", True) is False:
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
        area = getattr(obj, table.info.get("area", "area_path"), None)
        record(
            session,  # type: ignore[arg-type]
            f"{table.name}.{action}",
            target_type=table.name,
            target_id=":".join(str(i) for i in ident if i is not None) or None,
            fields=changed,
            area_path=area if isinstance(area, str) else None,
            district_code=getattr(obj, "district_code", None),
        )
