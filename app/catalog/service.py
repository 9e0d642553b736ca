"""The free-service catalogue: versions, snapshots, resolving delivered items, and admin changes.

Every admin change publishes a new `catalog_versions` row whose `items` is a JSON snapshot of the whole
catalogue as it then stood (`snapshot()`; migration 0003 seeds version 1 with the same format). A visit is
checked against the snapshot of the version the phone used, so an item retired after the visit was made
still validates when the visit arrives late.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlmodel import Session, col

from app.catalog.models import CatalogVersion, ServiceItem
from app.catalog.schemas import ItemCreate, ItemRetire, ItemUpdate
from app.core.actor import Actor
from app.core.errors import Conflict, NotFound, StaleVersion, Unprocessable
from app.core.lean import Lean
from app.core.types import utcnow

# --- errors ---------------------------------------------------------------------------------------------


class CatalogVersionUnknown(Unprocessable):
    code = "catalog_version_unknown"
    en = "That catalogue version does not exist."
    zh = "服务目录版本不存在。"


class ServiceItemUnknown(Unprocessable):
    code = "service_item_unknown"
    en = "A service item is not in the catalogue version used."
    zh = "服务项目不在所用的目录版本中。"


class ServiceItemNotEffective(Unprocessable):
    code = "service_item_not_effective"
    en = "A service item was not in effect on the visit's date."
    zh = "服务项目在访视当日不在有效期内。"


class ServiceItemCodeTaken(Conflict):
    code = "service_item_code_taken"
    en = "A service item with this code already exists (codes are never reused)."
    zh = "该服务项目代码已存在（代码不可重复使用）。"


class ServiceItemRetired(Conflict):
    code = "service_item_retired"
    en = "The service item is already retired."
    zh = "该服务项目已停用。"


class EffectiveDatesOrder(Unprocessable):
    code = "effective_dates_order"
    en = "The end of the effective period is before its start."
    zh = "有效期结束日期早于开始日期。"


# --- snapshots and versions ----------------------------------------------------------------------------


def snapshot_entry(item: ServiceItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "code": item.code,
        "name_zh": item.name_zh,
        "name_en": item.name_en,
        "description": item.description,
        "unit": item.unit,
        "sort_order": item.sort_order,
        "effective_from": item.effective_from.isoformat(),
        "effective_to": item.effective_to.isoformat() if item.effective_to else None,
        "sensitive": item.sensitive,
    }


def snapshot(items: Iterable[ServiceItem]) -> str:
    """The JSON snapshot of a catalogue (ordered by sort_order, then code). Same format as the seed."""
    ordered = sorted(items, key=lambda i: (i.sort_order, i.code))
    return json.dumps([snapshot_entry(i) for i in ordered], ensure_ascii=False, separators=(",", ":"))


def current_version(session: Session) -> int:
    version = session.execute(select(func.max(col(CatalogVersion.version)))).scalar_one_or_none()
    if version is None:  # the migration seeds version 1; an empty table is a broken deployment
        raise CatalogVersionUnknown()
    return int(version)


def get_version(session: Session, version: int) -> CatalogVersion:
    row = session.get(CatalogVersion, version)
    if row is None:
        raise NotFound()
    return row


def snapshot_items(row: CatalogVersion) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(row.items)
    return items


@dataclass(frozen=True)
class Entry:
    """One item as a catalogue version published it (names as of that version)."""

    id: str
    code: str
    name_zh: str
    name_en: str
    sort_order: int
    effective_from: date
    effective_to: date | None

    def effective(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


@dataclass(frozen=True)
class Snapshot:
    version: int
    by_code: dict[str, Entry]
    by_id: dict[str, Entry]


# Parsed snapshots, per process. A published version never changes; the key also holds its publication
# stamp, so another database where the same number means another publication (tests) cannot hit it.
_SNAPSHOTS: dict[tuple[int, datetime, str | None, str], Snapshot] = {}
_SNAPSHOTS_MAX = 256


def _parse(version: int, items: str) -> Snapshot:
    entries = [Entry(id=e["id"], code=e["code"], name_zh=e["name_zh"], name_en=e["name_en"],
                     sort_order=int(e.get("sort_order") or 0), effective_from=date.fromisoformat(e["effective_from"]),
                     effective_to=date.fromisoformat(e["effective_to"]) if e.get("effective_to") else None)
               for e in json.loads(items)]
    return Snapshot(version, {e.code: e for e in entries}, {e.id: e for e in entries})


_CATALOG = CatalogVersion.__table__  # type: ignore[attr-defined]
_STAMP_COLUMNS = (_CATALOG.c.version, _CATALOG.c.published_at, _CATALOG.c.published_by, _CATALOG.c.note)
_LATEST = _CATALOG.c.version == select(func.max(_CATALOG.c.version)).scalar_subquery()
# Built once: every visit written reads the stamps.
_STAMPS = Lean(select(*_STAMP_COLUMNS).where(_LATEST))
_STAMPS_AND = select(*_STAMP_COLUMNS).where(or_(_LATEST, _CATALOG.c.version.in_(bindparam("wanted", expanding=True))))


def snapshots(session: Session, versions: Iterable[int]) -> tuple[int, dict[int, Snapshot]]:
    """(the current version, the parsed snapshots of the current version and of those of `versions` that
    exist). One query for the version stamps; the items only for versions this process has not parsed yet."""
    table = _CATALOG
    wanted = sorted(set(versions))
    stamps = session.execute(_STAMPS_AND, {"wanted": wanted}).all() if wanted else _STAMPS.rows(session.connection())
    if not stamps:  # the migration seeds version 1; an empty table is a broken deployment
        raise CatalogVersionUnknown()
    found: dict[int, Snapshot] = {}
    missing = []
    for version, published_at, published_by, note in stamps:
        cached = _SNAPSHOTS.get((version, published_at, published_by, note))
        if cached is None:
            missing.append(version)
        else:
            found[version] = cached
    if missing:
        if len(_SNAPSHOTS) >= _SNAPSHOTS_MAX:
            _SNAPSHOTS.clear()
        for version, items, published_at, published_by, note in session.execute(
            select(table.c.version, table.c["items"], table.c.published_at, table.c.published_by, table.c.note)
            .where(table.c.version.in_(missing))
        ).all():
            found[version] = _SNAPSHOTS[(version, published_at, published_by, note)] = _parse(version, items)
    return max(v for v, *_ in stamps), found


def check_items(snapshot: Snapshot | None, version: int, codes: list[str], on: date) -> dict[str, Entry]:
    """The entries of delivered item codes in a catalogue version, checked on a local date.

    422 `catalog_version_unknown` (no snapshot), `service_item_unknown` (code not in that version's
    snapshot) or `service_item_not_effective`.
    """
    if snapshot is None:
        raise CatalogVersionUnknown({"catalog_version": version})
    wanted = list(dict.fromkeys(codes))
    unknown = [c for c in wanted if c not in snapshot.by_code]
    if unknown:
        raise ServiceItemUnknown({"codes": unknown, "catalog_version": version})
    inactive = [c for c in wanted if not snapshot.by_code[c].effective(on)]
    if inactive:
        raise ServiceItemNotEffective({"codes": inactive, "catalog_version": version})
    return {c: snapshot.by_code[c] for c in wanted}


def resolve_items(
    session: Session, codes: list[str], version: int | None, on: date
) -> tuple[int, dict[str, ServiceItem]]:
    """Check delivered item codes against a catalogue version (None: the current one) on a local date.

    Returns the version used and the ServiceItem rows by code. 422 `catalog_version_unknown`,
    `service_item_unknown` (code not in that version's snapshot) or `service_item_not_effective`.
    """
    current, found = snapshots(session, [] if version is None else [version])
    used = current if version is None else version
    entries = check_items(found.get(used), used, codes, on)
    if not entries:
        return used, {}
    rows = session.execute(select(ServiceItem).where(col(ServiceItem.id).in_([e.id for e in entries.values()])))
    by_id = {r.id: r for r in rows.scalars().all()}
    missing = [c for c, e in entries.items() if e.id not in by_id]
    if missing:  # a snapshot naming a row that no longer exists: items are never deleted, so not expected
        raise ServiceItemUnknown({"codes": missing, "catalog_version": used})
    return used, {c: by_id[e.id] for c, e in entries.items()}


# --- reads -----------------------------------------------------------------------------------------------


def list_items(session: Session, on: date | None) -> list[ServiceItem]:
    stmt = select(ServiceItem).order_by(col(ServiceItem.sort_order), col(ServiceItem.code))
    if on is not None:
        stmt = stmt.where(col(ServiceItem.effective_from) <= on).where(
            (col(ServiceItem.effective_to).is_(None)) | (col(ServiceItem.effective_to) >= on)
        )
    return list(session.execute(stmt).scalars().all())


def versions_query() -> Any:
    return select(CatalogVersion).order_by(col(CatalogVersion.version).desc())


# --- publishing ------------------------------------------------------------------------------------------


def _reserve_version(session: Session, actor: Actor, note: str) -> CatalogVersion:
    """Take the next version number.

    Publishers serialise on one lock: the first version row (the seed, never deleted) FOR NO KEY UPDATE on
    PostgreSQL, which does not block visits referencing it; SQLite write requests already hold the write
    lock. The maximum is read after the lock, in a fresh statement, so a publish that waited for another
    sees the number that one took and two publishes never race for the same number.
    """
    session.execute(
        select(col(CatalogVersion.version)).order_by(col(CatalogVersion.version)).limit(1)
        .with_for_update(key_share=True)
    ).scalar_one_or_none()
    latest = session.execute(select(func.max(col(CatalogVersion.version)))).scalar_one_or_none() or 0
    row = CatalogVersion(version=int(latest) + 1, note=note, items="[]", published_by=actor.user_id,
                         published_at=utcnow())
    session.add(row)
    session.flush()
    return row


def _finish(session: Session, row: CatalogVersion) -> CatalogVersion:
    session.flush()
    row.items = snapshot(session.execute(select(ServiceItem)).scalars().all())
    session.add(row)
    session.flush()
    return row


def _get_item(session: Session, item_id: str, *, for_update: bool = False) -> ServiceItem:
    stmt = select(ServiceItem).where(col(ServiceItem.id) == item_id)
    if for_update:  # NO KEY UPDATE: deliveries referencing the item are not blocked
        stmt = stmt.with_for_update(key_share=True)
    item = session.execute(stmt).scalar_one_or_none()
    if item is None:
        raise NotFound()
    return item


def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise EffectiveDatesOrder()


def add_item(session: Session, actor: Actor, body: ItemCreate) -> tuple[ServiceItem, CatalogVersion]:
    _check_dates(body.effective_from, body.effective_to)
    if session.execute(select(col(ServiceItem.id)).where(col(ServiceItem.code) == body.code)).first():
        raise ServiceItemCodeTaken({"code": body.code})
    row = _reserve_version(session, actor, body.note)
    item = ServiceItem(
        code=body.code, name_zh=body.name_zh, name_en=body.name_en, description=body.description,
        unit=body.unit, sort_order=body.sort_order, effective_from=body.effective_from,
        effective_to=body.effective_to, sensitive=body.sensitive, since_version=row.version,
    )
    session.add(item)
    return item, _finish(session, row)


def update_item(session: Session, actor: Actor, item_id: str, body: ItemUpdate) -> tuple[ServiceItem, CatalogVersion]:
    item = _get_item(session, item_id, for_update=True)
    if body.version != item.version:
        raise StaleVersion({"version": item.version})
    changes = body.model_dump(exclude_unset=True, exclude={"version", "note"})
    start = changes.get("effective_from", item.effective_from)
    end = changes.get("effective_to", item.effective_to)
    _check_dates(start, end)
    if item.retired_in_version is not None and end is None:
        raise ServiceItemRetired()  # a retired item stays retired: add a new item instead
    row = _reserve_version(session, actor, body.note)
    for name, value in changes.items():
        setattr(item, name, value)
    item.version += 1
    item.updated_at = utcnow()
    session.add(item)
    return item, _finish(session, row)


def retire_item(session: Session, actor: Actor, item_id: str, body: ItemRetire) -> tuple[ServiceItem, CatalogVersion]:
    item = _get_item(session, item_id, for_update=True)
    if item.retired_in_version is not None:
        raise ServiceItemRetired()
    if body.version != item.version:
        raise StaleVersion({"version": item.version})
    _check_dates(item.effective_from, body.effective_to)
    row = _reserve_version(session, actor, body.note)
    item.effective_to = body.effective_to
    item.retired_in_version = row.version
    item.version += 1
    item.updated_at = utcnow()
    session.add(item)
    return item, _finish(session, row)
