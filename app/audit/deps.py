"""What the supervisor and auditor views share: the period asked about and the area it is narrowed to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Query
from sqlmodel import Session

from app.audit.errors import PeriodInvalid, PeriodTooLong
from app.core.actor import Actor
from app.core.inputs import IsoDate
from app.core.types import city_today
from app.cycle.periods import day_start
from app.places import service as places

MAX_PERIOD_DAYS = 92
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    """City dates, both inclusive."""

    start: date
    end: date

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants where the period starts and where the day after it starts."""
        return day_start(self.start), day_start(self.end + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


async def period(  # async: no I/O
    start: Annotated[IsoDate | None, Query(
        alias="from", description="First city date (default: 30 days before `to`)")] = None,
    end: Annotated[IsoDate | None, Query(
        alias="to", description="Last city date, inclusive (default: today, or 30 days from `from`)")] = None,
) -> Period:
    if end is None:  # 30 days from `from` (not past today), or up to today
        end = city_today() if start is None else max(start, min(city_today(), start + timedelta(days=DEFAULT_DAYS - 1)))
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise PeriodInvalid()
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodTooLong({"max_days": MAX_PERIOD_DAYS})
    return Period(start, end)


def area_prefix(session: Session, actor: Actor, division_id: str | None) -> str | None:
    """The path of a division the actor sees (404 otherwise), or None for the actor's whole scope."""
    if division_id is None:
        return None
    return places.get_division(session, actor, division_id).path


DIVISION = Query(max_length=32, description="Narrow to this division (district, street, community or grid)")
