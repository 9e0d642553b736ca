"""Helpers for the audit tests: visits on a chosen day and place, residents in dwellings of their own."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.types import CITY_TZ, city_today
from app.visits.geo import EARTH_RADIUS_M
from tests.conftest import World
from tests.visits import resident

DAY = city_today() - timedelta(days=1)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), CITY_TZ)


def north(lat: float, metres: float) -> float:
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def visit(who: dict[str, Any], start: datetime, minutes: float = 10, *, lat: float | None = None,
          **over: Any) -> dict[str, Any]:
    """An honest in-person visit at the resident's door, unless told otherwise."""
    body: dict[str, Any] = {
        "resident_id": who["id"], "mode": "in_person", "purpose": "routine", "outcome": "met",
        "started_at": start.isoformat(), "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        "checkin": {"lat": who["lat"] if lat is None else lat, "lng": who["lng"], "accuracy_m": 10.0,
                    "fix_time": (start + timedelta(seconds=30)).isoformat()},
    }
    body.update(over)
    return body


def distinct_homes(engine: Engine, world: World, n: int) -> list[dict[str, Any]]:
    """`n` c1 residents, each in a dwelling of their own."""
    found: dict[str, dict[str, Any]] = {}
    skip = 0
    while len(found) < n:
        who = resident(engine, world, skip=skip)
        found.setdefault(who["dwelling_id"], who)
        skip += 1
    return list(found.values())
