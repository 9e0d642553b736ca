"""Access review for auditors: who read which sensitive records, and which reads look unusual.

The reads are the chain's own records (`resident.read.*` — identity, health, 婚育证明, services, corrections —,
`resident.dossier`, `resident.search`, `landlord.read.identity`, `landlord.search`, `visit.read`,
`visit_photo.read`, and the supervisor's map of a worker's day). A read is *unusual* when:

- `outside_area`: the record lay outside the divisions the reader is assigned to (their usual area; city-wide
  roles have none, so this is not judged for them). The record's area comes from the chain (format 2 and
  later); a read recorded without one is not judged.
- `bulk`: the reader made ACCESS_BULK_READS or more sensitive reads within ACCESS_BULK_MINUTES.
- `off_hours`: outside WORK_START_HOUR–WORK_END_HOUR, city time.
- `lookup_without_case`: a search by ID number that found residents none of whom the reader visited, or had a
  task for (created by them or lying in their area), within ACCESS_LOOKUP_DAYS of the search.

Disclosures to partners come from the disclosure ledger (`disclosures`, written by app/sharing/ledger.py in the
disclosing request's transaction): per partner, how many disclosures of how many residents, which field groups,
on which legal bases, first and last (`disclosures_per_partner`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from app.audit.deps import Period
from app.auth.models import User, UserScope
from app.core.config import Settings, get_settings
from app.core.errors import Unprocessable
from app.core.queries import among, starts_with
from app.cycle.models import Task
from app.ledger.models import AuditEvent
from app.people.models import Disclosure
from app.visits.models import Visit

READ_PREFIXES = ("resident.read.",)
READ_ACTIONS = ("resident.dossier", "resident.search", "landlord.read.identity", "landlord.search", "visit.read",
                "visit_photo.read", "audit.picture.worker_day")
MAX_EVENTS = 200_000
CHUNK = 5000


class TooManyEvents(Unprocessable):
    code = "too_many_events"
    en = f"More than {MAX_EVENTS:,} reads match: narrow the period, the district or the reader."
    zh = f"符合条件的读取记录超过{MAX_EVENTS:,}条，请缩小期间、区或读取人范围。"


@dataclass(frozen=True)
class Filters:
    actor_id: str | None = None
    district_code: str | None = None
    unusual: str | None = None  # only reads with this reason ("any": any reason)

    def used(self) -> list[str]:
        return [name for name in ("actor_id", "district_code", "unusual") if getattr(self, name) is not None]


@dataclass
class Read:
    id: int
    at: datetime
    actor_id: str | None
    actor_role: str | None
    action: str
    target_type: str | None
    target_id: str | None
    fields: str | None
    purpose: str | None
    area_path: str | None
    district_code: str | None
    detail: str | None
    unusual: list[str] = field(default_factory=list)
    username: str | None = None


def _query(period: Period, flt: Filters) -> Any:
    start, end = period.bounds
    action = col(AuditEvent.action)
    stmt = select(*(getattr(AuditEvent, name) for name in Read.__dataclass_fields__
                    if name not in ("unusual", "username"))).where(
        col(AuditEvent.at) >= start, col(AuditEvent.at) < end, col(AuditEvent.outcome) == "success",
        or_(action.in_(READ_ACTIONS), *(starts_with(action, p) for p in READ_PREFIXES)))
    if flt.actor_id is not None:
        stmt = stmt.where(col(AuditEvent.actor_id) == flt.actor_id)
    if flt.district_code is not None:
        stmt = stmt.where(col(AuditEvent.district_code) == flt.district_code)
    return stmt


def review(session: Session, period: Period, flt: Filters, settings: Settings | None = None) -> list[Read]:
    """Every sensitive read in the period (and filters), with its unusual reasons; by reader, then time."""
    settings = settings or get_settings()
    stmt = _query(period, flt)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    if total > MAX_EVENTS:
        raise TooManyEvents({"max_events": MAX_EVENTS, "matching": total})
    order = (col(AuditEvent.actor_id), col(AuditEvent.at), col(AuditEvent.id))
    reads = [Read(*row) for row in session.execute(stmt.order_by(*order))]
    readers = {r.actor_id for r in reads if r.actor_id}
    scopes, names = _readers(session, readers)
    for r in reads:
        r.username = names.get(r.actor_id or "")
    _outside_area(reads, scopes)
    _bulk(reads, settings)
    _off_hours(reads, settings)
    _lookups(session, reads, scopes, settings)
    if flt.unusual is not None:
        reads = [r for r in reads if r.unusual and (flt.unusual == "any" or flt.unusual in r.unusual)]
    return reads


def _readers(session: Session, ids: set[str]) -> tuple[dict[str, list[str] | None], dict[str, str]]:
    """reader id → their assigned area paths (None: a city-wide role, not judged), and their user names."""
    scopes: dict[str, list[str] | None] = {}
    names: dict[str, str] = {}
    if not ids:
        return scopes, names
    for user_id, username, role in session.execute(select(col(User.id), col(User.username), col(User.role)).where(
            among(col(User.id), sorted(ids)))):
        names[user_id] = username
        scopes[user_id] = None if role in ("admin", "auditor") else []
    for user_id, path in session.execute(select(col(UserScope.user_id), col(UserScope.area_path)).where(
            among(col(UserScope.user_id), sorted(ids)))):
        if scopes.get(user_id) is not None:
            scopes[user_id].append(path)  # type: ignore[union-attr]
    return scopes, names


def _outside_area(reads: list[Read], scopes: dict[str, list[str] | None]) -> None:
    for r in reads:
        paths = scopes.get(r.actor_id or "")
        if paths is None:
            continue
        if r.area_path is not None:
            inside = any(r.area_path.startswith(p) for p in paths)
        elif r.district_code is not None:
            inside = any(f"/{r.district_code}/" in p for p in paths)
        else:
            continue
        if not inside:
            r.unusual.append("outside_area")


def _bulk(reads: list[Read], settings: Settings) -> None:
    """Sliding window per reader (reads come sorted by reader, then time)."""
    window, limit = timedelta(minutes=settings.access_bulk_minutes), settings.access_bulk_reads
    start, marked = 0, -1
    for end, r in enumerate(reads):
        if r.actor_id != reads[start].actor_id:
            start = end
        while r.at - reads[start].at > window:
            start += 1
        if end - start + 1 >= limit:
            for i in range(max(start, marked + 1), end + 1):
                reads[i].unusual.append("bulk")
            marked = end


def _off_hours(reads: list[Read], settings: Settings) -> None:
    for r in reads:
        hour = (r.at.hour + 8) % 24
        if not settings.work_start_hour <= hour < settings.work_end_hour:
            r.unusual.append("off_hours")


def _found_ids(r: Read) -> list[str]:
    if r.action != "resident.search" or r.fields != "id_number":
        return []
    try:
        detail = json.loads(r.detail or "{}")
    except ValueError:
        return []
    ids = detail.get("ids") if isinstance(detail, dict) else None
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def _lookups(session: Session, reads: list[Read], scopes: dict[str, list[str] | None], settings: Settings) -> None:
    searches = [(r, _found_ids(r)) for r in reads]
    searches = [(r, ids) for r, ids in searches if ids]
    if not searches:
        return
    margin = timedelta(days=settings.access_lookup_days)
    ids = sorted({i for _, found in searches for i in found})
    lo, hi = min(r.at for r, _ in searches) - margin, max(r.at for r, _ in searches) + margin
    visited: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    tasks: dict[str, list[tuple[str | None, str, datetime]]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        for worker_id, resident_id, at in session.execute(select(
                col(Visit.worker_id), col(Visit.resident_id), col(Visit.started_at)).where(
                among(col(Visit.resident_id), chunk), col(Visit.started_at) >= lo, col(Visit.started_at) < hi)):
            visited[resident_id].append((worker_id, at))
        for resident_id, created_by, area_path, created_at in session.execute(select(
                col(Task.resident_id), col(Task.created_by), col(Task.area_path), col(Task.created_at)).where(
                among(col(Task.resident_id), chunk), col(Task.created_at) < hi)):
            tasks[resident_id].append((created_by, area_path, created_at))
    for r, found in searches:
        paths = scopes.get(r.actor_id or "") or []
        behind = any(worker == r.actor_id and abs(at - r.at) <= margin for i in found for worker, at in visited[i])
        behind = behind or any(
            (by == r.actor_id or any(area.startswith(p) for p in paths)) and created - margin <= r.at
            for i in found for by, area, created in tasks[i])
        if not behind:
            r.unusual.append("lookup_without_case")


# --- summaries ----------------------------------------------------------------------------------------------


def readers_summary(reads: list[Read]) -> list[dict[str, Any]]:
    """Per reader: how many reads, of how many records, which kinds, how many unusual (and why)."""
    by: dict[str, dict[str, Any]] = {}
    targets: dict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
    for r in reads:
        key = r.actor_id or ""
        entry = by.setdefault(key, {"actor_id": r.actor_id, "username": r.username, "role": r.actor_role,
                                    "reads": 0, "unusual": 0, "actions": defaultdict(int), "reasons": defaultdict(int),
                                    "first_at": r.at, "last_at": r.at})
        entry["reads"] += 1
        entry["actions"][r.action] += 1
        entry["last_at"] = max(entry["last_at"], r.at)
        targets[key].add((r.target_type, r.target_id))
        if r.unusual:
            entry["unusual"] += 1
            for reason in r.unusual:
                entry["reasons"][reason] += 1
    out = []
    for key, entry in by.items():
        out.append({**entry, "records": len(targets[key]), "actions": dict(entry["actions"]),
                    "reasons": dict(entry["reasons"])})
    return sorted(out, key=lambda e: (-e["unusual"], -e["reads"], e["actor_id"] or ""))


def disclosures_per_partner(session: Session, period: Period, flt: Filters) -> list[dict[str, Any]]:
    """Per partner (kind and id): disclosures in the period from the ledger, the residents they concerned, the
    field groups and legal bases, first and last; most disclosures first. The district filter applies (a
    disclosure lies in its resident's district); the reader filter does not (a partner is not a reader)."""
    start, end = period.bounds
    stmt = select(col(Disclosure.partner_kind), col(Disclosure.partner_id), col(Disclosure.resident_id),
                  col(Disclosure.field_groups), col(Disclosure.legal_basis), col(Disclosure.disclosed_at)).where(
        col(Disclosure.disclosed_at) >= start, col(Disclosure.disclosed_at) < end)
    if flt.district_code is not None:
        stmt = stmt.where(col(Disclosure.district_code) == flt.district_code)
    by: dict[tuple[str, str], dict[str, Any]] = {}
    residents: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, partner, resident, groups, basis, at in session.execute(stmt):
        entry = by.setdefault((kind, partner), {
            "partner_kind": kind, "partner_id": partner, "disclosures": 0, "field_groups": set(),
            "legal_bases": set(), "first_at": at, "last_at": at})
        entry["disclosures"] += 1
        entry["field_groups"].update(g for g in groups.split(",") if g)
        entry["legal_bases"].add(basis)
        entry["first_at"], entry["last_at"] = min(entry["first_at"], at), max(entry["last_at"], at)
        residents[(kind, partner)].add(resident)
    names = dict(session.execute(select(col(User.id), col(User.username)).where(
        among(col(User.id), sorted({partner for _, partner in by})))).all()) if by else {}
    out = [{**entry, "partner_name": names.get(key[1]), "residents": len(residents[key]),
            "field_groups": sorted(entry["field_groups"]), "legal_bases": sorted(entry["legal_bases"])}
           for key, entry in by.items()]
    return sorted(out, key=lambda e: (-e["disclosures"], e["partner_kind"], e["partner_id"]))
