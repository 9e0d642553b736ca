"""Recording a verification's outcome: the one write path of the REST route and the sync push.

Inside the caller's transaction, with the register's own workflows (docs/cycle.md, "Effects"):
- MOVED_WITHIN_CITY moves the resident to the new dwelling (`move_to`) and opens a pending verification in the
  receiving community's period of the same month;
- LEFT_CITY, RETURNED_HOME, SETTLED and DECEASED end the residence (`end_residence`, the history kept);
- NOT_FOUND counts the months in a row; at VERIFICATION_NOT_FOUND_MONTHS the residence ends as
  `whereabouts_unknown` (去向不明).
The resident and the verification are read FOR UPDATE and the period FOR SHARE (in that order, the order a
move through the register takes), so two recordings of one verification cannot both pass the version check,
and a period cannot close under a recording.
"""

from __future__ import annotations

from datetime import date

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.config import get_settings
from app.core.errors import NotFound, StaleVersion
from app.core.types import city_today, utcnow
from app.cycle.periods import month_of
from app.cycle.verification.errors import (
    EvidenceMissing,
    PeriodClosed,
    ResidentNotRegistered,
    SameDwelling,
    VerificationNotFound,
    VerificationRecorded,
    VisitOfOtherResident,
)
from app.cycle.verification.events import OutcomeRecorded
from app.cycle.verification.models import Evidence, Outcome, Period, PeriodState, Verification
from app.cycle.verification.opening import shift
from app.cycle.verification.schemas import VerificationRecord
from app.people.events import ResidentLeft, ResidentMerged, ResidentMoved, ResidentRegistered
from app.people.models import Resident, ResidentStatus
from app.people.register import service as register
from app.places.models import Division
from app.visits.models import Visit

ENDS_RESIDENCE = {Outcome.left_city: "left_city", Outcome.returned_home: "returned_home",
                  Outcome.settled: "settled", Outcome.deceased: "deceased"}
WHEREABOUTS_UNKNOWN = "whereabouts_unknown"
RECORDED = ("outcome", "evidence", "visit_id", "note", "new_dwelling_id", "moved_on")


def get_verification(session: Session, actor: Actor, verification_id: str, *, for_update: bool = False
                     ) -> Verification:
    stmt = select(Verification).where(col(Verification.id) == verification_id,
                                      actor.area_filter(col(Verification.area_path), col(Verification.district_code)))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    found = session.execute(stmt).scalar_one_or_none()
    if found is None:
        raise VerificationNotFound()
    return found


def _same(verification: Verification, body: VerificationRecord) -> bool:
    values = body.model_dump(include=set(RECORDED))
    values["outcome"], values["evidence"] = body.outcome.value, body.evidence.value
    if body.moved_on is None:
        values.pop("moved_on")
    return all(getattr(verification, k) == v for k, v in values.items())


def record(session: Session, actor: Actor, verification_id: str, body: VerificationRecord) -> tuple[Verification, bool]:
    """Record the outcome; returns the verification and whether anything changed (a replay changes nothing)."""
    # Lock order resident → verification → period, as a move through the register takes them (the resident,
    # then the verifications that follow it): two writers never wait on each other round a loop.
    resident_id = get_verification(session, actor, verification_id).resident_id
    resident = session.execute(select(Resident).where(col(Resident.id) == resident_id).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one()
    verification = get_verification(session, actor, verification_id, for_update=True)
    if verification.outcome is not None and _same(verification, body):
        return verification, False
    period = session.execute(select(Period).where(col(Period.id) == verification.period_id)
                             .with_for_update(read=True).execution_options(populate_existing=True)).scalar_one()
    if period.state != PeriodState.open.value:
        raise PeriodClosed()
    if verification.version != body.version:
        raise StaleVersion({"current_version": verification.version})
    if verification.outcome is not None:
        raise VerificationRecorded()
    if resident.status != ResidentStatus.registered.value or resident.merged_into_id is not None:
        raise ResidentNotRegistered()
    if body.evidence == Evidence.partner:
        _check_proposal(verification, body.outcome)
    flags = "[]"
    if body.visit_id is not None:
        flags = checkin_flags(_check_visit(session, actor, resident, body.visit_id))
    on = body.moved_on or city_today()
    register.check_dates(on)
    verification.outcome, verification.evidence = body.outcome.value, body.evidence.value
    verification.visit_id, verification.note, verification.moved_on = body.visit_id, body.note, body.moved_on
    verification.new_dwelling_id, verification.checkin_flags = body.new_dwelling_id, flags
    verification.verified_by, verification.verified_at = actor.user_id, utcnow()
    verification.version += 1
    verification.updated_at = utcnow()
    session.add(verification)
    session.flush()
    _effects(session, actor, verification, resident, body, on)
    events.emit(session, OutcomeRecorded(verification, resident))
    return verification, True


def _check_visit(session: Session, actor: Actor, resident: Resident, visit_id: str) -> Visit:
    visit = session.execute(select(Visit).where(col(Visit.id) == visit_id,
                                                actor.area_filter(col(Visit.area_path)))).scalar_one_or_none()
    if visit is None:
        raise NotFound({"field": "visit_id"})
    if visit.resident_id != resident.id:
        raise VisitOfOtherResident()
    return visit


def checkin_flags(visit: Visit) -> str:
    """The visit's check-in flags as the verification keeps them: sorted codes, JSON text ("[]": none)."""
    return orjson.dumps(sorted(orjson.loads(visit.flags or "[]"))).decode()


def _check_proposal(verification: Verification, outcome: Outcome) -> None:
    """Partner data is evidence only as a worker's confirmation of a partner's pending proposal of this outcome."""
    if verification.proposed_outcome is None:
        raise EvidenceMissing({"evidence": "partner", "proposal": "none"})
    if verification.proposed_outcome != outcome.value:
        raise EvidenceMissing({"evidence": "partner", "proposal": "other_outcome"})


def _effects(session: Session, actor: Actor, verification: Verification, resident: Resident,
             body: VerificationRecord, day: date) -> None:
    outcome = body.outcome
    if outcome == Outcome.moved_within_city:
        assert body.new_dwelling_id is not None  # the schema requires it
        dwelling = register.get_dwelling_in_scope(session, actor, body.new_dwelling_id)
        if dwelling.id == resident.dwelling_id:
            raise SameDwelling()
        register.move_to(session, resident, dwelling, day, "worker")
        register.touch(resident)
        session.add(resident)
        session.flush()
        hand_over(session, resident, verification.month)
    elif outcome in ENDS_RESIDENCE:
        register.end_residence(session, resident, day, ENDS_RESIDENCE[outcome])
    elif outcome == Outcome.not_found:
        before = session.execute(select(Verification).where(
            col(Verification.resident_id) == resident.id, col(Verification.month) == shift(verification.month, -1),
            col(Verification.outcome) == Outcome.not_found.value)).scalars().first()
        verification.not_found_streak = (before.not_found_streak if before else 0) + 1
        session.add(verification)
        session.flush()
        if verification.not_found_streak >= get_settings().verification_not_found_months:
            register.end_residence(session, resident, day, WHEREABOUTS_UNKNOWN)


def period_for(session: Session, community_id: str, month: str) -> Period:
    """The community's period of `month`, opened now if the month was not opened there yet."""
    period = session.execute(select(Period).where(col(Period.community_id) == community_id,
                                                  col(Period.month) == month)).scalar_one_or_none()
    if period is None:
        place = session.get_one(Division, community_id)
        period = Period(month=month, community_id=community_id, area_path=place.path,
                        district_code=place.district_code or "")
        session.add(period)
        session.flush()
    return period


def hand_over(session: Session, resident: Resident, month: str) -> None:
    """A pending verification of `month` in the resident's (new) community, unless one is there already."""
    period = period_for(session, resident.community_id, month)
    if period.state != PeriodState.open.value:
        return
    exists = session.execute(select(col(Verification.id)).where(
        col(Verification.period_id) == period.id, col(Verification.resident_id) == resident.id)).first()
    if exists is None:
        session.add(Verification(period_id=period.id, month=month, resident_id=resident.id,
                                 community_id=resident.community_id, dwelling_id=resident.dwelling_id,
                                 area_path=resident.area_path, district_code=resident.district_code))
        session.flush()


def on_resident_moved(session: Session, event: ResidentMoved) -> None:
    """Pending verifications follow the resident (a move through the register, not a verification): into the
    receiving community's period of the same month."""
    resident = event.resident
    pending = session.execute(select(Verification).join(Period, col(Period.id) == col(Verification.period_id)).where(
        col(Verification.resident_id) == resident.id, col(Verification.outcome).is_(None),
        col(Period.state) == PeriodState.open.value)).scalars().all()
    for verification in pending:
        if verification.community_id == resident.community_id:
            verification.dwelling_id, verification.area_path = resident.dwelling_id, resident.area_path
        else:
            target = period_for(session, resident.community_id, verification.month)
            verification.period_id, verification.community_id = target.id, resident.community_id
            verification.dwelling_id, verification.area_path = resident.dwelling_id, resident.area_path
            verification.district_code = resident.district_code
        verification.version += 1
        verification.updated_at = utcnow()
        session.add(verification)
    session.flush()


def on_resident_registered(session: Session, event: ResidentRegistered) -> None:
    """An arrival registered while the month is open gets its verification at once."""
    month = month_of(city_today())
    period = session.execute(select(Period).where(col(Period.community_id) == event.resident.community_id,
                                                  col(Period.month) == month)).scalar_one_or_none()
    if period is not None and period.state == PeriodState.open.value:
        hand_over(session, event.resident, month)


def _drop_pending(session: Session, resident_id: str) -> None:
    pending = session.execute(select(Verification).join(Period, col(Period.id) == col(Verification.period_id)).where(
        col(Verification.resident_id) == resident_id, col(Verification.outcome).is_(None),
        col(Period.state) == PeriodState.open.value)).scalars().all()
    for verification in pending:
        session.delete(verification)
    session.flush()


def on_resident_merged(session: Session, event: ResidentMerged) -> None:
    """A record folded into another stands for nobody: its pending verifications of open months go (the
    survivor has its own); recorded ones stay as history."""
    _drop_pending(session, event.merged.id)


def on_resident_left(session: Session, event: ResidentLeft) -> None:
    """Someone who left the register (its leave route, or an outcome that ended the residence) is no longer
    verified: their pending verifications of open months go; recorded ones stay."""
    _drop_pending(session, event.resident.id)


def subscribe() -> None:
    events.subscribe(ResidentMoved, on_resident_moved)
    events.subscribe(ResidentRegistered, on_resident_registered)
    events.subscribe(ResidentMerged, on_resident_merged)
    events.subscribe(ResidentLeft, on_resident_left)
