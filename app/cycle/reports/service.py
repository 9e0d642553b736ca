"""The monthly report (月报告) of one community: every figure computed from the records with SQL aggregates, one
statement per group of figures, never one per resident (docs/reports.md has the definitions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.catalog.models import ServiceItem
from app.core.actor import Actor
from app.core.db import UnitOfWork
from app.core.errors import NotFound
from app.core.queries import starts_with
from app.core.types import city_today, utcnow
from app.cycle.assistance.models import OPEN_STATES, AssistanceRequest
from app.cycle.assistance.models import State as AssistanceState
from app.cycle.models import Task, TaskKind, TaskState
from app.cycle.periods import month_bounds, month_of
from app.cycle.reports.errors import ReportMonthFormat, ReportMonthFuture
from app.cycle.reports.schemas import (
    FpChecks,
    KeyPersons,
    Movement,
    Overdue,
    ReportOut,
    ServiceLine,
    Stock,
    VerificationFigures,
    VisitFigures,
)
from app.cycle.verification.models import Outcome, Period, Verification
from app.people.models import FpDocStatus, FpDocument, Resident, Sex, Tenancy
from app.places.models import Division, Level
from app.visits.models import ServiceDelivery, Visit, VisitMode, VisitOutcome
from app.visits.service import not_superseded

MONTH_RE = re.compile(r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")


def today() -> date:
    """The city date the report is computed on (one place, so a test can set it)."""
    return city_today()


@dataclass(frozen=True)
class Window:
    """The month and the day its stock is counted on."""

    month: str
    first: date
    last: date
    start: datetime  # UTC instant the month starts
    end: datetime  # UTC instant the next month starts
    as_of: date  # the last day, or today for the current month
    complete: bool  # the month is over

    @property
    def cut(self) -> date:
        """Overdue means due before this day: the first of the next month, or today while the month runs."""
        return self.last + timedelta(days=1) if self.complete else self.as_of


def window(raw: str) -> Window:
    if not MONTH_RE.match(raw):
        raise ReportMonthFormat()
    now = today()
    current = month_of(now)
    if raw > current:
        raise ReportMonthFuture()
    start, end = month_bounds(raw)
    first = date(int(raw[:4]), int(raw[5:7]), 1)
    last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    complete = raw < current
    return Window(raw, first, last, start, end, last if complete else now, complete)


def get_community(session: Session, actor: Actor, community_id: str) -> Division:
    """A community in the caller's area; anything else (unknown, another level, out of scope) is 404."""
    found = session.execute(select(Division).where(
        col(Division.id) == community_id, col(Division.level) == Level.community.value,
        actor.area_filter(col(Division.path), col(Division.district_code)))).scalar_one_or_none()
    if found is None:
        raise NotFound()
    return found


def inside(community: Division, area: Any, district: Any) -> ColumnElement[bool]:
    """Rows of a scoped table that lie in the community (its grids included)."""
    return and_(district == community.district_code, starts_with(area, community.path))


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February → 28 February)."""
    year = day.year - years
    try:
        return day.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def lives_there(t: Any, community: Division, on: date) -> ColumnElement[bool]:
    return and_(inside(community, t.area_path, t.district_code), t.move_in <= on,
                or_(t.move_out.is_(None), t.move_out > on))


def visited_in(w: Window, resident_id: Any) -> ColumnElement[bool]:
    """A visit that met the resident during the month (the key-person monthly task's rule), not superseded."""
    return exists().where(col(Visit.resident_id) == resident_id, col(Visit.outcome) == VisitOutcome.met.value,
                          col(Visit.started_at) >= w.start, col(Visit.started_at) < w.end,
                          not_superseded(col(Visit.id)))


def stock_and_key_persons(session: Session, community: Division, w: Window) -> tuple[Stock, KeyPersons]:
    t: Any = aliased(Tenancy)
    rid = col(Resident.id)
    oldest, youngest = years_before(w.as_of, 50), years_before(w.as_of, 15)
    female = col(Resident.sex) == Sex.female.value
    key = col(Resident.key_person).is_(True)

    def distinct(condition: ColumnElement[bool]) -> Any:
        return func.count(func.distinct(case((condition, rid))))

    row = session.execute(
        select(func.count(func.distinct(rid)), distinct(col(Resident.sex) == Sex.male.value), distinct(female),
               distinct(and_(female, col(Resident.birth_date) > oldest, col(Resident.birth_date) <= youngest)),
               distinct(key), distinct(and_(key, visited_in(w, rid))))
        .select_from(t).join(Resident, rid == t.resident_id)
        .where(lives_there(t, community, w.as_of), col(Resident.merged_into_id).is_(None))
    ).one()
    total, male, women, fertile, keys, visited = (int(v or 0) for v in row)
    return (Stock(total=total, male=male, female=women, women_15_49=fertile),
            KeyPersons(registered=keys, visited=visited, share=round(visited / keys, 4) if keys else None))


def movement(session: Session, community: Division, w: Window) -> Movement:
    """Arrivals: a tenancy in the community starting this month with none there the day before. Departures: one
    ending this month with none there on that day. A move between two dwellings of the community is neither."""
    t: Any = aliased(Tenancy)
    other: Any = aliased(Tenancy)
    lasted = or_(t.move_out.is_(None), t.move_out > t.move_in)
    same_person = and_(other.resident_id == t.resident_id, other.id != t.id,
                       inside(community, other.area_path, other.district_code))
    before = exists().where(same_person, other.move_in < t.move_in,
                            or_(other.move_out.is_(None), other.move_out >= t.move_in))
    after = exists().where(same_person, other.move_in <= t.move_out,
                           or_(other.move_out.is_(None), other.move_out > t.move_out))
    here = inside(community, t.area_path, t.district_code)
    arrivals = select(func.count(func.distinct(t.resident_id))).where(
        here, lasted, t.move_in >= w.first, t.move_in <= w.last, ~before).scalar_subquery()
    departures = select(func.count(func.distinct(t.resident_id))).where(
        here, lasted, t.move_out >= w.first, t.move_out <= w.last, ~after).scalar_subquery()
    came, went = session.execute(select(arrivals, departures)).one()
    return Movement(arrivals=int(came or 0), departures=int(went or 0))


def verifications(session: Session, community: Division, w: Window) -> VerificationFigures:
    period = session.execute(select(Period).where(col(Period.community_id) == community.id,
                                                  col(Period.month) == w.month)).scalar_one_or_none()
    by: dict[str, int] = {}
    if period is not None:
        for outcome, n in session.execute(
                select(col(Verification.outcome), func.count()).where(col(Verification.period_id) == period.id)
                .group_by(col(Verification.outcome))).all():
            by[outcome or "pending"] = int(n)
    pending = by.pop("pending", 0)
    verified = sum(by.values())
    total = pending + verified
    return VerificationFigures(
        period_id=period.id if period else None, period_state=period.state if period else None, total=total,
        pending=pending, verified=verified, coverage=round(verified / total, 4) if total else None,
        by_outcome={o.value: by.get(o.value, 0) for o in Outcome})


def visits(session: Session, community: Division, w: Window) -> VisitFigures:
    met = func.sum(case((col(Visit.outcome) == VisitOutcome.met.value, 1), else_=0))
    rows = session.execute(
        select(col(Visit.mode), func.count(), met).where(
            inside(community, col(Visit.area_path), col(Visit.district_code)),
            col(Visit.started_at) >= w.start, col(Visit.started_at) < w.end, not_superseded(col(Visit.id)))
        .group_by(col(Visit.mode))).all()
    found = {mode: (int(n), int(m or 0)) for mode, n, m in rows}
    person, phone = found.get(VisitMode.in_person.value, (0, 0)), found.get(VisitMode.phone.value, (0, 0))
    return VisitFigures(in_person=person[0], phone=phone[0], in_person_met=person[1], phone_met=phone[1])


def fp_checks(session: Session, community: Division, w: Window) -> FpChecks:
    """婚育证明 whose latest check (`checked_at`) falls in the month, of residents living in the community at some
    time during the month. Driven from the community's tenancies (by resident), not from a scan of the city's
    documents by date."""
    t: Any = aliased(Tenancy)
    rows = session.execute(
        select(col(FpDocument.status), func.count(func.distinct(col(FpDocument.id))))
        .select_from(t).join(FpDocument, col(FpDocument.resident_id) == t.resident_id)
        .where(inside(community, t.area_path, t.district_code), t.move_in <= w.last,
               or_(t.move_out.is_(None), t.move_out > w.first),
               col(FpDocument.checked_at) >= w.start, col(FpDocument.checked_at) < w.end)
        .group_by(col(FpDocument.status))).all()
    by = {status: int(n) for status, n in rows}
    return FpChecks(checked=sum(by.values()), by_status={s.value: by.get(s.value, 0) for s in FpDocStatus})


def services(session: Session, community: Division, w: Window) -> list[ServiceLine]:
    """Every item in force during the month (zeros included) and any other item delivered in it."""
    done = (select(col(ServiceDelivery.item_id).label("item_id"), func.count().label("n"),
                   func.sum(col(ServiceDelivery.quantity)).label("q"))
            .where(inside(community, col(ServiceDelivery.area_path), col(ServiceDelivery.district_code)),
                   col(ServiceDelivery.delivered_on) >= w.first, col(ServiceDelivery.delivered_on) <= w.last,
                   not_superseded(col(ServiceDelivery.visit_id)))
            .group_by(col(ServiceDelivery.item_id)).subquery())
    in_force = and_(col(ServiceItem.effective_from) <= w.last,
                    or_(col(ServiceItem.effective_to).is_(None), col(ServiceItem.effective_to) >= w.first))
    rows = session.execute(
        select(ServiceItem, done.c.n, done.c.q).outerjoin(done, done.c.item_id == col(ServiceItem.id))
        .where(or_(done.c.n.is_not(None), in_force))
        .order_by(col(ServiceItem.sort_order), col(ServiceItem.code))).all()
    return [ServiceLine(item_id=item.id, code=item.code, name_zh=item.name_zh, name_en=item.name_en, unit=item.unit,
                        deliveries=int(n or 0), quantity=int(q or 0)) for item, n, q in rows]


def overdue(session: Session, community: Division, w: Window) -> Overdue:
    """Open past their due day when the month ended (for the current month: now). A task or request settled
    after the month's end still counts for that month."""
    state, due = col(Task.state), col(Task.due_date)
    if w.complete:
        still_open = or_(state == TaskState.open.value,
                         and_(state == TaskState.done.value, col(Task.completed_at) >= w.end),
                         and_(state == TaskState.cancelled.value, col(Task.updated_at) >= w.end))
        task_cond = and_(due < w.cut, still_open)
    else:
        task_cond = and_(due < w.cut, state == TaskState.open.value)
    by_kind = {kind: int(n) for kind, n in session.execute(
        select(col(Task.kind), func.count()).where(inside(community, col(Task.area_path), col(Task.district_code)),
                                                    task_cond).group_by(col(Task.kind))).all()}
    a_state, a_due = col(AssistanceRequest.state), col(AssistanceRequest.due_on)
    open_then: ColumnElement[bool] = a_state.in_(OPEN_STATES)
    if w.complete:
        open_then = or_(open_then, and_(a_state == AssistanceState.answered.value,
                                        col(AssistanceRequest.answered_on) >= w.cut))
    requests = session.execute(select(func.count()).where(
        inside(community, col(AssistanceRequest.area_path), col(AssistanceRequest.district_code)),
        a_due < w.cut, open_then)).scalar_one()
    return Overdue(tasks=sum(by_kind.values()), tasks_by_kind={k.value: by_kind.get(k.value, 0) for k in TaskKind},
                   assistance_requests=int(requests))


def report(session: Session, actor: Actor, community_id: str, month: str) -> tuple[Division, ReportOut]:
    w = window(month)  # the input first: a bad month is 422 wherever the community lies
    community = get_community(session, actor, community_id)
    uow = UnitOfWork.of(session)
    if uow is not None:
        uow.snapshot()  # the figures read one state of the records, so they agree with each other
    return community, build(session, community, w)


def build(session: Session, community: Division, w: Window) -> ReportOut:
    stock, key_persons = stock_and_key_persons(session, community, w)
    return ReportOut(
        community_id=community.id, community_code=community.code, community_name=community.name, month=w.month,
        as_of=w.as_of, complete=w.complete, generated_at=utcnow(), stock=stock,
        movement=movement(session, community, w), verifications=verifications(session, community, w),
        visits=visits(session, community, w), key_persons=key_persons, fp_documents=fp_checks(session, community, w),
        services=services(session, community, w), overdue=overdue(session, community, w))
