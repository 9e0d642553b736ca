"""Visit quality: the rules that score each visit, as pure functions over plain rows (docs/audit.md).

A visit's score is the sum of the weights of the reasons found (at most 100); each reason names its rule and
the figures behind it (ids, metres, minutes — never coordinates or personal data). Thresholds come from the
settings (QUALITY_*, WORK_*_HOUR, VISIT_RADIUS_M). Rules that look at neighbours (impossible travel, one
spot) work on one worker's visits in the order they happened; the caller hands them sorted by (worker,
start). No database here: the rules are tested at their thresholds without one, and scoring a district's
month is one read plus one pass (bench/audit.py).

Times are epoch seconds (floats), so the pass does arithmetic, not datetime objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any, NamedTuple, Protocol

CITY_OFFSET_S = 8 * 3600  # the city's clock (UTC+8), for working hours
EARTH_RADIUS_M = 6371008.8


class Rule(StrEnum):
    # The check-in flags the server set when the visit arrived (app/visits/checkin.py).
    mock_location = "mock_location"
    outside_radius = "outside_radius"
    poor_accuracy = "poor_accuracy"
    stale_fix = "stale_fix"
    no_coordinates = "no_coordinates"
    clock_ahead = "clock_ahead"
    late_record = "late_record"
    dwelling_unlocated = "dwelling_unlocated"
    # What only a supervisor's view across visits shows.
    impossible_travel = "impossible_travel"
    one_spot_many_homes = "one_spot_many_homes"
    off_hours = "off_hours"
    too_short = "too_short"
    phone_for_in_person = "phone_for_in_person"
    clock_drift = "clock_drift"


WEIGHTS: dict[str, int] = {
    Rule.mock_location: 40, Rule.impossible_travel: 35, Rule.one_spot_many_homes: 35, Rule.outside_radius: 25,
    Rule.phone_for_in_person: 25, Rule.too_short: 20, Rule.clock_ahead: 15, Rule.stale_fix: 15,
    Rule.no_coordinates: 15, Rule.poor_accuracy: 10, Rule.off_hours: 10, Rule.clock_drift: 10,
    Rule.late_record: 5, Rule.dwelling_unlocated: 5,
}
MAX_SCORE = 100


class Thresholds(Protocol):
    quality_max_speed_kmh: float
    quality_cluster_radius_m: float
    quality_cluster_minutes: int
    quality_cluster_dwellings: int
    quality_min_visit_minutes: float
    quality_min_call_seconds: int
    quality_in_person_purposes: str
    quality_max_clock_skew_seconds: int
    work_start_hour: int
    work_end_hour: int
    visit_radius_m: float


class Row(NamedTuple):
    """One visit as scored (the columns `service.ROW_COLUMNS` reads, times as epoch seconds)."""

    id: str
    worker_id: str
    resident_id: str
    dwelling_id: str | None
    mode: str
    purpose: str
    outcome: str
    started: float
    ended: float
    lat: float | None
    lng: float | None
    flags: str  # the stored JSON list of check-in flags


# Positions in a row (a `Row`, or any tuple-like row with the same leading columns, such as a database row).
ID, WORKER, RESIDENT, DWELLING, MODE, PURPOSE, OUTCOME, STARTED, ENDED, LAT, LNG, FLAGS = range(12)


@dataclass(slots=True)
class Reason:
    rule: str
    weight: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Scored:
    row: Any  # a Row, or a database row whose first columns are a Row's
    reasons: list[Reason] = field(default_factory=list)
    score: int = 0  # the weights of the reasons, at most MAX_SCORE

    def add(self, rule: Rule, **detail: Any) -> None:
        if all(r.rule != rule for r in self.reasons):
            self.reasons.append(Reason(rule.value, WEIGHTS[rule], detail))
            self.score = min(MAX_SCORE, self.score + WEIGHTS[rule])


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), for exact figures."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


_FLAG_RULES = {rule.value: rule for rule in Rule}
_RAD = math.pi / 180


class _Marks:
    """Reasons found so far, by row position; a Scored is made only for rows with reasons."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows
        self.found: dict[int, Scored] = {}

    def add(self, i: int, rule: Rule, **detail: Any) -> None:
        scored = self.found.get(i)
        if scored is None:
            scored = self.found[i] = Scored(self.rows[i])
        scored.add(rule, **detail)


def score(rows: Sequence[Any], t: Thresholds, drifting: dict[str, dict[str, Any]] | None = None) -> list[Scored]:
    """Score visits sorted by (worker, start); one `Scored` per row, in order. `drifting`: worker id → what shows
    their device clock drifting (from the sync devices; see `clock_drift`)."""
    found = find(rows, t, drifting)
    return [found.get(i) or Scored(row) for i, row in enumerate(rows)]


def find(rows: Sequence[Any], t: Thresholds, drifting: dict[str, dict[str, Any]] | None = None) -> dict[int, Scored]:
    """`score`, answering only the rows something was found on (by position): most visits are clean."""
    marks = _Marks(rows)
    _each(rows, t, marks)
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][WORKER] != rows[start][WORKER]:
            located = [j for j in range(start, i) if rows[j][MODE] == "in_person" and rows[j][LAT] is not None
                       and rows[j][LNG] is not None]
            if len(located) > 1:
                _travel(rows, located, t, marks)
                _one_spot(rows, located, t, marks)
            start = i
    _clock_drift(rows, marks, drifting or {})
    return marks.found


def _each(rows: Sequence[Any], t: Thresholds, marks: _Marks) -> None:
    """The rules that look at one visit alone."""
    in_person_purposes = frozenset(p for p in t.quality_in_person_purposes.split(",") if p)
    start_h, end_h = t.work_start_hour, t.work_end_hour
    min_visit_s, min_call_s = t.quality_min_visit_minutes * 60, t.quality_min_call_seconds
    for i, row in enumerate(rows):
        flags, mode, started = row[FLAGS], row[MODE], row[STARTED]
        if flags != "[]":
            for flag in flags.strip("[]").replace('"', "").split(","):
                rule = _FLAG_RULES.get(flag.strip())
                if rule is not None:
                    marks.add(i, rule)
        hour = int((started + CITY_OFFSET_S) // 3600 % 24)
        if not start_h <= hour < end_h:
            marks.add(i, Rule.off_hours, hour=hour)
        if row[OUTCOME] == "met":
            duration = row[ENDED] - started
            if mode == "in_person" and duration < min_visit_s:
                marks.add(i, Rule.too_short, minutes=round(duration / 60, 1))
            elif mode == "phone" and duration < min_call_s:
                marks.add(i, Rule.too_short, seconds=round(duration))
        if mode == "phone" and row[PURPOSE] in in_person_purposes:
            marks.add(i, Rule.phone_for_in_person, purpose=row[PURPOSE])


def _travel(rows: Sequence[Any], located: list[int], t: Thresholds, marks: _Marks) -> None:
    """Consecutive in-person check-ins farther apart than VISIT_RADIUS_M (beyond GPS noise) that could only be
    covered faster than QUALITY_MAX_SPEED_KMH, from the end of one visit to the start of the next: both visits
    are marked (which one is untrue cannot be told). A local flat projection gives the distance (within a city
    it differs from the great circle by far less than a metre); the figures reported are the great circle's."""
    squeeze = math.cos(rows[located[0]][LAT] * _RAD)
    radius, top = t.visit_radius_m, t.quality_max_speed_kmh / 3.6
    for a, b in pairwise(located):
        ra, rb = rows[a], rows[b]
        dy, dx = (rb[LAT] - ra[LAT]) * _RAD, (rb[LNG] - ra[LNG]) * _RAD * squeeze
        metres = EARTH_RADIUS_M * math.sqrt(dx * dx + dy * dy)
        if metres <= radius:
            continue
        gap = max(rb[STARTED] - ra[ENDED], 1.0)
        if metres / gap > top:
            exact = distance_m(ra[LAT], ra[LNG], rb[LAT], rb[LNG])
            kmh = exact / gap * 3.6
            if exact <= radius or kmh <= t.quality_max_speed_kmh:
                continue
            figures = {"distance_m": round(exact), "minutes": round(gap / 60, 1), "km_h": round(kmh)}
            marks.add(a, Rule.impossible_travel, other_visit_id=rb[ID], **figures)
            marks.add(b, Rule.impossible_travel, other_visit_id=ra[ID], **figures)


def _one_spot(rows: Sequence[Any], located: list[int], t: Thresholds, marks: _Marks) -> None:
    """QUALITY_CLUSTER_DWELLINGS or more different homes (dwellings, or residents without one) 'visited' from
    check-ins within QUALITY_CLUSTER_RADIUS_M of one another inside QUALITY_CLUSTER_MINUTES."""
    window, need, radius = t.quality_cluster_minutes * 60, t.quality_cluster_dwellings, t.quality_cluster_radius_m
    end, count = 0, len(located)
    for n, i in enumerate(located):
        first = rows[i]
        if end <= n:
            end = n + 1
        while end < count and rows[located[end]][STARTED] - first[STARTED] <= window:
            end += 1
        if end - n < need:  # too few visits in the window to matter: no distances needed
            continue
        group = [j for j in located[n:end] if distance_m(first[LAT], first[LNG], rows[j][LAT], rows[j][LNG]) <= radius]
        homes = {rows[j][DWELLING] or "resident:" + rows[j][RESIDENT] for j in group}
        if len(homes) >= need:
            for j in group:
                marks.add(j, Rule.one_spot_many_homes, homes=len(homes), minutes=t.quality_cluster_minutes,
                          radius_m=radius)


def _clock_drift(rows: Sequence[Any], marks: _Marks, drifting: dict[str, dict[str, Any]]) -> None:
    """A worker whose phone clock keeps drifting: a device of theirs reported a skew beyond
    QUALITY_MAX_CLOCK_SKEW_SECONDS at its last sync, or two or more of their visits in view arrived with the
    clock ahead (`clock_ahead`). Every visit of theirs is marked: its times cannot be taken as told."""
    ahead: dict[str, int] = {}
    for scored in marks.found.values():
        if any(r.rule == Rule.clock_ahead for r in scored.reasons):
            worker = scored.row[WORKER]
            ahead[worker] = ahead.get(worker, 0) + 1
    details = {w: dict(d) for w, d in drifting.items()}
    for worker, n in ahead.items():
        if n >= 2:
            details.setdefault(worker, {})["clock_ahead_visits"] = n
    if not details:
        return
    for i, row in enumerate(rows):
        detail = details.get(row[WORKER])
        if detail:
            marks.add(i, Rule.clock_drift, **detail)
