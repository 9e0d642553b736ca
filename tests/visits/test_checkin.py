"""Check-in flags: every flag with data that triggers it and data just inside its threshold.

Through the API (what the server stores) and, for exact edge values, the pure function itself.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import get_settings
from app.visits.checkin import CheckinFacts, assess
from app.visits.geo import EARTH_RADIUS_M, wgs84_to_gcj02
from tests.conftest import Api, World
from tests.db import execute
from tests.factories import iso, post_visit, visit_body
from tests.visits import now, resident, visit_row

SETTINGS = get_settings()


def north(lat: float, metres: float) -> float:
    """The latitude `metres` due north (haversine along a meridian is exact)."""
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def flags_of(api: Api, engine: Engine, body: dict[str, Any]) -> list[str]:
    out = post_visit(api, body)
    stored = json.loads(visit_row(engine, out["id"])["flags"])
    assert stored == out["flags"]
    return stored


def checkin(who: dict[str, Any], **over: Any) -> dict[str, Any]:
    start = now() - timedelta(minutes=10)
    body = {"lat": who["lat"], "lng": who["lng"], "accuracy_m": 10.0, "fix_time": iso(start)}
    body.update(over)
    return body


# --- through the API -----------------------------------------------------------------------------------------


def test_outside_radius(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    radius = SETTINGS.visit_radius_m
    inside = post_visit(api, visit_body(who, checkin=checkin(who, lat=north(who["lat"], radius - 1))))
    assert inside["flags"] == [] and inside["distance_m"] == pytest.approx(radius - 1, abs=0.1)
    outside = post_visit(api, visit_body(who, checkin=checkin(who, lat=north(who["lat"], radius + 1))))
    assert outside["flags"] == ["outside_radius"] and outside["distance_m"] == pytest.approx(radius + 1, abs=0.1)


def test_phone_visit_stores_coordinates_without_location_flags(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    far_away = checkin(who, lat=north(who["lat"], 5000), accuracy_m=900.0,
                       fix_time=iso(now() - timedelta(hours=2)))
    out = post_visit(api, visit_body(who, mode="phone", checkin=far_away))
    assert out["flags"] == [] and out["distance_m"] is None
    row = visit_row(engine, out["id"])
    assert row["lat"] == pytest.approx(far_away["lat"]) and row["accuracy_m"] == 900.0


def test_poor_accuracy(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    limit = SETTINGS.visit_max_accuracy_m
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, accuracy_m=limit))) == []
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, accuracy_m=limit + 0.5))) == ["poor_accuracy"]
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, accuracy_m=None))) == []


def test_mock_location(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, mock_location=False))) == []
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, mock_location=True))) == ["mock_location"]
    assert flags_of(api, engine, visit_body(who, mode="phone", checkin=checkin(who, mock_location=True))) == [
        "mock_location"]


def test_clock_ahead(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    tolerance = SETTINGS.visit_clock_tolerance_seconds
    start = now() - timedelta(minutes=1)
    slightly = now() + timedelta(seconds=tolerance - 60)
    assert flags_of(api, engine, visit_body(who, started_at=iso(start), ended_at=iso(slightly),
                                            checkin=checkin(who, fix_time=iso(start)))) == []
    ahead = now() + timedelta(seconds=tolerance + 60)
    assert flags_of(api, engine, visit_body(who, started_at=iso(start), ended_at=iso(ahead),
                                            checkin=checkin(who, fix_time=iso(start)))) == ["clock_ahead"]
    assert flags_of(api, engine, visit_body(who, started_at=iso(ahead), ended_at=iso(ahead),
                                            checkin=checkin(who, fix_time=iso(ahead)))) == ["clock_ahead"]
    # The fix alone: taken "in the future" (within the stale-fix window after the end, so only clock_ahead).
    assert flags_of(api, engine, visit_body(who, started_at=iso(start), ended_at=iso(start),
                                            checkin=checkin(who, fix_time=iso(ahead)))) == ["clock_ahead"]


def test_late_record(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    hours = SETTINGS.visit_late_hours

    def ended(ago: timedelta) -> dict[str, Any]:
        end = now() - ago
        return visit_body(who, started_at=iso(end - timedelta(minutes=5)), ended_at=iso(end),
                          checkin=checkin(who, fix_time=iso(end - timedelta(minutes=5))))

    assert flags_of(api, engine, ended(timedelta(hours=hours) - timedelta(minutes=5))) == []
    assert flags_of(api, engine, ended(timedelta(hours=hours) + timedelta(minutes=5))) == ["late_record"]


def test_stale_fix(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    max_age = SETTINGS.visit_fix_max_age_seconds
    start = now() - timedelta(hours=1)
    end = start + timedelta(minutes=10)

    def fixed(at: datetime) -> dict[str, Any]:
        return visit_body(who, started_at=iso(start), ended_at=iso(end), checkin=checkin(who, fix_time=iso(at)))

    assert flags_of(api, engine, fixed(start - timedelta(seconds=max_age - 30))) == []
    assert flags_of(api, engine, fixed(start - timedelta(seconds=max_age + 30))) == ["stale_fix"]
    assert flags_of(api, engine, fixed(end + timedelta(seconds=max_age - 30))) == []
    assert flags_of(api, engine, fixed(end + timedelta(seconds=max_age + 30))) == ["stale_fix"]
    # No fix time: nothing to judge.
    assert flags_of(api, engine, visit_body(who, checkin=checkin(who, fix_time=None))) == []


def test_no_coordinates(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    out = post_visit(api, visit_body(who, checkin=None, no_coordinates_reason="indoors_no_signal"))
    assert out["flags"] == ["no_coordinates"] and out["checkin"] is None
    assert visit_row(engine, out["id"])["no_coordinates_reason"] == "indoors_no_signal"
    phone = post_visit(api, visit_body(who, mode="phone", checkin=None))
    assert phone["flags"] == []


def test_dwelling_unlocated(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    execute(engine, "UPDATE dwellings SET lat = NULL, lng = NULL WHERE id = :d", d=who["dwelling_id"])
    out = post_visit(api, visit_body(who))
    assert out["flags"] == ["dwelling_unlocated"] and out["distance_m"] is None
    # Without coordinates there is nothing to compare either: the missing check-in is the finding.
    bare = post_visit(api, visit_body(who, checkin=None, no_coordinates_reason="gps_unavailable"))
    assert bare["flags"] == ["no_coordinates"]
    located = resident(engine, world, skip=3)
    assert post_visit(api, visit_body(located))["flags"] == []


def test_several_flags_in_table_order(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    end = now() - timedelta(hours=SETTINGS.visit_late_hours + 1)
    body = visit_body(who, started_at=iso(end - timedelta(minutes=5)), ended_at=iso(end),
                      checkin=checkin(who, lat=north(who["lat"], 1000), accuracy_m=500.0, mock_location=True,
                                      fix_time=iso(end + timedelta(hours=1))))
    assert flags_of(api, engine, body) == ["outside_radius", "poor_accuracy", "mock_location", "late_record",
                                           "stale_fix"]


def test_gcj02_check_in_is_converted(api: Api, world: World, engine: Engine) -> None:
    """A map SDK's GCJ-02 fix at the door is stored in WGS-84 at the door; the same numbers taken as
    WGS-84 would be hundreds of metres off."""
    who = resident(engine, world)
    g_lat, g_lng = wgs84_to_gcj02(who["lat"], who["lng"])
    out = post_visit(api, visit_body(who, checkin=checkin(who, lat=g_lat, lng=g_lng, coord_system="gcj02")))
    assert out["flags"] == [] and out["distance_m"] < 0.1
    row = visit_row(engine, out["id"])
    assert row["coord_system"] == "gcj02"
    assert row["lat"] == pytest.approx(who["lat"], abs=1e-7) and row["lng"] == pytest.approx(who["lng"], abs=1e-7)
    assert out["checkin"]["coord_system"] == "gcj02" and out["checkin"]["lat"] == pytest.approx(who["lat"], abs=1e-7)
    wrong = post_visit(api, visit_body(who, checkin=checkin(who, lat=g_lat, lng=g_lng, coord_system="wgs84")))
    assert wrong["flags"] == ["outside_radius"] and wrong["distance_m"] > 300


# --- the pure function at its exact edges ------------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
HOME = (34.75, 113.62)


def facts(**over: Any) -> CheckinFacts:
    values: dict[str, Any] = {"mode": "in_person", "started_at": RECEIVED - timedelta(minutes=30),
                              "ended_at": RECEIVED - timedelta(minutes=20), "lat": HOME[0], "lng": HOME[1],
                              "accuracy_m": 10.0, "fix_time": RECEIVED - timedelta(minutes=30)}
    values.update(over)
    return CheckinFacts(**values)


def flags(**over: Any) -> list[str]:
    return assess(facts(**over), HOME, RECEIVED, SETTINGS)[1]


def test_exact_thresholds_are_not_flagged() -> None:
    s = SETTINGS
    start, end = RECEIVED - timedelta(minutes=30), RECEIVED - timedelta(minutes=20)
    assert flags(accuracy_m=s.visit_max_accuracy_m) == []
    assert flags(accuracy_m=s.visit_max_accuracy_m + 0.001) == ["poor_accuracy"]
    tolerance = timedelta(seconds=s.visit_clock_tolerance_seconds)
    assert flags(started_at=RECEIVED + tolerance, ended_at=RECEIVED + tolerance, fix_time=None) == []
    assert flags(ended_at=RECEIVED + tolerance + timedelta(microseconds=1)) == ["clock_ahead"]
    late = timedelta(hours=s.visit_late_hours)
    assert flags(started_at=RECEIVED - late - timedelta(minutes=5), ended_at=RECEIVED - late, fix_time=None) == []
    assert flags(started_at=RECEIVED - late - timedelta(minutes=5), ended_at=RECEIVED - late - timedelta(seconds=1),
                 fix_time=None) == ["late_record"]
    age = timedelta(seconds=s.visit_fix_max_age_seconds)
    assert flags(fix_time=start - age) == [] and flags(fix_time=end + age) == []
    assert flags(fix_time=start - age - timedelta(seconds=1)) == ["stale_fix"]
    assert flags(fix_time=end + age + timedelta(seconds=1)) == ["stale_fix"]


def test_radius_edge() -> None:
    radius = SETTINGS.visit_radius_m
    at_edge = north(HOME[0], radius - 0.04)  # rounds to the radius itself
    distance, found = assess(facts(lat=at_edge), HOME, RECEIVED, SETTINGS)
    assert (distance, found) == (radius, [])
    distance, found = assess(facts(lat=north(HOME[0], radius + 0.2)), HOME, RECEIVED, SETTINGS)
    assert distance == pytest.approx(radius + 0.2, abs=0.05) and found == ["outside_radius"]


def test_location_flags_need_coordinates_and_an_in_person_visit() -> None:
    assert flags(lat=None, lng=None) == ["no_coordinates"]
    assert flags(lat=None, lng=None, mock_location=True, accuracy_m=1000.0) == ["no_coordinates"]
    assert flags(mode="phone", lat=None, lng=None) == []
    assert flags(mode="phone", lat=0.0, lng=0.0, accuracy_m=5000.0, fix_time=RECEIVED - timedelta(days=1)) == []
    assert assess(facts(), None, RECEIVED, SETTINGS) == (None, ["dwelling_unlocated"])
    assert assess(facts(), (None, None), RECEIVED, SETTINGS) == (None, ["dwelling_unlocated"])
