"""Check-in flags: what the server notices about a visit's location and clocks when it arrives.

A pure function of the check-in as received (already converted to WGS-84), the dwelling's coordinates, the
server's receipt time and the settings, so it can be tested at every threshold without a database. Flags
never reject a visit: they tell the reviewing supervisor where to look (docs/visits.md has the table).

Location flags (`outside_radius`, `poor_accuracy`, `stale_fix`, `no_coordinates`, `dwelling_unlocated`)
apply to in-person visits only: a phone call's coordinates are stored if the phone sent them, but where
the worker stood says nothing about a call. `mock_location`, `clock_ahead` and `late_record` apply to
every visit. Thresholds are inclusive: a value exactly at the limit is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from app.visits.geo import haversine_m
from app.visits.models import CheckinFlag, VisitMode


class CheckinSettings(Protocol):
    visit_radius_m: float
    visit_max_accuracy_m: float
    visit_clock_tolerance_seconds: int
    visit_late_hours: int
    visit_fix_max_age_seconds: int


@dataclass(frozen=True)
class CheckinFacts:
    """What the phone told about the visit; coordinates in WGS-84 (None: no check-in was sent)."""

    mode: str
    started_at: datetime
    ended_at: datetime
    lat: float | None = None
    lng: float | None = None
    accuracy_m: float | None = None
    mock_location: bool = False
    fix_time: datetime | None = None


def assess(facts: CheckinFacts, dwelling: tuple[float | None, float | None] | None, received_at: datetime,
           settings: CheckinSettings) -> tuple[float | None, list[str]]:
    """(distance to the dwelling in metres, or None; the flags in their table order)."""
    flags: set[CheckinFlag] = set()
    in_person = facts.mode == VisitMode.in_person.value
    located = facts.lat is not None and facts.lng is not None
    home = dwelling if dwelling is not None and dwelling[0] is not None and dwelling[1] is not None else None
    distance: float | None = None

    if in_person and located and home is not None:
        assert facts.lat is not None and facts.lng is not None and home[0] is not None and home[1] is not None
        distance = round(haversine_m(facts.lat, facts.lng, home[0], home[1]), 1)
        if distance > settings.visit_radius_m:
            flags.add(CheckinFlag.outside_radius)
    if in_person and located and home is None:
        flags.add(CheckinFlag.dwelling_unlocated)
    if in_person and not located:
        flags.add(CheckinFlag.no_coordinates)
    if in_person and located and facts.accuracy_m is not None and facts.accuracy_m > settings.visit_max_accuracy_m:
        flags.add(CheckinFlag.poor_accuracy)
    if located and facts.mock_location:
        flags.add(CheckinFlag.mock_location)

    ahead = received_at + timedelta(seconds=settings.visit_clock_tolerance_seconds)
    if any(moment is not None and moment > ahead for moment in (facts.started_at, facts.ended_at, facts.fix_time)):
        flags.add(CheckinFlag.clock_ahead)
    if received_at - facts.ended_at > timedelta(hours=settings.visit_late_hours):
        flags.add(CheckinFlag.late_record)
    if in_person and located and facts.fix_time is not None:
        max_age = timedelta(seconds=settings.visit_fix_max_age_seconds)
        if facts.fix_time < facts.started_at - max_age or facts.fix_time > facts.ended_at + max_age:
            flags.add(CheckinFlag.stale_fix)

    if not flags:  # most visits
        return distance, []
    return distance, [flag.value for flag in _ORDER if flag in flags]


_ORDER = tuple(CheckinFlag)  # the table's order (iterating the enum itself costs more than the check)
