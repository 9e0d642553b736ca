"""The figures behind the pictures (draw.py), read within the supervisor's scope.

- A worker's day: their visits in scope that city day, in time order, each with its check-in, its dwelling's
  position and the quality rules that found something on it (app/audit/quality). The map holds precise
  locations: reading it is recorded (`audit.picture.worker_day`).
- A community's coverage in a month, by grid: registered residents, those visited in the month, tasks
  overdue now, and verified (the month's verifications recorded there; "n/a" where the month was not opened).
- A division's trend over 12 months: visits in person and by phone, and those with check-in flags (the trend
  counts the flags stored with each visit; the full scoring of twelve months of a district is left to the
  quality view, one period at a time).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

from app.audit.deps import Period
from app.audit.errors import MonthInvalid
from app.audit.pictures.draw import DayVisit, GridCoverage, MonthFigures
from app.audit.quality import service as quality
from app.auth.models import User
from app.core.actor import Actor
from app.core.errors import Unprocessable
from app.core.queries import starts_with
from app.core.types import city_today
from app.cycle.models import Task, TaskState
from app.cycle.periods import month_bounds, month_of
from app.cycle.verification.models import Period as CyclePeriod
from app.cycle.verification.models import Verification
from app.ledger import audit
from app.people.models import Resident, ResidentStatus
from app.places import service as places
from app.places.models import Division, Dwelling
from app.visits import service as visits
from app.visits.models import Visit


class NotACommunity(Unprocessable):
    code = "not_a_community"
    en = "Coverage is drawn for a community: give a community's id."
    zh = "覆盖图按社区绘制，请提供社区编号。"


def worker_day(session: Session, actor: Actor, worker_id: str, day: date) -> tuple[str, list[DayVisit]]:
    start, end = Period(day, day).bounds
    rows = session.execute(
        select(col(Visit.id), col(Visit.started_at), col(Visit.mode), col(Visit.lat), col(Visit.lng),
               col(Visit.dwelling_id), col(Dwelling.lat), col(Dwelling.lng), col(Visit.area_path))
        .outerjoin(Dwelling, col(Dwelling.id) == col(Visit.dwelling_id))
        .where(visits.in_area(actor), col(Visit.worker_id) == worker_id, col(Visit.started_at) >= start,
               col(Visit.started_at) < end)
        .order_by(col(Visit.started_at), col(Visit.id))
    ).all()
    found = {i.id: [r.rule for r in i.reasons] for i in quality.scored_visits(
        session, actor, Period(day, day), quality.Filters(worker_id=worker_id))}
    day_visits = [DayVisit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], found.get(r[0], [])) for r in rows]
    name = worker_id
    if rows:  # only a worker whose visits the caller sees is named
        name = session.execute(select(col(User.username)).where(col(User.id) == worker_id)).scalar() or worker_id
    audit.record(session, "audit.picture.worker_day", target_type="users", target_id=worker_id,
                 fields=["checkin", "dwelling_position"], purpose="supervision",
                 area_path=rows[0][8] if rows else None, detail={"day": day.isoformat(), "visits": len(rows)})
    return name, day_visits


def parse_month(month: str | None) -> str:
    if month is None:
        return month_of(city_today())
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isascii() or \
            not (month[:4] + month[5:]).isdigit() or not 1 <= int(month[5:]) <= 12:
        raise MonthInvalid()
    return month


def coverage(session: Session, actor: Actor, community_id: str, month: str) -> tuple[Division, list[GridCoverage]]:
    community = places.get_division(session, actor, community_id)
    if community.level != "community":
        raise NotACommunity()
    grids = session.execute(select(Division).where(col(Division.parent_id) == community.id,
                                                   col(Division.level) == "grid").order_by(col(Division.code))
                            ).scalars().all()
    buckets = [GridCoverage(g.id, g.code, g.name, 0, 0, 0) for g in grids]
    rest = GridCoverage(None, "-", "(no grid)", 0, 0, 0)

    def bucket(path: str) -> GridCoverage:
        for grid, b in zip(grids, buckets, strict=True):
            if path.startswith(grid.path):
                return b
        return rest

    residents = dict(session.execute(select(col(Resident.id), col(Resident.area_path)).where(
        col(Resident.community_id) == community.id, col(Resident.status) == ResidentStatus.registered.value,
        col(Resident.merged_into_id).is_(None), actor.area_filter(col(Resident.area_path)))).all())
    for path in residents.values():
        bucket(path).registered += 1
    start, end = month_bounds(month)
    seen = set(session.execute(select(col(Visit.resident_id)).distinct().where(
        col(Visit.community_id) == community.id, col(Visit.started_at) >= start, col(Visit.started_at) < end,
        visits.in_area(actor))).scalars())
    for resident_id in seen & set(residents):
        bucket(residents[resident_id]).visited += 1
    for (path,) in session.execute(select(col(Task.area_path)).where(
            col(Task.community_id) == community.id, col(Task.state) == TaskState.open.value,
            col(Task.due_date) < city_today(), actor.area_filter(col(Task.area_path)))):
        bucket(path).overdue += 1
    verified = verified_by_grid(session, community, month)
    if verified is not None:
        for b in [*buckets, rest]:
            b.verified = verified.get(b.id or "", 0)
    return community, buckets + ([rest] if rest.registered or rest.overdue else [])


def months_back(count: int, last: str | None = None) -> list[str]:
    year, month = (int(last[:4]), int(last[5:])) if last else (city_today().year, city_today().month)
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def trend(session: Session, actor: Actor, division_id: str, months: int) -> tuple[Division, list[MonthFigures]]:
    division = places.get_division(session, actor, division_id)
    out = []
    for month in months_back(months):
        start, end = month_bounds(month)
        conditions = [visits.in_area(actor), starts_with(col(Visit.area_path), division.path),
                      col(Visit.started_at) >= start, col(Visit.started_at) < end]
        if division.district_code:
            conditions.append(col(Visit.district_code) == division.district_code)
        total, in_person, flagged = session.execute(select(
            func.count(), func.coalesce(func.sum(case((col(Visit.mode) == "in_person", 1), else_=0)), 0),
            func.coalesce(func.sum(case((col(Visit.flags) != "[]", 1), else_=0)), 0)).where(and_(*conditions))).one()
        out.append(MonthFigures(month, int(in_person), int(total) - int(in_person), int(flagged)))
    return division, out


def verified_by_grid(session: Session, community: Division, month: str) -> dict[str, int] | None:
    """Verifications of the month recorded in the community, by grid id ("" for those in no grid); None when the
    month's verification was not opened there (the picture says "n/a")."""
    opened = session.execute(select(col(CyclePeriod.id)).where(col(CyclePeriod.community_id) == community.id,
                                                               col(CyclePeriod.month) == month)).first()
    if opened is None:
        return None
    grids = session.execute(select(col(Division.id), col(Division.path)).where(
        col(Division.parent_id) == community.id, col(Division.level) == "grid")).all()
    counts: dict[str, int] = {}
    for path, n in session.execute(select(col(Verification.area_path), func.count()).where(
            col(Verification.community_id) == community.id, col(Verification.month) == month,
            col(Verification.outcome).is_not(None)).group_by(col(Verification.area_path))):
        grid = next((g for g, p in grids if path.startswith(p)), "")
        counts[grid] = counts.get(grid, 0) + int(n)
    return counts
