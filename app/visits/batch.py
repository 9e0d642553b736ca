"""Recording visits in bulk: the one write path of POST /visits, corrections and sync push.

`record_visits(session, actor, items)` validates every item exactly like POST /visits and answers one
`ItemResult` per item, in order:

- "created": the visit and its deliveries were written (`delivery_ids` in the order of `body.services`);
- "unchanged": a replay of a stored visit with the same id, author and content (nothing written;
  `delivery_ids` are the stored deliveries, in the order of `body.services`);
- "rejected": `code`/`message`/`details` are those POST /visits would answer (`not_found` for a resident or
  dwelling outside scope, `visit_id_taken` for a different visit under a stored id, `delivery_id_taken`,
  `visit_too_old`, `resident_not_active`, `service_item_unknown`, …). A rejected item writes nothing and
  does not disturb the others. Items of one batch are taken in order: a later item under the id of an
  earlier one that was created is a replay of it (or `visit_id_taken`), as if posted after it; a delivery id
  claimed by an earlier item is `delivery_id_taken`.

How: a few queries for the whole batch (stored visits and deliveries by id, residents in scope, dwellings,
the catalogue snapshots — parsed once per process —, the residents' open tasks), the check-in flags in
Python, then the rows in bulk (app/core/bulk.py: executemany on SQLite, COPY on PostgreSQL). The audit
events and the sync log (`tracking.mark_rows`) are recorded explicitly, since bulk statements bypass the
listeners: one `visits.create` event per visit with the visit's field names and its deliveries'
(`service_deliveries.<name>`), the delivery ids in its detail (a visit and its deliveries are one immutable
record: one event, not one per row). Tasks are completed and created through the ORM (audited and logged
automatically). The caller owns the transaction: flush only, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.audit import service as audit
from app.catalog import service as catalog
from app.core.bulk import BulkWriter, table_of
from app.core.config import get_settings
from app.core.deps import Actor
from app.core.errors import AppError, NotFound
from app.core.queries import among
from app.core.types import city_date, new_id, utcnow
from app.people import service as people
from app.people.models import Resident, ResidentStatus
from app.places.models import Dwelling
from app.sync import tracking
from app.visits import service, tasks
from app.visits.checkin import CheckinFacts, assess
from app.visits.geo import gcj02_to_wgs84
from app.visits.models import ReviewState, ServiceDelivery, Task, TaskKind, TaskState, Visit, VisitOutcome
from app.visits.schemas import CoordSystem, VisitCreate, VisitFields
from app.visits.task_schemas import FOLLOW_UP_MAX_DAYS

Status = Literal["created", "unchanged", "rejected"]
# Ids per `among` list: one query per lookup for a push of thousands (SQLite allows 32,766 parameters).
CHUNK = 5000
DELIVERIES = "service_deliveries"  # where a visit's audit event names its deliveries
# Kinds a visit can complete (tasks.visit_completes; verification is settled by the monthly cycle).
COMPLETED_BY_VISITS = (TaskKind.new_arrival_visit.value, TaskKind.key_person_monthly.value, TaskKind.follow_up.value)


@dataclass
class VisitItem:
    """One visit to record, with its deliveries (`body.services`). Sync items always carry `body.id`."""

    body: VisitCreate


@dataclass
class ItemResult:
    id: str  # the visit id (generated when the body had none)
    status: Status
    code: str | None = None  # AppError code when rejected
    message: str | None = None  # its message in `lang`
    delivery_ids: list[str] = field(default_factory=list)
    details: Any = None  # the error's details when rejected (ids and codes, never personal values)


def record_visits(session: Session, actor: Actor, items: list[VisitItem], *, lang: str = "en") -> list[ItemResult]:
    """Record a batch of visits; one result per item, in order. See the module docstring."""
    return [outcome.result for outcome in record(session, actor, [item.body for item in items], lang=lang)]


# --- internal shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """The resident a new visit is recorded on (after merges) and where the visit lies."""

    resident_id: str
    dwelling_id: str | None
    registered: bool  # may be given a follow-up task
    area: tuple[str, str, str]  # the resident's community_id, area_path, district_code

    @classmethod
    def of(cls, resident: Any) -> Home:
        registered = (resident.status == ResidentStatus.registered.value and resident.merged_into_id is None
                      and resident.anonymised_at is None)
        return cls(resident.id, resident.dwelling_id, registered,
                   (resident.community_id, resident.area_path, resident.district_code))


@dataclass
class Pending:
    """A new visit that passed the id and resident checks."""

    body: VisitFields
    visit_id: str
    home: Home
    area: tuple[str, str, str] | None = None  # a correction keeps the original's community and area
    corrects: str | None = None
    reason: str | None = None


@dataclass
class Written:
    """A visit `write` stored: its row values, its deliveries' and the tasks it completed or created."""

    visit: dict[str, Any]
    deliveries: list[dict[str, Any]]
    items: dict[str, catalog.Entry]  # by item id, as the current catalogue names them
    follow_up: tuple[Any, str] | None  # (due date, reason) of the follow-up task asked for
    registered: bool
    resident_area: tuple[str, str, str]
    tasks_completed: list[str] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    result: ItemResult
    error: AppError | None = None
    stored: Visit | None = None  # unchanged: the stored visit
    written: Written | None = None  # created


@dataclass
class Facts:
    """What task completion reads of a visit being written (tasks.VisitLike)."""

    id: str
    resident_id: str
    mode: str
    outcome: str
    started_at: datetime


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


# --- ids, replays and residents ----------------------------------------------------------------------------


def same_visit(session: Session, actor: Actor, stored: Visit, delivered: list[tuple[str, int]], body: VisitFields,
               corrects: str | None) -> bool:
    """Is `body` a retry of `stored` (same author and content)? A merged resident counts as its survivor."""
    same = (
        stored.worker_id == actor.user_id
        and stored.corrects_visit_id == corrects
        and stored.started_at == body.started_at
        and stored.mode == body.mode.value
        and stored.outcome == body.outcome.value
        and sorted(delivered) == sorted((s.item_code, s.quantity) for s in body.services)
    )
    if same and isinstance(body, VisitCreate) and body.resident_id != stored.resident_id:
        resident = session.get(Resident, body.resident_id)
        same = resident is not None and people.survivor_of(session, resident).id == stored.resident_id
    return same


def record(session: Session, actor: Actor, bodies: list[VisitCreate], *, lang: str = "en") -> list[Outcome]:
    """The outcome of every body, in order (`record_visits` without the shapes' simplification)."""
    ids = [b.id or new_id() for b in bodies]
    outcomes: dict[int, Outcome] = {}
    remaining = list(range(len(bodies)))
    while remaining:  # rounds of distinct ids: a repeated id meets the first one stored (a replay) or not
        seen: set[str] = set()
        this: list[int] = []
        later: list[int] = []
        for i in remaining:
            (later if ids[i] in seen else this).append(i)
            seen.add(ids[i])
        outcomes.update(_round(session, actor, [(i, bodies[i], ids[i]) for i in this], lang))
        remaining = later
    return [outcomes[i] for i in range(len(bodies))]


def _rejected(visit_id: str, error: AppError, lang: str) -> Outcome:
    return Outcome(ItemResult(id=visit_id, status="rejected", code=error.code, message=error.message(lang),
                              details=error.details), error=error)


def _round(session: Session, actor: Actor, round_: list[tuple[int, VisitCreate, str]],
           lang: str) -> dict[int, Outcome]:
    client_ids = [vid for _, body, vid in round_ if body.id is not None]
    stored: dict[str, Visit] = {}
    delivered: dict[str, list[tuple[str, str, int]]] = {}
    for chunk in chunks(client_ids):
        stored.update((v.id, v) for v in session.execute(
            select(Visit).where(among(col(Visit.id), chunk))).scalars())
    for chunk in chunks(stored):
        for visit_id, delivery_id, code, quantity in session.execute(
            select(col(ServiceDelivery.visit_id), col(ServiceDelivery.id), col(ServiceDelivery.item_code),
                   col(ServiceDelivery.quantity)).where(among(col(ServiceDelivery.visit_id), chunk))
        ).all():
            delivered.setdefault(visit_id, []).append((delivery_id, code, quantity))

    outcomes: dict[int, Outcome] = {}
    fresh: list[tuple[int, VisitCreate, str]] = []
    for i, body, vid in round_:
        visit = stored.get(vid)
        if visit is None:
            fresh.append((i, body, vid))
            continue
        have = delivered.get(vid, [])
        if same_visit(session, actor, visit, [(code, qty) for _, code, qty in have], body, None):
            by_code = {code: did for did, code, _ in have}
            outcomes[i] = Outcome(ItemResult(id=vid, status="unchanged",
                                             delivery_ids=[by_code[s.item_code] for s in body.services]),
                                  stored=visit)
        else:
            outcomes[i] = _rejected(vid, service.id_taken(session, actor, visit), lang)

    homes = _homes(session, actor, [body.resident_id for _, body, _ in fresh])
    pending: list[tuple[int, Pending]] = []
    for i, body, vid in fresh:
        home = homes[body.resident_id]
        if isinstance(home, AppError):
            outcomes[i] = _rejected(vid, home, lang)
        else:
            pending.append((i, Pending(body, vid, home)))
    for (i, p), done in zip(pending, write(session, actor, [p for _, p in pending]), strict=True):
        if isinstance(done, AppError):
            outcomes[i] = _rejected(p.visit_id, done, lang)
        else:
            outcomes[i] = Outcome(ItemResult(id=p.visit_id, status="created",
                                             delivery_ids=[d["id"] for d in done.deliveries]), written=done)
    return outcomes


def _homes(session: Session, actor: Actor, resident_ids: list[str]) -> dict[str, Home | AppError]:
    """Each resident a visit names: in scope (else 404), followed through merges, not archived (else 422)."""
    homes: dict[str, Home | AppError] = {}
    columns = (col(Resident.id), col(Resident.status), col(Resident.merged_into_id), col(Resident.anonymised_at),
               col(Resident.dwelling_id), col(Resident.community_id), col(Resident.area_path),
               col(Resident.district_code))
    # SQLite plans `id IN (…) AND district_code IN (…)` as a walk of the district index: name the districts on
    # PostgreSQL only (shard pruning), where the primary key wins anyway.
    district = None if session.get_bind().dialect.name == "sqlite" else col(Resident.district_code)
    for chunk in chunks(resident_ids):
        for row in session.execute(select(*columns).where(
                among(col(Resident.id), chunk), actor.area_filter(col(Resident.area_path), district))):
            if row.merged_into_id is not None:  # rare: the single path follows the merges
                try:
                    homes[row.id] = Home.of(service.visit_resident(session, actor, row.id))
                except AppError as error:
                    homes[row.id] = error
            elif row.status == ResidentStatus.archived.value:
                homes[row.id] = service.VisitResidentNotActive()
            else:
                homes[row.id] = Home.of(row)
    for resident_id in resident_ids:
        homes.setdefault(resident_id, NotFound())
    return homes


# --- writing --------------------------------------------------------------------------------------------


def write(session: Session, actor: Actor, items: list[Pending]) -> list[Written | AppError]:
    """Check and write new visits (resident already resolved): one result per item, in order."""
    if not items:
        return []
    settings = get_settings()
    received = utcnow()
    oldest = received - timedelta(days=settings.visit_max_age_days)
    chosen = {p.body.dwelling_id for p in items if p.body.dwelling_id is not None}
    default = {p.home.dwelling_id for p in items if p.body.dwelling_id is None and p.home.dwelling_id is not None}
    scoped: dict[str, tuple[float | None, float | None]] = {}
    places: dict[str, tuple[float | None, float | None]] = {}
    point = (col(Dwelling.id), col(Dwelling.lat), col(Dwelling.lng))
    for chunk in chunks(chosen):
        scoped.update((d, (lat, lng)) for d, lat, lng in session.execute(select(*point).where(
            among(col(Dwelling.id), chunk), col(Dwelling.active), actor.area_filter(Dwelling.area_path))).all())
    for chunk in chunks(default):
        places.update((d, (lat, lng)) for d, lat, lng in session.execute(
            select(*point).where(among(col(Dwelling.id), chunk))).all())
    current, snapshots = catalog.snapshots(session, {p.body.catalog_version for p in items
                                                     if p.body.catalog_version is not None})
    taken: set[str] = set()
    foreign: set[str] = set()  # delivery ids taken by deliveries the actor may not see: 404, not 409
    for chunk in chunks(s.id for p in items for s in p.body.services if s.id is not None):
        stored = [(d, path, resident) for d, path, resident in session.execute(
            select(col(ServiceDelivery.id), col(ServiceDelivery.area_path), col(ServiceDelivery.resident_id))
            .where(among(col(ServiceDelivery.id), chunk))).all()]
        taken.update(d for d, _, _ in stored)
        foreign.update({d for d, _, _ in stored} - service.seen_records(session, actor, stored))

    results: list[Written | AppError] = []
    for p in items:
        body = p.body
        try:
            if body.started_at < oldest:
                raise service.VisitTooOld()
            on = city_date(body.started_at)
            if body.follow_up is not None and not (
                    on <= body.follow_up.due_date <= on + timedelta(days=FOLLOW_UP_MAX_DAYS)):
                raise service.FollowUpDateRange()
            if body.dwelling_id is not None:
                if body.dwelling_id not in scoped:
                    raise NotFound({"field": "dwelling_id"})
                dwelling_id: str | None = body.dwelling_id
                place: tuple[float | None, float | None] | None = scoped[body.dwelling_id]
            else:
                dwelling_id = p.home.dwelling_id if p.home.dwelling_id in places else None
                place = places.get(dwelling_id) if dwelling_id is not None else None
            used = body.catalog_version if body.catalog_version is not None else current
            entries = catalog.check_items(snapshots.get(used), used, [s.item_code for s in body.services], on)
            claims = [s.id for s in body.services if s.id is not None]
            if any(c in foreign for c in claims):
                raise NotFound()
            if any(c in taken for c in claims):
                raise service.DeliveryIdTaken()
        except AppError as error:
            results.append(error)
            continue
        taken.update(claims)
        results.append(_values(p, actor, dwelling_id, place, used, entries, snapshots[current], received, settings))

    written = [r for r in results if isinstance(r, Written)]
    if written:
        _insert(session, written)
        _tasks(session, actor, written)
    return results


def _values(p: Pending, actor: Actor, dwelling_id: str | None, place: tuple[float | None, float | None] | None,
            version: int, entries: dict[str, catalog.Entry], current: catalog.Snapshot, received: datetime,
            settings: Any) -> Written:
    body, checkin = p.body, p.body.checkin
    lat = lng = None
    if checkin is not None:
        lat, lng = checkin.lat, checkin.lng
        if checkin.coord_system == CoordSystem.gcj02:
            lat, lng = gcj02_to_wgs84(lat, lng)
    fix_time = checkin.fix_time.astimezone(UTC) if checkin and checkin.fix_time else None
    started, ended = body.started_at.astimezone(UTC), body.ended_at.astimezone(UTC)
    facts = CheckinFacts(mode=body.mode.value, started_at=started, ended_at=ended, lat=lat, lng=lng,
                         accuracy_m=checkin.accuracy_m if checkin else None,
                         mock_location=bool(checkin and checkin.mock_location), fix_time=fix_time)
    distance, flags = assess(facts, place, received, settings)
    community_id, area_path, district_code = p.area or p.home.area
    created = utcnow()
    visit = {
        "id": p.visit_id, "resident_id": p.home.resident_id, "worker_id": actor.user_id, "community_id": community_id,
        "dwelling_id": dwelling_id, "area_path": area_path, "district_code": district_code,
        "mode": body.mode.value, "purpose": body.purpose.value, "outcome": body.outcome.value,
        "started_at": started, "ended_at": ended, "received_at": received, "notes": service.codes_json(body.notes),
        "catalog_version": version, "lat": lat, "lng": lng,
        "coord_system": checkin.coord_system.value if checkin else None,
        "accuracy_m": checkin.accuracy_m if checkin else None,
        "provider": checkin.provider.value if checkin and checkin.provider else None,
        "mock_location": facts.mock_location, "fix_time": fix_time, "distance_m": distance,
        "no_coordinates_reason": body.no_coordinates_reason.value if body.no_coordinates_reason else None,
        "flags": orjson.dumps(flags).decode(), "review_state": ReviewState.submitted.value,
        "reviewed_by": None, "reviewed_at": None, "review_reason": None, "corrects_visit_id": p.corrects,
        "correction_reason": p.reason, "created_at": created, "version": 1,
    }
    on = city_date(started)
    deliveries: list[dict[str, Any]] = []
    names: dict[str, catalog.Entry] = {}
    for s in body.services:
        entry = entries[s.item_code]
        deliveries.append({
            "id": s.id or new_id(), "visit_id": p.visit_id, "resident_id": p.home.resident_id, "item_id": entry.id,
            "item_code": entry.code, "quantity": s.quantity, "notes": service.codes_json(s.notes),
            "delivered_on": on, "area_path": area_path, "district_code": district_code, "created_at": created,
        })
        names[entry.id] = current.by_id.get(entry.id) or entry
    follow_up = (body.follow_up.due_date, body.follow_up.reason.value) if body.follow_up else None
    return Written(visit, deliveries, names, follow_up, p.home.registered, p.home.area)


def _insert(session: Session, written: list[Written]) -> None:
    """The rows in bulk (app/core/bulk.py), then the audit events and the sync log the listeners would have made."""
    visits, deliveries = table_of(Visit), table_of(ServiceDelivery)
    session.flush()
    writer = BulkWriter(session)
    writer.write_dicts(visits, [w.visit for w in written])
    rows = [d for w in written for d in w.deliveries]
    writer.write_dicts(deliveries, rows)
    for w in written:
        audit.record(session, "visits.create", target_type="visits", target_id=w.visit["id"],
                     fields=visit_fields(w), detail={DELIVERIES: [d["id"] for d in w.deliveries]} if w.deliveries
                     else None)
    for chunk in chunks(w.visit["id"] for w in written):
        tracking.mark_rows(session, visits, among(visits.c.id, chunk))
    for chunk in chunks(d["id"] for d in rows):
        tracking.mark_rows(session, deliveries, among(deliveries.c.id, chunk))


def visit_fields(w: Written) -> list[str]:
    """The field names a `visits.create` event records: the visit's, then its deliveries' as
    `service_deliveries.<name>` (a visit and its deliveries are written together and never change, so one
    event covers them; their ids are in the event's detail)."""
    names = [k for k, v in w.visit.items() if v is not None]
    delivered = {k for d in w.deliveries for k, v in d.items() if v is not None}
    return names + [f"{DELIVERIES}.{k}" for k in sorted(delivered)]


def _tasks(session: Session, actor: Actor, written: list[Written]) -> None:
    """Complete the open tasks the visits discharge and create the follow-ups asked for, in item order —
    the same outcome as recording the visits one by one (tasks.on_visit_recorded)."""
    met = {w.visit["resident_id"] for w in written if w.visit["outcome"] == VisitOutcome.met.value}
    open_tasks: dict[str, list[Task]] = {}
    for chunk in chunks(met):
        for task in session.execute(
            select(Task).where(among(col(Task.resident_id), chunk), col(Task.state) == TaskState.open.value,
                               col(Task.kind).in_(COMPLETED_BY_VISITS))
            .order_by(col(Task.due_date), col(Task.id)).with_for_update()
        ).scalars():
            open_tasks.setdefault(task.resident_id, []).append(task)
    sources = {t.source_visit_id for ts in open_tasks.values() for t in ts
               if t.kind == TaskKind.follow_up.value and t.source_visit_id is not None}
    started: dict[str, datetime] = {}
    for chunk in chunks(s for s in sources if s is not None):
        started.update((visit_id, at) for visit_id, at in session.execute(
            select(col(Visit.id), col(Visit.started_at)).where(among(col(Visit.id), chunk))).all())
    asks = [w for w in written if w.follow_up is not None and w.registered]
    existing, stored = _follow_up_context(session, asks, {w.visit["id"] for w in written})
    earlier: dict[str, list[Facts]] = {}  # met visits of this batch so far, by resident
    for w in written:
        v = w.visit
        facts = Facts(v["id"], v["resident_id"], v["mode"], v["outcome"], v["started_at"])
        if v["outcome"] == VisitOutcome.met.value:
            for task in open_tasks.get(v["resident_id"], []):
                source = started.get(task.source_visit_id) if (
                    task.kind == TaskKind.follow_up.value and task.source_visit_id is not None) else None
                if task.state == TaskState.open.value and tasks.visit_completes(task, facts, source):
                    tasks._complete(session, task, facts)
                    w.tasks_completed.append(task.id)
        if w.follow_up is not None and w.registered and (v["resident_id"], v["id"]) not in existing:
            task = _follow_up(session, actor, w)
            w.tasks_created.append(task.id)
            # Done at once by a visit stored before it (earlier in time, or earlier in this batch), as
            # tasks.find_completing_visit would find it; otherwise open for the visits still to come.
            done = min((c for c in [*stored.get(v["resident_id"], []), *earlier.get(v["resident_id"], [])]
                        if c.started_at > v["started_at"] and c.id != v["id"]),
                       key=lambda c: (c.started_at, c.id), default=None)
            if done is not None:
                tasks._complete(session, task, done)
            else:
                open_tasks.setdefault(task.resident_id, []).append(task)
                started[v["id"]] = v["started_at"]
        if v["outcome"] == VisitOutcome.met.value:
            earlier.setdefault(v["resident_id"], []).append(facts)
    session.flush()


def _follow_up_context(session: Session, asks: list[Written],
                       batch_ids: set[str]) -> tuple[set[tuple[str, str]], dict[str, list[Facts]]]:
    """For the visits asking for a follow-up: those whose task exists already, and the met visits stored
    before this batch that may complete them (not superseded, started after the earliest of them)."""
    if not asks:
        return set(), {}
    kind = TaskKind.follow_up.value
    existing: set[tuple[str, str]] = set()  # (resident, period): the follow-up of a visit has its id as period
    for chunk in chunks(w.visit["id"] for w in asks):
        existing.update((r, p) for r, p in session.execute(select(col(Task.resident_id), col(Task.period)).where(
            col(Task.kind) == kind, among(col(Task.period), chunk))).all())
    since = min(w.visit["started_at"] for w in asks)
    stored: dict[str, list[Facts]] = {}
    for chunk in chunks(w.visit["resident_id"] for w in asks):
        for visit_id, resident_id, mode, outcome, at in session.execute(
            select(col(Visit.id), col(Visit.resident_id), col(Visit.mode), col(Visit.outcome), col(Visit.started_at))
            .where(among(col(Visit.resident_id), chunk), col(Visit.outcome) == VisitOutcome.met.value,
                   col(Visit.started_at) > since, service.not_superseded(col(Visit.id)))
        ).all():
            if visit_id not in batch_ids:
                stored.setdefault(resident_id, []).append(Facts(visit_id, resident_id, mode, outcome, at))
    return existing, stored


def _follow_up(session: Session, actor: Actor, w: Written) -> Task:
    """The follow-up task a visit asks for, in the resident's area (written at the final flush)."""
    assert w.follow_up is not None
    v = w.visit
    community_id, area_path, district_code = w.resident_area
    task = Task(resident_id=v["resident_id"], community_id=community_id, area_path=area_path,
                district_code=district_code, kind=TaskKind.follow_up.value, period=v["id"],
                due_date=w.follow_up[0], created_by=actor.user_id, reason=w.follow_up[1], source_visit_id=v["id"])
    session.add(task)
    return task
