"""Months of the monthly cycle: a period is a calendar month `YYYY-MM` in city time (UTC+8)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.config import get_settings
from app.core.types import CITY_TZ


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """The UTC instants where a city month `YYYY-MM` starts and the next one starts."""
    year, month = int(period[:4]), int(period[5:7])
    start = datetime(year, month, 1, tzinfo=CITY_TZ)
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=CITY_TZ)
    return start.astimezone(UTC), following.astimezone(UTC)


def monthly_due_date(period: str) -> date:
    return date(int(period[:4]), int(period[5:7]), get_settings().key_person_visit_due_day)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CITY_TZ).astimezone(UTC)
