"""Visits: record (check-in flags, service deliveries, task completion), read, review, correct.

A visit is immutable once stored. Only its review fields change (every decision is also a `visit_reviews`
row); a correction is a new visit whose `corrects_visit_id` names the original, which is then superseded
and its deliveries no longer count in the resident's service history.

Scope: a visit lies in the area it was recorded in (the resident's area at the time). Lists, reviews and
corrections use that area; a single visit, a resident's visits and their service history are also visible
to whoever sees the resident now, so a worker who takes over a resident who moved sees their history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.catalog.models import ServiceItem
from app.core import events
from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.types import CITY_TZ
from app.ledger import audit
from app.people.models import Resident
from app.people.register import service as people
from app.visits.events import VisitTasksWanted, Written
from app.visits.models import ServiceDelivery, Visit, VisitReview
from app.visits.schemas import (
    CheckinOut,
    DeliveryOut,
    ReviewOut,
    ServiceHistoryItem,
    VisitListItem,
    VisitOut,
)

# --- scope --------------------------------------------------------------------------------------------------


def in_area(actor: Actor) -> ColumnElement[bool]:
    return actor.area_filter(col(Visit.area_path), col(Visit.district_code))


def get_visit(session: Session, actor: Actor, visit_id: str, *, for_update: bool = False,
              via_resident: bool = False) -> Visit:
    """The visit if it lies in the actor's area (or, with `via_resident`, its resident does), else 404."""
    stmt = select(Visit).where(col(Visit.id) == visit_id, in_area(actor))
    if for_update:
        stmt = stmt.with_for_update()
    visit = session.execute(stmt).scalar_one_or_none()
    if visit is None and via_resident:
        found = session.get(Visit, visit_id)
        if found is not None and session.execute(
            select(col(Resident.id)).where(col(Resident.id) == found.resident_id,
                                           actor.area_filter(col(Resident.area_path), col(Resident.district_code)))
        ).first() is not None:
            visit = found
    if visit is None:
        raise NotFound()
    return visit


def seen_records(session: Session, actor: Actor, records: Sequence[tuple[str, str, str]]) -> set[str]:
    """Of visits or service deliveries given as (id, area_path, resident_id): the ids the actor may see —
    recorded in their area, or about a resident they see now (as GET /visits/{id}). A client id taken by a
    record outside this set is answered like any reference outside scope (404), so its existence never leaks."""
    seen = {rid for rid, path, _ in records if actor.sees_path(path)}
    rest = [(rid, resident) for rid, _, resident in records if rid not in seen]
    if rest:
        residents = people.ids_in_scope(session, actor, {resident for _, resident in rest})
        seen |= {rid for rid, resident in rest if resident in residents}
    return seen


def superseded_ids(session: Session, visit_ids: Sequence[str]) -> dict[str, str]:
    """original visit id -> the id of the correction that supersedes it."""
    if not visit_ids:
        return {}
    rows = session.execute(
        select(col(Visit.corrects_visit_id), col(Visit.id)).where(col(Visit.corrects_visit_id).in_(list(visit_ids)))
    ).all()
    return {str(original): str(correction) for original, correction in rows}


_LATER = aliased(Visit)  # made once: an alias builds its column collection anew each time


def not_superseded(visit_id: Any) -> ColumnElement[bool]:
    return ~exists().where(col(_LATER.corrects_visit_id) == visit_id)


# --- reading ------------------------------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CITY_TZ)


def list_visits(actor: Actor, *, resident_id: str | None = None, worker_id: str | None = None,
                community_id: str | None = None, start: date | None = None, end: date | None = None,
                review_state: str | None = None, flagged: bool | None = None, mode: str | None = None,
                purpose: str | None = None) -> Select[Any]:
    stmt = select(Visit).where(in_area(actor))
    for column, value in ((Visit.resident_id, resident_id), (Visit.worker_id, worker_id),
                          (Visit.community_id, community_id), (Visit.review_state, review_state),
                          (Visit.mode, mode), (Visit.purpose, purpose)):
        if value is not None:
            stmt = stmt.where(col(column) == value)
    if start is not None:
        stmt = stmt.where(col(Visit.started_at) >= day_start(start))
    if end is not None:
        stmt = stmt.where(col(Visit.started_at) < day_start(end + timedelta(days=1)))
    if flagged is not None:
        stmt = stmt.where(col(Visit.flags) != "[]" if flagged else col(Visit.flags) == "[]")
    return newest_first(stmt)


def newest_first(stmt: Select[Any]) -> Select[Any]:
    return stmt.order_by(col(Visit.started_at).desc(), col(Visit.id).desc())


def resident_visits(resident: Resident) -> Select[Any]:
    return newest_first(select(Visit).where(col(Visit.resident_id) == resident.id))


def list_items(session: Session, visits: Sequence[Visit]) -> list[VisitListItem]:
    corrected = superseded_ids(session, [v.id for v in visits])
    return [VisitListItem.model_validate({**_base(v), "corrected_by_id": corrected.get(v.id)}) for v in visits]


def _base(visit: Visit) -> dict[str, Any]:
    return {**visit.model_dump(), "flags": json.loads(visit.flags), "notes": json.loads(visit.notes)}


def visit_out(session: Session, visit: Visit) -> VisitOut:
    deliveries = session.execute(
        select(ServiceDelivery, ServiceItem).join(ServiceItem, col(ServiceItem.id) == col(ServiceDelivery.item_id))
        .where(col(ServiceDelivery.visit_id) == visit.id).order_by(col(ServiceItem.sort_order), col(ServiceItem.code))
    ).all()
    reviews = session.execute(
        select(VisitReview).where(col(VisitReview.visit_id) == visit.id)
        .order_by(col(VisitReview.created_at), col(VisitReview.id))
    ).scalars().all()
    tasks = events.emit(session, VisitTasksWanted.of([visit.id]))
    checkin = None
    if visit.lat is not None and visit.lng is not None:
        checkin = CheckinOut(lat=visit.lat, lng=visit.lng, coord_system=visit.coord_system or "wgs84",
                             accuracy_m=visit.accuracy_m, provider=visit.provider,
                             mock_location=visit.mock_location, fix_time=visit.fix_time)
    return VisitOut.model_validate({
        **_base(visit),
        "corrected_by_id": superseded_ids(session, [visit.id]).get(visit.id),
        "checkin": checkin,
        "services": [_delivery(d, item, DeliveryOut) for d, item in deliveries],
        "reviews": [ReviewOut.model_validate(r) for r in reviews],
        "tasks_completed": tasks.completed[visit.id],
        "tasks_created": tasks.created[visit.id],
    })


def _delivery(delivery: ServiceDelivery, item: ServiceItem, shape: Any, **extra: Any) -> Any:
    return shape.model_validate({**delivery.model_dump(), "notes": json.loads(delivery.notes),
                                 "name_zh": item.name_zh, "name_en": item.name_en, **extra})


def service_history(resident: Resident) -> Select[Any]:
    """A resident's deliveries, newest first, without those of superseded visits."""
    return (
        select(ServiceDelivery)
        .where(col(ServiceDelivery.resident_id) == resident.id, not_superseded(col(ServiceDelivery.visit_id)))
        .order_by(col(ServiceDelivery.delivered_on).desc(), col(ServiceDelivery.created_at).desc(),
                  col(ServiceDelivery.id).desc())
    )


def history_items(session: Session, deliveries: Sequence[ServiceDelivery]) -> list[ServiceHistoryItem]:
    if not deliveries:
        return []
    items = {i.id: i for i in session.execute(
        select(ServiceItem).where(col(ServiceItem.id).in_({d.item_id for d in deliveries}))).scalars()}
    visits = {v.id: v for v in session.execute(
        select(Visit).where(col(Visit.id).in_({d.visit_id for d in deliveries}))).scalars()}
    return [_delivery(d, items[d.item_id], ServiceHistoryItem, community_id=visits[d.visit_id].community_id,
                      worker_id=visits[d.visit_id].worker_id) for d in deliveries]


def audit_visit_read(session: Session, visit: Visit, purpose: str | None) -> None:
    """A visit holds a precise location and, in its services, reproductive-health data."""
    audit.record(session, "visit.read", target_type="visits", target_id=visit.id, fields=["checkin", "services"],
                 purpose=purpose or "case_work", area_path=visit.area_path, district_code=visit.district_code)


def written_out(written: Written) -> VisitOut:
    """The answer for a visit just written: no reviews or correction yet; services in catalogue order."""
    v = written.visit
    services = sorted(written.deliveries, key=lambda d: (written.items[d["item_id"]].sort_order, d["item_code"]))
    checkin = None
    if v["lat"] is not None and v["lng"] is not None:
        checkin = CheckinOut(lat=v["lat"], lng=v["lng"], coord_system=v["coord_system"] or "wgs84",
                             accuracy_m=v["accuracy_m"], provider=v["provider"], mock_location=v["mock_location"],
                             fix_time=v["fix_time"])
    return VisitOut.model_validate({
        **v, "flags": json.loads(v["flags"]), "notes": json.loads(v["notes"]), "corrected_by_id": None,
        "checkin": checkin,
        "services": [DeliveryOut.model_validate({**d, "notes": json.loads(d["notes"]),
                                                 "name_zh": written.items[d["item_id"]].name_zh,
                                                 "name_en": written.items[d["item_id"]].name_en}) for d in services],
        "reviews": [], "tasks_completed": sorted(written.tasks_completed),
        "tasks_created": sorted(written.tasks_created),
    })
