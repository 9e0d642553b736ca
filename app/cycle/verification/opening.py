"""Opening a month (月核查): one period per community in scope and one pending verification per registered
resident, written in bulk (`app.core.bulk.BulkWriter`). Idempotent: communities whose period exists are
counted as existing, and their open periods get the verifications of residents registered since (so it is
safe to run daily). Opening also ages the month that leaves the phones' window out of it (docs/cycle.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.bulk import BulkWriter, table_of
from app.core.config import get_settings
from app.core.types import city_today, new_id, utcnow
from app.cycle.verification.errors import PeriodMonthOutOfRange
from app.cycle.verification.models import Period, PeriodState, Verification
from app.ledger import audit, changes
from app.people.models import Resident, ResidentStatus
from app.places.models import Division, Level

COLUMNS = ("id", "period_id", "month", "resident_id", "community_id", "dwelling_id", "area_path", "district_code",
           "not_found_streak", "created_at", "updated_at", "version")


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
                     stamp, stamp, 1))
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
