"""The monthly report (月报告): every figure computed from the records with SQL aggregates grouped by community, one
statement per group of figures, never one per resident or per community (docs/reports.md has the definitions).
One code path serves a community's report (an area of one community) and the roll-ups of a street, district or
city (every community under it, app/cycle/reports/rollup.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
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


@dataclass(frozen=True)
class Area:
    """Where the figures are computed: a community, or a street, district or city with every community under it.
    `lengths`: the lengths of its communities' paths (one, as codes have fixed lengths), so a row is matched to
    its community by equality on its path's prefix (a hash join), not by a LIKE against every community."""

    path: str
    district_code: str | None
    lengths: tuple[int, ...]


def inside(area: Division | Area, path: Any, district: Any) -> ColumnElement[bool]:
    """Rows of a scoped table that lie in the area (a community with its grids, or a street, district or city):
    the prefix on the indexed path, and the district when the area lies in one."""
    prefix = starts_with(path, area.path)
    return prefix if area.district_code is None else and_(district == area.district_code, prefix)


def units(area: Division | Area) -> Any:
    """The communities of the area as a derived table (`id`, `path`, `district_code`) to group the figures by."""
    return select(col(Division.id).label("id"), col(Division.path).label("path"),
                  col(Division.district_code).label("district_code")).where(
        col(Division.level) == Level.community.value, inside(area, col(Division.path), col(Division.district_code))
    ).subquery("unit")


def in_unit(area: Area, u: Any, path: Any, district: Any) -> ColumnElement[bool]:
    """The row lies in the community `u` (its grids included): its path starts with the community's."""
    return and_(district == u.c.district_code, or_(false(), *(func.substr(path, 1, n) == u.c.path
                                                              for n in area.lengths)))


def area_of(session: Session, division: Division) -> Area:
    lengths = session.execute(select(func.length(col(Division.path))).distinct().where(
        col(Division.level) == Level.community.value,
        inside(division, col(Division.path), col(Division.district_code)))).scalars()
    return Area(division.path, division.district_code, tuple(sorted(int(n) for n in lengths)))


def communities(session: Session, area: Division) -> list[Division]:
    """The communities of the area, in path order."""
    return list(session.execute(select(Division).where(
        col(Division.level) == Level.community.value, inside(area, col(Division.path), col(Division.district_code)))
        .order_by(col(Division.path))).scalars())


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February → 28 February)."""
    year = day.year - years
    try:
        return day.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def visited_in(w: Window, resident_id: Any) -> ColumnElement[bool]:
    """A visit that met the resident during the month (the key-person monthly task's rule), not superseded."""
    return exists().where(col(Visit.resident_id) == resident_id, col(Visit.outcome) == VisitOutcome.met.value,
                          col(Visit.started_at) >= w.start, col(Visit.started_at) < w.end,
                          not_superseded(col(Visit.id)))


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def stock_and_key_persons(session: Session, area: Area, w: Window) -> dict[str, tuple[Stock, KeyPersons]]:
    t: Any = aliased(Tenancy)
    u = units(area)
    rid = col(Resident.id)
    oldest, youngest = years_before(w.as_of, 50), years_before(w.as_of, 15)
    female = col(Resident.sex) == Sex.female.value
    key = col(Resident.key_person).is_(True)

    def distinct(condition: ColumnElement[bool]) -> Any:
        return func.count(func.distinct(case((condition, rid))))

    rows = session.execute(
        select(u.c.id, func.count(func.distinct(rid)), distinct(col(Resident.sex) == Sex.male.value),
               distinct(female),
               distinct(and_(female, col(Resident.birth_date) > oldest, col(Resident.birth_date) <= youngest)),
               distinct(key), distinct(and_(key, visited_in(w, rid))))
        .select_from(t).join(Resident, rid == t.resident_id).join(u, in_unit(area, u, t.area_path, t.district_code))
        .where(inside(area, t.area_path, t.district_code), t.move_in <= w.as_of,
               or_(t.move_out.is_(None), t.move_out > w.as_of), col(Resident.merged_into_id).is_(None))
        .group_by(u.c.id)).all()
    out = {}
    for unit_id, *values in rows:
        total, male, women, fertile, keys, visited = (int(v or 0) for v in values)
        out[unit_id] = (Stock(total=total, male=male, female=women, women_15_49=fertile),
                        KeyPersons(registered=keys, visited=visited, share=share(visited, keys)))
    return out


def movement(session: Session, area: Area, w: Window) -> dict[str, Movement]:
    """Arrivals: a tenancy in the community starting this month with none there the day before. Departures: one
    ending this month with none there on that day. A move between two dwellings of the community is neither."""
    t: Any = aliased(Tenancy)
    other: Any = aliased(Tenancy)
    u = units(area)
    lasted = or_(t.move_out.is_(None), t.move_out > t.move_in)
    same_person = and_(other.resident_id == t.resident_id, other.id != t.id,
                       in_unit(area, u, other.area_path, other.district_code))
    before = exists().where(same_person, other.move_in < t.move_in,
                            or_(other.move_out.is_(None), other.move_out >= t.move_in))
    after = exists().where(same_person, other.move_in <= t.move_out,
                           or_(other.move_out.is_(None), other.move_out > t.move_out))

    def count(*conditions: ColumnElement[bool]) -> dict[str, int]:
        return {unit_id: int(n) for unit_id, n in session.execute(
            select(u.c.id, func.count(func.distinct(t.resident_id))).select_from(t)
            .join(u, in_unit(area, u, t.area_path, t.district_code))
            .where(inside(area, t.area_path, t.district_code), lasted, *conditions).group_by(u.c.id)).all()}

    came = count(t.move_in >= w.first, t.move_in <= w.last, ~before)
    went = count(t.move_out >= w.first, t.move_out <= w.last, ~after)
    return {unit_id: Movement(arrivals=came.get(unit_id, 0), departures=went.get(unit_id, 0))
            for unit_id in came.keys() | went.keys()}


def verification_figures(period: Period | None, by: dict[str, int]) -> VerificationFigures:
    """`by`: verifications by outcome, `pending` for those without one."""
    pending = by.get("pending", 0)
    verified = sum(n for outcome, n in by.items() if outcome != "pending")
    total = pending + verified
    return VerificationFigures(
        period_id=period.id if period else None, period_state=period.state if period else None, total=total,
        pending=pending, verified=verified, coverage=share(verified, total),
        by_outcome={o.value: by.get(o.value, 0) for o in Outcome})


def verifications(session: Session, area: Area, w: Window) -> dict[str, VerificationFigures]:
    u = units(area)
    periods = {p.community_id: p for p in session.execute(
        select(Period).join(u, u.c.id == col(Period.community_id)).where(col(Period.month) == w.month)).scalars()}
    by: dict[str, dict[str, int]] = {}
    for community_id, outcome, n in session.execute(
            select(col(Period.community_id), col(Verification.outcome), func.count())
            .join(Verification, col(Verification.period_id) == col(Period.id))
            .join(u, u.c.id == col(Period.community_id)).where(col(Period.month) == w.month)
            .group_by(col(Period.community_id), col(Verification.outcome))).all():
        by.setdefault(community_id, {})[outcome or "pending"] = int(n)
    return {c: verification_figures(p, by.get(c, {})) for c, p in periods.items()}


def visits(session: Session, area: Area, w: Window) -> dict[str, VisitFigures]:
    u = units(area)
    met = func.sum(case((col(Visit.outcome) == VisitOutcome.met.value, 1), else_=0))
    found: dict[str, dict[str, tuple[int, int]]] = {}
    for unit_id, mode, n, m in session.execute(
            select(u.c.id, col(Visit.mode), func.count(), met)
            .select_from(Visit).join(u, in_unit(area, u, col(Visit.area_path), col(Visit.district_code))).where(
                inside(area, col(Visit.area_path), col(Visit.district_code)),
                col(Visit.started_at) >= w.start, col(Visit.started_at) < w.end, not_superseded(col(Visit.id)))
            .group_by(u.c.id, col(Visit.mode))).all():
        found.setdefault(unit_id, {})[mode] = (int(n), int(m or 0))
    out = {}
    for unit_id, by in found.items():
        person, phone = by.get(VisitMode.in_person.value, (0, 0)), by.get(VisitMode.phone.value, (0, 0))
        out[unit_id] = VisitFigures(in_person=person[0], phone=phone[0], in_person_met=person[1], phone_met=phone[1])
    return out


def fp_checks(session: Session, area: Area, w: Window) -> dict[str, FpChecks]:
    """婚育证明 whose latest check (`checked_at`) falls in the month, of residents living in the community at some
    time during the month. Driven from the communities' tenancies (by resident), not from a scan of the city's
    documents by date."""
    t: Any = aliased(Tenancy)
    u = units(area)
    found: dict[str, dict[str, int]] = {}
    for unit_id, status, n in session.execute(
            select(u.c.id, col(FpDocument.status), func.count(func.distinct(col(FpDocument.id))))
            .select_from(t).join(FpDocument, col(FpDocument.resident_id) == t.resident_id)
            .join(u, in_unit(area, u, t.area_path, t.district_code))
            .where(inside(area, t.area_path, t.district_code), t.move_in <= w.last,
                   or_(t.move_out.is_(None), t.move_out > w.first),
                   col(FpDocument.checked_at) >= w.start, col(FpDocument.checked_at) < w.end)
            .group_by(u.c.id, col(FpDocument.status))).all():
        found.setdefault(unit_id, {})[status] = int(n)
    return {unit_id: FpChecks(checked=sum(by.values()), by_status={s.value: by.get(s.value, 0) for s in FpDocStatus})
            for unit_id, by in found.items()}


@dataclass(frozen=True)
class Services:
    """Deliveries per community and item, and the catalogue items a report lists."""

    items: list[ServiceItem]  # in force during the month or delivered in the area, in catalogue order
    in_force: set[str]
    done: dict[str, dict[str, tuple[int, int]]]  # community → item → (deliveries, quantity)

    def lines(self, community_id: str | None) -> list[ServiceLine]:
        """A community's lines (every item in force, zeros included, and any other delivered there); `None`: the
        area's, summed over its communities."""
        def sums(item_id: str) -> tuple[int, int] | None:
            found = [by[item_id] for c, by in self.done.items()
                     if item_id in by and community_id in (None, c)]
            return (sum(n for n, _ in found), sum(q for _, q in found)) if found else None

        out = []
        for item in self.items:
            figures = sums(item.id)
            if figures is not None or item.id in self.in_force:
                n, q = figures or (0, 0)
                out.append(ServiceLine(item_id=item.id, code=item.code, name_zh=item.name_zh, name_en=item.name_en,
                                       unit=item.unit, deliveries=n, quantity=q))
        return out


def services(session: Session, area: Area, w: Window) -> Services:
    u = units(area)
    done: dict[str, dict[str, tuple[int, int]]] = {}
    for unit_id, item_id, n, q in session.execute(
            select(u.c.id, col(ServiceDelivery.item_id), func.count(), func.sum(col(ServiceDelivery.quantity)))
            .select_from(ServiceDelivery)
            .join(u, in_unit(area, u, col(ServiceDelivery.area_path), col(ServiceDelivery.district_code)))
            .where(inside(area, col(ServiceDelivery.area_path), col(ServiceDelivery.district_code)),
                   col(ServiceDelivery.delivered_on) >= w.first, col(ServiceDelivery.delivered_on) <= w.last,
                   not_superseded(col(ServiceDelivery.visit_id)))
            .group_by(u.c.id, col(ServiceDelivery.item_id))).all():
        done.setdefault(unit_id, {})[item_id] = (int(n), int(q or 0))
    in_force = and_(col(ServiceItem.effective_from) <= w.last,
                    or_(col(ServiceItem.effective_to).is_(None), col(ServiceItem.effective_to) >= w.first))
    delivered = {item_id for by in done.values() for item_id in by}
    rows = session.execute(select(ServiceItem, in_force).where(or_(in_force, col(ServiceItem.id).in_(delivered)))
                           .order_by(col(ServiceItem.sort_order), col(ServiceItem.code))).all()
    return Services([item for item, _ in rows], {item.id for item, current in rows if current}, done)


def overdue(session: Session, area: Area, w: Window) -> dict[str, Overdue]:
    """Open past their due day when the month ended (for the current month: now). A task or request settled
    after the month's end still counts for that month."""
    u = units(area)
    state, due = col(Task.state), col(Task.due_date)
    if w.complete:
        still_open = or_(state == TaskState.open.value,
                         and_(state == TaskState.done.value, col(Task.completed_at) >= w.end),
                         and_(state == TaskState.cancelled.value, col(Task.updated_at) >= w.end))
        task_cond = and_(due < w.cut, still_open)
    else:
        task_cond = and_(due < w.cut, state == TaskState.open.value)
    by_kind: dict[str, dict[str, int]] = {}
    for unit_id, kind, n in session.execute(
            select(u.c.id, col(Task.kind), func.count())
            .select_from(Task).join(u, in_unit(area, u, col(Task.area_path), col(Task.district_code)))
            .where(inside(area, col(Task.area_path), col(Task.district_code)), task_cond)
            .group_by(u.c.id, col(Task.kind))).all():
        by_kind.setdefault(unit_id, {})[kind] = int(n)
    a_state, a_due = col(AssistanceRequest.state), col(AssistanceRequest.due_on)
    open_then: ColumnElement[bool] = a_state.in_(OPEN_STATES)
    if w.complete:
        open_then = or_(open_then, and_(a_state == AssistanceState.answered.value,
                                        col(AssistanceRequest.answered_on) >= w.cut))
    requests = {unit_id: int(n) for unit_id, n in session.execute(
        select(u.c.id, func.count())
        .select_from(AssistanceRequest)
        .join(u, in_unit(area, u, col(AssistanceRequest.area_path), col(AssistanceRequest.district_code)))
        .where(inside(area, col(AssistanceRequest.area_path), col(AssistanceRequest.district_code)),
               a_due < w.cut, open_then).group_by(u.c.id)).all()}
    return {unit_id: overdue_figures(by_kind.get(unit_id, {}), requests.get(unit_id, 0))
            for unit_id in by_kind.keys() | requests.keys()}


def overdue_figures(by_kind: dict[str, int], requests: int) -> Overdue:
    return Overdue(tasks=sum(by_kind.values()), tasks_by_kind={k.value: by_kind.get(k.value, 0) for k in TaskKind},
                   assistance_requests=requests)


@dataclass(frozen=True)
class Figures:
    """Every group of figures of an area's communities, each computed once for all of them."""

    stock_keys: dict[str, tuple[Stock, KeyPersons]]
    movement: dict[str, Movement]
    verifications: dict[str, VerificationFigures]
    visits: dict[str, VisitFigures]
    fp: dict[str, FpChecks]
    services: Services
    overdue: dict[str, Overdue]


def figures(session: Session, division: Division, w: Window) -> Figures:
    uow = UnitOfWork.of(session)
    if uow is not None:
        uow.snapshot()  # the figures read one state of the records, so they agree with each other
    area = area_of(session, division)
    return Figures(stock_and_key_persons(session, area, w), movement(session, area, w),
                   verifications(session, area, w), visits(session, area, w), fp_checks(session, area, w),
                   services(session, area, w), overdue(session, area, w))


def community_report(community: Division, w: Window, f: Figures) -> ReportOut:
    """One community's report out of the area's figures (zeros where a group has no row for it)."""
    cid = community.id
    stock, key_persons = f.stock_keys.get(cid, (Stock(total=0, male=0, female=0, women_15_49=0),
                                                KeyPersons(registered=0, visited=0, share=None)))
    return ReportOut(
        community_id=cid, community_code=community.code, community_name=community.name, month=w.month,
        as_of=w.as_of, complete=w.complete, generated_at=utcnow(), stock=stock,
        movement=f.movement.get(cid, Movement(arrivals=0, departures=0)),
        verifications=f.verifications.get(cid, verification_figures(None, {})),
        visits=f.visits.get(cid, VisitFigures(in_person=0, phone=0, in_person_met=0, phone_met=0)),
        key_persons=key_persons,
        fp_documents=f.fp.get(cid, FpChecks(checked=0, by_status={s.value: 0 for s in FpDocStatus})),
        services=f.services.lines(cid), overdue=f.overdue.get(cid, overdue_figures({}, 0)))


def report(session: Session, actor: Actor, community_id: str, month: str) -> tuple[Division, ReportOut]:
    w = window(month)  # the input first: a bad month is 422 wherever the community lies
    community = get_community(session, actor, community_id)
    return community, community_report(community, w, figures(session, community, w))
