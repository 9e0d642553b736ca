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

import orjson
from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.audit import service as audit
from app.auth.models import Role
from app.catalog.models import ServiceItem
from app.core.deps import Actor
from app.core.errors import AppError, Conflict, Forbidden, NotFound, StaleVersion, Unprocessable
from app.core.types import CITY_TZ, new_id, utcnow
from app.people import service as people
from app.people.models import Resident, ResidentStatus
from app.visits.models import ReviewState, ServiceDelivery, Task, Visit, VisitReview
from app.visits.schemas import (
    CheckinOut,
    CorrectionCreate,
    DeliveryOut,
    ReviewDecision,
    ReviewIn,
    ReviewOut,
    ServiceHistoryItem,
    VisitCreate,
    VisitListItem,
    VisitOut,
)
from app.visits.task_schemas import FOLLOW_UP_MAX_DAYS

# --- errors -----------------------------------------------------------------------------------------------


class VisitTooOld(Unprocessable):
    code = "visit_too_old"
    en = "The visit started too long ago to be recorded (see VISIT_MAX_AGE_DAYS)."
    zh = "访视开始时间过早，已超过可补录期限。"


class VisitResidentNotActive(Unprocessable):
    code = "resident_not_active"
    en = "The record is archived; record the visit on the surviving record."
    zh = "该人员档案已归档，请在现行档案上记录访视。"


class FollowUpDateRange(Unprocessable):
    code = "follow_up_date_range"
    en = f"A follow-up is due on or after the visit's date and within {FOLLOW_UP_MAX_DAYS} days of it."
    zh = f"随访日期应不早于访视当日，且在访视后{FOLLOW_UP_MAX_DAYS}天以内。"


class VisitIdTaken(Conflict):
    code = "visit_id_taken"
    en = "This visit id is already used by a different visit; generate a new id."
    zh = "该访视编号已被其他访视使用，请生成新编号。"


class DeliveryIdTaken(Conflict):
    code = "delivery_id_taken"
    en = "A service delivery id is already used; generate a new id."
    zh = "服务记录编号已被使用，请生成新编号。"


class OwnVisitReview(Forbidden):
    code = "own_visit_review"
    en = "You cannot review a visit you recorded yourself."
    zh = "不能审核自己记录的访视。"


class NotVisitAuthor(Forbidden):
    code = "not_visit_author"
    en = "Only the visit's author or a supervisor can correct it."
    zh = "只有访视记录人或督导可以更正该访视。"


class AlreadyCorrected(Conflict):
    code = "already_corrected"
    en = "This visit has already been corrected; correct the newest version instead."
    zh = "该访视已被更正，请更正最新的版本。"


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


def id_taken(session: Session, actor: Actor, visit: Visit) -> AppError:
    """The refusal of a client id that a different visit holds: 409 if the caller may see that visit, else 404."""
    if seen_records(session, actor, [(visit.id, visit.area_path, visit.resident_id)]):
        return VisitIdTaken()
    return NotFound()


def visit_resident(session: Session, actor: Actor, resident_id: str) -> Resident:
    """The resident a new visit is recorded on: in scope, followed through merges to the survivor."""
    resident = people.get_resident(session, actor, resident_id)
    if resident.merged_into_id is not None:
        resident = people.get_resident(session, actor, people.survivor_of(session, resident).id)
    if resident.status == ResidentStatus.archived.value or resident.merged_into_id is not None:
        raise VisitResidentNotActive()
    return resident


def superseded_ids(session: Session, visit_ids: Sequence[str]) -> dict[str, str]:
    """original visit id -> the id of the correction that supersedes it."""
    if not visit_ids:
        return {}
    rows = session.execute(
        select(col(Visit.corrects_visit_id), col(Visit.id)).where(col(Visit.corrects_visit_id).in_(list(visit_ids)))
    ).all()
    return {str(original): str(correction) for original, correction in rows}


def not_superseded(visit_id: Any) -> ColumnElement[bool]:
    later = aliased(Visit)
    return ~exists().where(col(later.corrects_visit_id) == visit_id)


# --- recording ------------------------------------------------------------------------------------------------


BUILT = "visits_built"  # session.info: the answers of visits written in this transaction, by id


def record_visit(session: Session, actor: Actor, body: VisitCreate) -> tuple[Visit, bool]:
    """(visit, created). A retry of a stored visit (same client id and content) returns it unchanged.

    The one-item case of `batch.record` (the bulk path sync push uses too); its answer is kept for
    `visit_out`, which need not read back what was just written."""
    from app.visits import batch

    outcome = batch.record(session, actor, [body])[0]
    if outcome.error is not None:
        raise outcome.error
    if outcome.stored is not None:
        return outcome.stored, False
    assert outcome.written is not None
    return _written(session, outcome.written), True


def correct_visit(session: Session, actor: Actor, visit_id: str, body: CorrectionCreate) -> tuple[Visit, bool]:
    """A correction: a new visit superseding `visit_id` (by its author, or a supervisor in scope)."""
    from app.visits import batch

    if body.id is not None and (stored := session.get(Visit, body.id)) is not None:
        if not batch.same_visit(session, actor, stored, _delivered(session, stored.id), body, visit_id):
            raise id_taken(session, actor, stored)
        return stored, False
    original = get_visit(session, actor, visit_id, for_update=True)
    if actor.role != Role.supervisor and original.worker_id != actor.user_id:
        raise NotVisitAuthor()
    newer = superseded_ids(session, [original.id]).get(original.id)
    if newer is not None:
        raise AlreadyCorrected({"corrected_by_id": newer})
    resident = session.get(Resident, original.resident_id)
    if resident is None:
        raise NotFound()
    resident = people.survivor_of(session, resident)
    if resident.status == ResidentStatus.archived.value or resident.merged_into_id is not None:
        raise VisitResidentNotActive()
    pending = batch.Pending(body, body.id or new_id(), batch.Home.of(resident),
                            area=(original.community_id, original.area_path, original.district_code),
                            corrects=original.id, reason=body.correction_reason.value)
    done = batch.write(session, actor, [pending])[0]
    if isinstance(done, AppError):
        raise done
    return _written(session, done), True


def _delivered(session: Session, visit_id: str) -> list[tuple[str, int]]:
    rows = session.execute(
        select(col(ServiceDelivery.item_code), col(ServiceDelivery.quantity))
        .where(col(ServiceDelivery.visit_id) == visit_id)
    ).all()
    return sorted((str(code), int(quantity)) for code, quantity in rows)


def codes_json(values: Sequence[Any]) -> str:
    """Codes as stored: a sorted JSON list without spaces (orjson: a sync push encodes thousands)."""
    return orjson.dumps(sorted({str(getattr(v, "value", v)) for v in values})).decode()


def _written(session: Session, written: Any) -> Visit:
    """The visit just written (not attached to the session) with its answer built from what was written."""
    visit = Visit.model_validate(written.visit)
    session.info.setdefault(BUILT, {})[visit.id] = _out_of_written(written)
    return visit


def _out_of_written(written: Any) -> VisitOut:
    """`visit_out` of a visit just written: no reviews or correction yet; services in catalogue order."""
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


# --- review -------------------------------------------------------------------------------------------------


def review_visit(session: Session, actor: Actor, visit_id: str, body: ReviewIn) -> Visit:
    visit = get_visit(session, actor, visit_id, for_update=True)
    if visit.worker_id == actor.user_id:
        raise OwnVisitReview()
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
    built: VisitOut | None = session.info.get(BUILT, {}).pop(visit.id, None)
    if built is not None:
        return built
    deliveries = session.execute(
        select(ServiceDelivery, ServiceItem).join(ServiceItem, col(ServiceItem.id) == col(ServiceDelivery.item_id))
        .where(col(ServiceDelivery.visit_id) == visit.id).order_by(col(ServiceItem.sort_order), col(ServiceItem.code))
    ).all()
    reviews = session.execute(
        select(VisitReview).where(col(VisitReview.visit_id) == visit.id)
        .order_by(col(VisitReview.created_at), col(VisitReview.id))
    ).scalars().all()
    done = session.execute(select(col(Task.id)).where(col(Task.completed_by_visit_id) == visit.id)
                           .order_by(col(Task.id))).scalars().all()
    created = session.execute(select(col(Task.id)).where(col(Task.source_visit_id) == visit.id)
                              .order_by(col(Task.id))).scalars().all()
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
        "tasks_completed": list(done),
        "tasks_created": list(created),
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
                 purpose=purpose or "case_work")
