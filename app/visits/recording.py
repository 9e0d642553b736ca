"""Recording visits: every visit write — POST /visits, corrections, reviews and sync push — lives here.

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

How: a few queries for the whole batch (stored visits and deliveries by id, residents in scope; in
`visits.lookups` the dwellings, the catalogue snapshots — parsed once per process — and delivery ids; the
residents' open tasks), each built once (`core.queries.ByKey`, lean: app/core/lean.py) — the residents with
their home dwelling's point — the check-in flags in Python, then the rows in bulk (app/core/bulk.py:
executemany on SQLite, COPY on PostgreSQL). The audit events and the sync log (`changes.mark_new`, from the
values written) are recorded explicitly, since bulk statements bypass the
listeners: one `visits.create` event per visit with the visit's field names and its deliveries'
(`service_deliveries.<name>`), the delivery ids in its detail (a visit and its deliveries are one immutable
record: one event, not one per row). Tasks are completed and created through the ORM (audited and logged
automatically). The caller owns the transaction: flush only, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.catalog import service as catalog
from app.core import events
from app.core.actor import Actor, Role
from app.core.bulk import BulkWriter, table_of
from app.core.config import get_settings
from app.core.errors import AppError, NotFound, StaleVersion
from app.core.lean import run
from app.core.queries import ByKey, chunks
from app.core.types import city_date, new_id, utcnow
from app.ledger import audit, changes
from app.people.models import Resident, ResidentStatus
from app.people.register import service as people
from app.visits import errors, lookups, service
from app.visits.checkin import CheckinFacts, assess
from app.visits.events import VisitsWritten, Written
from app.visits.geo import gcj02_to_wgs84
from app.visits.lookups import Home
from app.visits.models import FOLLOW_UP_MAX_DAYS, ReviewState, ServiceDelivery, Visit, VisitReview
from app.visits.schemas import (
    CoordSystem,
    CorrectionCreate,
    ReviewDecision,
    ReviewIn,
    VisitCreate,
    VisitFields,
    VisitOut,
)

Status = Literal["created", "unchanged", "rejected"]
DELIVERIES = "service_deliveries"  # where a visit's audit event names its deliveries


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
class Outcome:
    result: ItemResult
    error: AppError | None = None
    stored: Visit | None = None  # unchanged: the stored visit
    written: Written | None = None  # created


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
    # Flushed once here: the lookups below read plain columns on the connection (a session's own `execute`
    # costs ~40 µs more a statement), which would not see unflushed ORM writes (a push's residents).
    session.flush()
    conn = session.connection()
    client_ids = [vid for _, body, vid in round_ if body.id is not None]
    stored: dict[str, Visit] = {}
    delivered: dict[str, list[tuple[str, str, int]]] = {}
    for chunk in chunks(client_ids):  # ids first (lean): a new visit's id is not stored yet
        taken = [visit_id for visit_id, in run(conn, *STORED_IDS(chunk))]
        if taken:
            stored.update((v.id, v) for v in session.execute(*_STORED(taken)).scalars())
    for chunk in chunks(stored):
        for visit_id, delivery_id, code, quantity in run(conn, *_STORED_DELIVERIES(chunk)):
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
            outcomes[i] = _rejected(vid, id_taken(session, actor, visit), lang)

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


# Built once (ByKey); the residents' with the caller's area once per scope and dialect (`lookups.homes_statement`).
STORED_IDS = ByKey(lambda key: select(col(Visit.id)).where(key(col(Visit.id))), lean=True)  # sync push too
_STORED = ByKey(lambda key: select(Visit).where(key(col(Visit.id))))
_STORED_DELIVERIES = ByKey(lambda key: select(
    col(ServiceDelivery.visit_id), col(ServiceDelivery.id), col(ServiceDelivery.item_code),
    col(ServiceDelivery.quantity)).where(key(col(ServiceDelivery.visit_id))), lean=True)


def _homes(session: Session, actor: Actor, resident_ids: list[str]) -> dict[str, Home | AppError]:
    """Each resident a visit names: in scope (else 404), followed through merges, not archived (else 422)."""
    homes: dict[str, Home | AppError] = {}
    dialect = session.get_bind().dialect.name
    by_id = lookups.homes_statement(actor, dialect)
    for chunk in chunks(resident_ids):
        for row in run(session.connection(), *by_id(chunk)):  # flushed (`_round`)
            if row.merged_into_id is not None:  # rare: the single path follows the merges
                try:
                    homes[row.id] = Home.of(visit_resident(session, actor, row.id))
                except AppError as error:
                    homes[row.id] = error
            elif row.status == ResidentStatus.archived.value:
                homes[row.id] = errors.VisitResidentNotActive()
            else:
                homes[row.id] = Home.of_row(row)
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
    known = lookups.known(
        session, actor, chosen={p.body.dwelling_id for p in items if p.body.dwelling_id is not None},
        homes={p.home.dwelling_id for p in items
               if p.body.dwelling_id is None and p.home.dwelling_id is not None and not p.home.place_read},
        versions={p.body.catalog_version for p in items if p.body.catalog_version is not None},
        claimed=[s.id for p in items for s in p.body.services if s.id is not None])
    for p in items:
        if p.home.place is not None and p.home.dwelling_id is not None:
            known.places[p.home.dwelling_id] = p.home.place
    results: list[Written | AppError] = []
    for p in items:
        try:
            results.append(_checked(p, actor, known, received, settings))
        except AppError as error:
            results.append(error)
    written = [r for r in results if isinstance(r, Written)]
    if written:
        _insert(session, written)
        events.emit(session, VisitsWritten(actor, written))  # the task list completes and creates its tasks
    return results


def _checked(p: Pending, actor: Actor, known: lookups.Known, received: datetime, settings: Any) -> Written:
    """One new visit checked against the batch's lookups (raises its refusal) and turned into rows."""
    body = p.body
    if body.started_at < received - timedelta(days=settings.visit_max_age_days):
        raise errors.VisitTooOld()
    on = city_date(body.started_at)
    if body.follow_up is not None and not (on <= body.follow_up.due_date <= on + timedelta(days=FOLLOW_UP_MAX_DAYS)):
        raise errors.FollowUpDateRange()
    if body.dwelling_id is not None:
        if body.dwelling_id not in known.scoped:
            raise NotFound({"field": "dwelling_id"})
        dwelling_id: str | None = body.dwelling_id
        place: tuple[float | None, float | None] | None = known.scoped[body.dwelling_id]
    else:
        dwelling_id = p.home.dwelling_id if p.home.dwelling_id in known.places else None
        place = known.places.get(dwelling_id) if dwelling_id is not None else None
    used = body.catalog_version if body.catalog_version is not None else known.current
    entries = catalog.check_items(known.snapshots.get(used), used, [s.item_code for s in body.services], on)
    claims = [s.id for s in body.services if s.id is not None]
    if any(c in known.foreign for c in claims):
        raise NotFound()
    if any(c in known.taken for c in claims):
        raise errors.DeliveryIdTaken()
    known.taken.update(claims)
    return _values(p, actor, dwelling_id, place, used, entries, known.snapshots[known.current], received, settings)


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
        "started_at": started, "ended_at": ended, "received_at": received, "notes": codes_json(body.notes),
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
            "item_code": entry.code, "quantity": s.quantity, "notes": codes_json(s.notes),
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
    # New rows with their area in hand: logged from these values, in one insert at the stamp.
    changes.mark_new(session, visits, [_located(w.visit) for w in written])
    changes.mark_new(session, deliveries, [_located(d) for d in rows])


def _located(row: dict[str, Any]) -> tuple[str, str, str | None]:
    return row["id"], row["area_path"], row["district_code"]


def visit_fields(w: Written) -> list[str]:
    """The field names a `visits.create` event records: the visit's, then its deliveries' as
    `service_deliveries.<name>` (a visit and its deliveries are written together and never change, so one
    event covers them; their ids are in the event's detail)."""
    names = [k for k, v in w.visit.items() if v is not None]
    delivered = {k for d in w.deliveries for k, v in d.items() if v is not None}
    return names + [f"{DELIVERIES}.{k}" for k in sorted(delivered)]


# --- one visit (POST /visits, corrections) and reviews -------------------------------------------------------


def id_taken(session: Session, actor: Actor, visit: Visit) -> AppError:
    """The refusal of a client id that a different visit holds: 409 if the caller may see that visit, else 404."""
    if service.seen_records(session, actor, [(visit.id, visit.area_path, visit.resident_id)]):
        return errors.VisitIdTaken()
    return NotFound()


def visit_resident(session: Session, actor: Actor, resident_id: str) -> Resident:
    """The resident a new visit is recorded on: in scope, followed through merges to the survivor."""
    resident = people.get_resident(session, actor, resident_id)
    if resident.merged_into_id is not None:
        resident = people.get_resident(session, actor, people.survivor_of(session, resident).id)
    if resident.status == ResidentStatus.archived.value or resident.merged_into_id is not None:
        raise errors.VisitResidentNotActive()
    return resident


def record_visit(session: Session, actor: Actor, body: VisitCreate) -> tuple[VisitOut, bool]:
    """(answer, created). A retry of a stored visit (same client id and content) answers it unchanged.

    The one-item case of `record` (the bulk path sync push uses too); a visit just written is answered from
    what was written, without reading it back."""
    outcome = record(session, actor, [body])[0]
    if outcome.error is not None:
        raise outcome.error
    if outcome.stored is not None:
        return service.visit_out(session, outcome.stored), False
    assert outcome.written is not None
    return service.written_out(outcome.written), True


def correct_visit(session: Session, actor: Actor, visit_id: str, body: CorrectionCreate) -> tuple[VisitOut, bool]:
    """A correction: a new visit superseding `visit_id` (by its author, or a supervisor in scope)."""
    if body.id is not None and (stored := session.get(Visit, body.id)) is not None:
        if not same_visit(session, actor, stored, _delivered(session, stored.id), body, visit_id):
            raise id_taken(session, actor, stored)
        return service.visit_out(session, stored), False
    original = service.get_visit(session, actor, visit_id, for_update=True)
    if actor.role != Role.supervisor and original.worker_id != actor.user_id:
        raise errors.NotVisitAuthor()
    newer = service.superseded_ids(session, [original.id]).get(original.id)
    if newer is not None:
        raise errors.AlreadyCorrected({"corrected_by_id": newer})
    resident = session.get(Resident, original.resident_id)
    if resident is None:
        raise NotFound()
    resident = people.survivor_of(session, resident)
    if resident.status == ResidentStatus.archived.value or resident.merged_into_id is not None:
        raise errors.VisitResidentNotActive()
    pending = Pending(body, body.id or new_id(), Home.of(resident),
                      area=(original.community_id, original.area_path, original.district_code),
                      corrects=original.id, reason=body.correction_reason.value)
    done = write(session, actor, [pending])[0]
    if isinstance(done, AppError):
        raise done
    return service.written_out(done), True


def _delivered(session: Session, visit_id: str) -> list[tuple[str, int]]:
    rows = session.execute(
        select(col(ServiceDelivery.item_code), col(ServiceDelivery.quantity))
        .where(col(ServiceDelivery.visit_id) == visit_id)
    ).all()
    return sorted((str(code), int(quantity)) for code, quantity in rows)


def codes_json(values: Sequence[Any]) -> str:
    """Codes as stored: a sorted JSON list without spaces (orjson: a sync push encodes thousands)."""
    return orjson.dumps(sorted({str(getattr(v, "value", v)) for v in values})).decode()


# --- review -------------------------------------------------------------------------------------------------


def review_visit(session: Session, actor: Actor, visit_id: str, body: ReviewIn) -> Visit:
    visit = service.get_visit(session, actor, visit_id, for_update=True)
    if visit.worker_id == actor.user_id:
        raise errors.OwnVisitReview()
    if visit.version != body.version:
        raise StaleVersion({"current_version": visit.version})
    state = ReviewState.approved if body.decision == ReviewDecision.approve else ReviewState.flagged
    now = utcnow()
    reason = body.reason.value if body.reason else None
    session.add(VisitReview(visit_id=visit.id, district_code=visit.district_code, decision=state.value,
                            reason=reason, comment=body.comment or None, reviewed_by=actor.user_id, created_at=now))
    visit.review_state, visit.reviewed_by, visit.reviewed_at, visit.review_reason = (
        state.value, actor.user_id, now, reason)
    visit.version += 1
    session.add(visit)
    session.flush()
    return visit
