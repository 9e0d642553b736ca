"""The pull: every change a device lacks, read in one snapshot, with the cursor of that snapshot.

Algorithm (docs/sync.md "Pull"):
- a table is sent *in full* (every record in scope, under `updated`) on a first pull, when the worker's
  scope differs from the one the device holds, or when the app's `migration` names the table;
- otherwise the record ids in `sync_log` with `last_pulled_at < seq <= cursor` whose area lies in the
  scope (or the scope the device held) are looked up now: those in scope go under `updated`, the rest under
  `deleted`; records the server rejected from this device are looked up the same way;
- on a scope change, records of areas no longer in scope go under `deleted`;
- `created` is always empty (apps call `synchronize({sendCreatedAsUpdated: true})`).

"In scope" is the area scope plus what a phone keeps: registered residents (not merged) and their
婚育证明 documents, visits and service deliveries of the last SYNC_VISIT_MONTHS calendar months (the current one
included), open tasks (before schema version 4, only those with a resident), the whole catalogue, and (schema
version 2) the periods and verifications of the last
SYNC_WINDOW_MONTHS months. What leaves that window arrives as deletions: a task that is done or cancelled is
logged then; the visits and periods of a month that leaves it are logged once more by `cycle-open`
(app/cycle/verification/opening.py `age_out_visits`, `_age_out`), which runs daily.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, or_, select, true
from sqlmodel import Session, col

from app.core.actor import Actor, AreaScope
from app.core.config import get_settings
from app.core.errors import Unprocessable
from app.core.queries import among
from app.core.types import city_today
from app.cycle.models import TaskState
from app.cycle.periods import month_of
from app.cycle.verification.opening import city_midnight, shift, visits_since
from app.cycle.verification.service import communities_above
from app.ledger.changes import EVERYONE
from app.ledger.models import SyncCounter, SyncLog
from app.people.models import ResidentStatus
from app.sync.wire import MODELS, TABLES_OF_VERSION, TASKS_WITHOUT_RESIDENT_SINCE, driver_rows, shape

SUPPORTED_SCHEMA_VERSIONS = frozenset(TABLES_OF_VERSION)
SYNCED = tuple(MODELS)
CHUNK = 500


class SchemaVersionUnsupported(Unprocessable):
    code = "schema_version_unsupported"
    en = "This app version's database schema is not supported by the server; update the app."
    zh = "服务器不支持此应用版本的数据库结构，请更新应用。"


class CursorAhead(Unprocessable):
    code = "cursor_ahead"
    en = "last_pulled_at is ahead of the server; sync again from scratch."
    zh = "last_pulled_at 超前于服务器，请重新完整同步。"


class MigrationInvalid(Unprocessable):
    code = "migration_invalid"
    en = "migration must be null or {\"from\": n, \"tables\": [...], \"columns\": [{\"table\", \"columns\"}]}."
    zh = "migration 必须为空或 {\"from\": n, \"tables\": [...], \"columns\": [{\"table\", \"columns\"}]}。"


def migration_tables(migration: Any) -> set[str]:
    """Tables a WatermelonDB migration touched (new tables, tables with new columns), among the synced."""
    if migration is None:
        return set()
    if not isinstance(migration, dict) or not isinstance(migration.get("from"), int):
        raise MigrationInvalid()
    tables, columns = migration.get("tables", []), migration.get("columns", [])
    if not isinstance(tables, list) or not isinstance(columns, list):
        raise MigrationInvalid()
    named = set()
    for t in tables:
        if not isinstance(t, str):
            raise MigrationInvalid()
        named.add(t)
    for c in columns:
        if not isinstance(c, dict) or not isinstance(c.get("table"), str):
            raise MigrationInvalid()
        named.add(c["table"])
    return named & set(SYNCED)


@dataclass
class Window:
    """The cut-offs of what a phone keeps."""

    visits_since: datetime  # SYNC_VISIT_MONTHS calendar months (city time), the current one included
    deliveries_since: date
    months_since: str  # periods and verifications: SYNC_WINDOW_MONTHS months, the current one included
    # The app's schema version: before TASKS_WITHOUT_RESIDENT_SINCE a phone keeps only tasks with a resident.
    schema_version: int = max(TABLES_OF_VERSION)

    @classmethod
    def now(cls, schema_version: int = max(TABLES_OF_VERSION)) -> Window:
        today = city_today()
        since = visits_since(today)
        months = shift(month_of(today), 1 - get_settings().sync_window_months)
        return cls(city_midnight(since), since, months, schema_version)


def _table(name: str) -> Table:
    return MODELS[name].__table__  # type: ignore[attr-defined]


def _area(actor: Actor, prefixes: tuple[str, ...] | None, column: Any, district: Any = None) -> ColumnElement[bool]:
    return AreaScope(prefixes).area_filter(column, district)


def in_scope(name: str, actor: Actor, prefixes: tuple[str, ...] | None, window: Window | None,
             what: Iterable[Any]) -> Select[Any]:
    """SELECT `what` FROM the table WHERE the record is in the scope given by `prefixes` (None: whole city)
    and — with a window — kept by phones."""
    t = _table(name)
    stmt = select(*what)
    if name == "service_items":
        return stmt.select_from(t)
    if name == "divisions":
        return stmt.where(_area(actor, prefixes, t.c.path, t.c.district_code))
    if name == "fp_documents":
        residents = _table("residents")
        return stmt.join_from(t, residents, t.c.resident_id == residents.c.id).where(
            _area(actor, prefixes, residents.c.area_path, residents.c.district_code),
            *(_resident_kept(residents) if window else ()),
        )
    cond = [_area(actor, prefixes, t.c.area_path, t.c.district_code)]
    if window and name == "residents":
        cond += _resident_kept(t)
    elif window and name == "visits":
        cond.append(t.c.started_at >= window.visits_since)
    elif window and name == "service_deliveries":
        cond.append(t.c.delivered_on >= window.deliveries_since)
    elif window and name == "tasks":
        # Open tasks only: a task done or cancelled is logged then and leaves the phone at its next pull, and a
        # follow-up deleted on a phone (cancelled by the push) is never sent back.
        cond.append(t.c.state == TaskState.open.value)
        if window.schema_version < TASKS_WITHOUT_RESIDENT_SINCE:  # its schema requires the resident
            cond.append(t.c.resident_id.is_not(None))
    elif window and name in ("periods", "verifications"):
        cond.append(t.c.month >= window.months_since)
    if name == "periods" and (above := communities_above(prefixes)):
        cond[0] = or_(cond[0], t.c.area_path.in_(above))  # a grid worker's community's period
    return stmt.where(*cond)


def _resident_kept(residents: Table) -> list[ColumnElement[bool]]:
    return [residents.c.status == ResidentStatus.registered.value, residents.c.merged_into_id.is_(None)]


@dataclass
class Pull:
    cursor: int
    changes: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    full_tables: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "updated": sum(len(c["updated"]) for c in self.changes.values()),
            "deleted": sum(len(c["deleted"]) for c in self.changes.values()),
            "full_tables": len(self.full_tables),
        }

    def body(self) -> dict[str, Any]:
        return {"changes": self.changes, "timestamp": self.cursor}


_CURSOR = select(col(SyncCounter.seq)).where(col(SyncCounter.id) == 1)  # built once: every pull reads it


def read_cursor(session: Session) -> int:
    return int(session.execute(_CURSOR).scalar_one())


def pull(session: Session, actor: Actor, *, last_pulled_at: int, cursor: int, held_scope: tuple[str, ...] | None,
         migration: set[str], rejected: list[tuple[str, str]], schema_version: int = max(TABLES_OF_VERSION)) -> Pull:
    """The changes for a device (the session is a snapshot; `cursor` was read in it), in the tables its schema
    version declares."""
    scope = actor.area_prefixes
    first = last_pulled_at == 0
    scope_changed = _scope_changed(actor, last_pulled_at, held_scope)
    tables = TABLES_OF_VERSION[schema_version]
    full = set(tables) if first or scope_changed else migration
    window = Window.now(schema_version)
    touched: dict[str, set[str]] = defaultdict(set)
    if not first and last_pulled_at < cursor:
        for table, record_id in _logged(session, actor, last_pulled_at, cursor, scope, held_scope):
            touched[table].add(record_id)
    for table, record_id in rejected:
        if table in MODELS:
            touched[table].add(record_id)
    result = Pull(cursor, full_tables=sorted(full))
    dialect = session.get_bind().dialect.name
    for name in tables:
        s = shape(name)
        t = _table(name)
        updated: list[dict[str, Any]] = []
        seen: set[str] = set()
        if name in full:
            rows: Iterable[Any] = driver_rows(session, in_scope(name, actor, scope, window, s.select_list(dialect)))
        else:
            rows = _rows_by_id(session, name, actor, scope, window, sorted(touched.get(name, ())), dialect)
        for row in rows:
            raw = s.record(row)
            updated.append(raw)
            seen.add(raw["id"])
        gone = touched.get(name, set()) - seen
        if scope_changed and held_scope and name != "service_items":
            away = in_scope(name, actor, held_scope, window, [t.c.id])
            gone |= {r for (r,) in session.execute(away)} - seen
        if name == "fp_documents" and result.changes["residents"]["deleted"]:
            # A resident a phone no longer keeps (left, merged, moved away) takes their documents along,
            # though the documents themselves did not change.
            gone |= _documents_of(session, result.changes["residents"]["deleted"]) - seen
        result.changes[name] = {"created": [], "updated": updated, "deleted": sorted(gone)}
    return result


def _scope_changed(actor: Actor, last_pulled_at: int, held_scope: tuple[str, ...] | None) -> bool:
    return last_pulled_at != 0 and (held_scope is None or set(held_scope) != set(actor.area_prefixes or ()))


def reads_more(actor: Actor, *, last_pulled_at: int, cursor: int, held_scope: tuple[str, ...] | None,
               migration: set[str]) -> bool:
    """Does `pull` read anything beyond the device's state and the cursor (one statement, `devices.pull_state`)?
    Not for the usual poll: a cursor that is the latest, the scope the device holds, no migration."""
    return (last_pulled_at == 0 or last_pulled_at < cursor or bool(migration)
            or _scope_changed(actor, last_pulled_at, held_scope))


def _documents_of(session: Session, resident_ids: list[str]) -> set[str]:
    t = _table("fp_documents")
    found: set[str] = set()
    for i in range(0, len(resident_ids), CHUNK):
        chunk = resident_ids[i:i + CHUNK]
        found.update(r for (r,) in session.execute(select(t.c.id).where(among(t.c.resident_id, chunk))))
    return found


def _rows_by_id(session: Session, name: str, actor: Actor, scope: tuple[str, ...] | None, window: Window,
                ids: list[str], dialect: str) -> Iterator[Any]:
    t = _table(name)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        yield from driver_rows(session, in_scope(name, actor, scope, window, shape(name).select_list(dialect))
                               .where(among(t.c.id, chunk)))


def _logged(session: Session, actor: Actor, after: int, upto: int, scope: tuple[str, ...] | None,
            held: tuple[str, ...] | None) -> Iterator[tuple[str, str]]:
    """(table, record id) logged in (after, upto] in an area of the scope or of the scope the device held."""
    log = SyncLog.__table__  # type: ignore[attr-defined]
    areas = _area(actor, scope, log.c.area_path)
    if held and scope is not None:
        areas = or_(areas, _area(actor, held, log.c.area_path))
    for prefixes in (scope, held):
        if above := communities_above(prefixes):  # a grid worker's community's period
            areas = or_(areas, and_(log.c.table_name == "periods", log.c.area_path.in_(above)))
    stmt = (
        select(log.c.table_name, log.c.record_id)
        .where(log.c.seq > after, log.c.seq <= upto, or_(log.c.area_path == EVERYONE, areas) if scope is not None
               else true())
        .distinct()
    )
    for table, record_id in session.execute(stmt):
        yield str(table), str(record_id)
