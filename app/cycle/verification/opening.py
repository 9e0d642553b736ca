"""Opening a month (月核查): one period per community in scope and one pending verification per registered
resident, written in bulk (`app.core.bulk.BulkWriter`). Idempotent: communities whose period exists are
counted as existing, and their open periods get the verifications of residents registered since (so it is
safe to run daily). Opening also ages the month that leaves the phones' window out of it (docs/cycle.md),
and the visits that leave the phones' visit window (SYNC_VISIT_MONTHS, docs/sync.md "The sync window").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.bulk import BulkWriter, table_of
from app.core.config import get_settings
from app.core.types import CITY_TZ, city_today, new_id, utcnow
from app.cycle.verification.errors import PeriodMonthOutOfRange
from app.cycle.verification.models import Period, PeriodState, Verification
from app.ledger import audit, changes
from app.ledger.models import SyncLog, SyncOp
from app.people.models import Resident, ResidentStatus
from app.places.models import Division, Level
from app.visits.models import ServiceDelivery, Visit

COLUMNS = ("id", "period_id", "month", "resident_id", "community_id", "dwelling_id", "area_path", "district_code",
           "not_found_streak", "checkin_flags", "created_at", "updated_at", "version")


@dataclass
class OpenCounts:
    periods_created: int = 0
    periods_existing: int = 0
    verifications_created: int = 0


def month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_at(index: int) -> str:
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}"


def shift(month: str, months: int) -> str:
    return month_at(month_index(month) + months)


def check_month(month: str, today: date) -> None:
    current = today.year * 12 + today.month - 1
    if not current - 1 <= month_index(month) <= current + 1:
        raise PeriodMonthOutOfRange()


def open_month(session: Session, month: str, actor: Actor | None, district_code: str | None = None,
               *, today: date | None = None) -> OpenCounts:
    check_month(month, today or city_today())
    communities = select(Division).where(col(Division.level) == Level.community.value, col(Division.active))
    if district_code is not None:
        communities = communities.where(col(Division.district_code) == district_code)
    if actor is not None:
        communities = communities.where(actor.area_filter(col(Division.path), col(Division.district_code)))
    places = session.execute(communities.order_by(col(Division.path))).scalars().all()
    existing = {p.community_id: p for p in session.execute(select(Period).where(
        col(Period.month) == month, col(Period.community_id).in_([c.id for c in places]))).scalars()}
    counts = OpenCounts(periods_existing=len(existing))
    user = actor.user_id if actor is not None else None
    for place in places:
        if place.id not in existing:
            period = Period(month=month, community_id=place.id, area_path=place.path,
                            district_code=place.district_code or "", opened_by=user)
            session.add(period)
            existing[place.id] = period
            counts.periods_created += 1
    session.flush()
    open_periods = {c: p for c, p in existing.items() if p.state == PeriodState.open.value}
    counts.verifications_created = _pending(session, month, open_periods)
    _age_out(session, month, district_code)
    age_out_visits(session, today or city_today(), district_code)
    return counts


def _pending(session: Session, month: str, periods: dict[str, Period]) -> int:
    """Insert the missing verifications of `periods` (community id → open period) in bulk."""
    if not periods:
        return 0
    stamp = utcnow()
    have = select(col(Verification.resident_id)).where(
        col(Verification.month) == month, col(Verification.period_id).in_([p.id for p in periods.values()]))
    people = session.execute(select(
        col(Resident.id), col(Resident.community_id), col(Resident.dwelling_id), col(Resident.area_path),
        col(Resident.district_code)).where(
        col(Resident.status) == ResidentStatus.registered.value, col(Resident.merged_into_id).is_(None),
        col(Resident.anonymised_at).is_(None), col(Resident.community_id).in_(list(periods)),
        col(Resident.id).not_in(have)).order_by(col(Resident.id))).all()
    rows: list[tuple[Any, ...]] = []
    per_period: dict[str, int] = {}
    for resident_id, community_id, dwelling_id, area_path, district in people:
        period = periods[community_id]
        rows.append((new_id(), period.id, month, resident_id, community_id, dwelling_id, area_path, district, 0,
                     "[]", stamp, stamp, 1))
        per_period[period.id] = per_period.get(period.id, 0) + 1
    if not rows:
        return 0
    table = table_of(Verification)
    BulkWriter(session).write(table, COLUMNS, rows)
    changes.mark_rows(session, table, and_(table.c.month == month, table.c.created_at == stamp))
    by_id = {p.id: p for p in periods.values()}
    for period_id, count in per_period.items():
        # A bulk insert bypasses the ORM's audit: one event per period, with the count (no personal data).
        audit.record(session, "verifications.create", target_type="periods", target_id=period_id,
                     fields=list(COLUMNS), detail={"count": count}, area_path=by_id[period_id].area_path)
    return len(rows)


def _age_out(session: Session, month: str, district_code: str | None) -> None:
    """The month that leaves the phones' window (SYNC_WINDOW_MONTHS) is logged once more, so the next pull
    finds its periods and verifications outside the window and sends them as deletions."""
    gone = shift(month, -get_settings().sync_window_months)
    for model in (Verification, Period):
        table = table_of(model)
        where = table.c.month == gone
        if district_code is not None:
            where = and_(where, table.c.district_code == district_code)
        changes.mark_rows(session, table, where)


AGED = "sync_window"  # the `fields` of the log rows that age a visit out of the phones' window


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def visits_since(today: date) -> date:
    """The first day (city time) of the phones' visit window: SYNC_VISIT_MONTHS months, the current one included."""
    return first_day(shift(f"{today.year:04d}-{today.month:02d}", 1 - get_settings().sync_visit_months))


def city_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CITY_TZ)


def age_out_visits(session: Session, today: date, district_code: str | None) -> None:
    """Log, once, the visits and deliveries of the two months before the visit window (`today`: the clock, not
    the month opened), so the next incremental pull finds them outside the window and sends them as
    deletions. Idempotent per district and month: one whose first visit found already carries the mark is
    skipped (a visit pushed late into it is logged by its push, and its pull deletes it)."""
    start = visits_since(today).isoformat()[:7]
    districts = [district_code] if district_code is not None else sorted(session.execute(
        select(col(Division.district_code)).where(col(Division.district_code).is_not(None)).distinct()).scalars())
    visits, deliveries = table_of(Visit), table_of(ServiceDelivery)
    for district in districts:
        for back in (1, 2):
            lo, hi = first_day(shift(start, -back)), first_day(shift(start, 1 - back))
            in_month = and_(visits.c.district_code == district, visits.c.started_at >= city_midnight(lo),
                            visits.c.started_at < city_midnight(hi))
            sample = session.execute(select(visits.c.id).where(in_month).limit(1)).scalar()
            if sample is None or _aged(session, str(sample)):
                continue
            changes.mark_rows(session, visits, in_month, op=SyncOp.exit, fields=[AGED])
            changes.mark_rows(session, deliveries, and_(
                deliveries.c.district_code == district, deliveries.c.delivered_on >= lo,
                deliveries.c.delivered_on < hi), op=SyncOp.exit, fields=[AGED])


def _aged(session: Session, visit_id: str) -> bool:
    log = table_of(SyncLog)
    return session.execute(select(log.c.id).where(
        log.c.table_name == "visits", log.c.record_id == visit_id, log.c.op == SyncOp.exit.value,
        log.c.fields == AGED).limit(1)).first() is not None
