"""Reading periods and verifications, a period's progress, and closing a period (docs/cycle.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import NotFound, StaleVersion
from app.core.types import utcnow
from app.cycle.verification.errors import PeriodClosed
from app.cycle.verification.models import Outcome, Period, PeriodState, Verification
from app.cycle.verification.schemas import PeriodOut, PeriodProgress
from app.places.models import Division


class PeriodNotFound(NotFound):
    pass


COMMUNITY_DEPTH = 4  # /city/district/street/community/


def communities_above(prefixes: tuple[str, ...] | None) -> list[str]:
    """The community paths above the scope's grids: a grid worker sees their community's period (its state),
    though the period lies at the community's path, above their own."""
    found = set()
    for prefix in prefixes or ():
        parts = [p for p in prefix.split("/") if p]
        if len(parts) > COMMUNITY_DEPTH:
            found.add("/" + "/".join(parts[:COMMUNITY_DEPTH]) + "/")
    return sorted(found)


def period_visible(actor: Actor) -> ColumnElement[bool]:
    above = communities_above(actor.area_prefixes)
    seen = actor.area_filter(col(Period.area_path), col(Period.district_code))
    return or_(seen, col(Period.area_path).in_(above)) if above else seen


def get_period(session: Session, actor: Actor, period_id: str, *, for_update: bool = False) -> Period:
    stmt = select(Period).where(col(Period.id) == period_id, period_visible(actor))
    if for_update:
        stmt = stmt.with_for_update()
    period = session.execute(stmt).scalar_one_or_none()
    if period is None:
        raise PeriodNotFound()
    return period


def list_periods(actor: Actor, *, month: str | None, community_id: str | None,
                 state: PeriodState | None) -> Select[Any]:
    stmt = select(Period).where(period_visible(actor))
    if month is not None:
        stmt = stmt.where(col(Period.month) == month)
    if community_id is not None:
        stmt = stmt.where(col(Period.community_id) == community_id)
    if state is not None:
        stmt = stmt.where(col(Period.state) == state.value)
    return stmt.order_by(col(Period.month).desc(), col(Period.area_path))


def progress(session: Session, actor: Actor, period_ids: list[str]) -> dict[str, PeriodProgress]:
    """Per period: verifications in the caller's area by outcome (pending = no outcome yet)."""
    found: dict[str, dict[str, int]] = {p: {} for p in period_ids}
    if period_ids:
        rows = session.execute(select(col(Verification.period_id), col(Verification.outcome), func.count()).where(
            col(Verification.period_id).in_(period_ids),
            actor.area_filter(col(Verification.area_path), col(Verification.district_code)),
        ).group_by(col(Verification.period_id), col(Verification.outcome))).all()
        for period_id, outcome, n in rows:
            found[period_id][outcome or "pending"] = int(n)
    return {p: counts_of(c) for p, c in found.items()}


def counts_of(by: dict[str, int]) -> PeriodProgress:
    pending = by.pop("pending", 0)
    verified = sum(by.values())
    total = pending + verified
    return PeriodProgress(total=total, pending=pending, verified=verified,
                  coverage=round(verified / total, 4) if total else 1.0,
                  by_outcome={o.value: by.get(o.value, 0) for o in Outcome})


def periods_out(session: Session, actor: Actor, periods: list[Period]) -> list[PeriodOut]:
    counts = progress(session, actor, [p.id for p in periods])
    return [PeriodOut.model_validate(p).model_copy(update={"progress": counts[p.id]}) for p in periods]


def close_period(session: Session, actor: Actor, period_id: str, version: int) -> Period:
    """open → closed: its verifications can no longer be recorded (pending ones stay pending)."""
    period = get_period(session, actor, period_id, for_update=True)
    if period.version != version:
        raise StaleVersion({"current_version": period.version})
    if period.state != PeriodState.open.value:
        raise PeriodClosed()
    period.state, period.closed_at, period.closed_by = PeriodState.closed.value, utcnow(), actor.user_id
    period.version += 1
    period.updated_at = utcnow()
    session.add(period)
    session.flush()
    return period


def grid_path(session: Session, grid_id: str) -> str:
    """The path of a grid (or any division) to filter by; an unknown id matches nothing."""
    path = session.execute(select(col(Division.path)).where(col(Division.id) == grid_id)).scalar_one_or_none()
    return path or "//no such division/"


def list_verifications(actor: Actor, *, period_id: str | None, month: str | None, community_id: str | None,
                       grid_path: str | None, outcomes: list[Outcome], pending: bool | None,
                       resident_id: str | None, flagged: bool | None = None) -> Select[Any]:
    stmt = select(Verification).where(actor.area_filter(col(Verification.area_path), col(Verification.district_code)))
    for column, value in ((Verification.period_id, period_id), (Verification.month, month),
                          (Verification.community_id, community_id), (Verification.resident_id, resident_id)):
        if value is not None:
            stmt = stmt.where(col(column) == value)
    if grid_path is not None:
        stmt = stmt.where(col(Verification.area_path).startswith(grid_path, autoescape=True))
    if outcomes:
        stmt = stmt.where(col(Verification.outcome).in_([o.value for o in outcomes]))
    if pending is not None:
        stmt = stmt.where(col(Verification.outcome).is_(None) if pending else col(Verification.outcome).is_not(None))
    if flagged is not None:
        flags = col(Verification.checkin_flags)
        stmt = stmt.where(flags != "[]" if flagged else flags == "[]")
    return stmt.order_by(col(Verification.month).desc(), col(Verification.area_path), col(Verification.id))
