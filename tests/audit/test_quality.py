"""Visit quality: synthetic days with one anomaly injected are flagged with the right reason, honest days are
not (a test per rule); the review queue is worst first; decisions are audited and nobody reviews their own."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.audit.quality import rules
from app.core.config import get_settings
from app.core.types import CITY_TZ, city_today
from tests.audit.conftest import raw_rows
from tests.audit.helpers import DAY, at, distinct_homes, north, visit
from tests.conftest import Api, World
from tests.factories import post_visit

QUALITY = "/api/v1/audit/quality"
SETTINGS = get_settings()
@pytest.fixture()
def people(engine: Engine, world: World) -> list[dict[str, Any]]:
    """Six c1 residents, each in a dwelling of their own."""
    return distinct_homes(engine, world, 6)


def honest_day(api: Api, people: list[dict[str, Any]]) -> list[str]:
    """Four visits at the residents' doors, 40 minutes apart, in working hours."""
    return [post_visit(api, visit(who, at(9 + i // 2, 40 * (i % 2))))["id"] for i, who in enumerate(people[:4])]


def scored(api: Api, user: str = "sup_street", **params: Any) -> dict[str, dict[str, Any]]:
    query = {"from": DAY.isoformat(), "to": DAY.isoformat(), "worker_id": api_user_id(api, "worker1"),
             "limit": 200, **params}
    response = api.as_(user, "GET", f"{QUALITY}/visits", params=query)
    assert response.status_code == 200, response.text
    return {v["id"]: v for v in response.json()["items"]}


_ids: dict[str, str] = {}


def api_user_id(api: Api, username: str) -> str:
    return _ids[username]


@pytest.fixture(autouse=True)
def _user_ids(world: World) -> None:
    _ids.update(world.users)


def reasons(item: dict[str, Any]) -> set[str]:
    return {r["rule"] for r in item["reasons"]}


def test_honest_day_is_clean(api: Api, people: list[dict[str, Any]]) -> None:
    ids = honest_day(api, people)
    found = scored(api)
    assert set(found) == set(ids)
    assert {v["score"] for v in found.values()} == {0} and all(v["reasons"] == [] for v in found.values())
    assert api.as_("sup_street", "GET", f"{QUALITY}/queue", params={"from": DAY.isoformat(), "to": DAY.isoformat()}
                   ).json()["total"] == 0


def test_checkin_flags_are_reasons(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    body = visit(people[4], at(14))
    body["checkin"]["mock_location"] = True
    faked = post_visit(api, body)["id"]
    found = scored(api)
    assert reasons(found[faked]) == {"mock_location"} and found[faked]["score"] == rules.WEIGHTS["mock_location"]
    assert all(found[i]["reasons"] == [] for i in honest)


def test_impossible_travel(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    a = post_visit(api, visit(people[4], at(14)))["id"]
    # Ten minutes later, checked in 5 km away: 5 km in 2 minutes' gap.
    far = north(people[5]["lat"], 5000)
    b = post_visit(api, visit(people[5], at(14, 12), lat=far))["id"]
    found = scored(api)
    for one, other in ((a, b), (b, a)):
        travel = next(r for r in found[one]["reasons"] if r["rule"] == "impossible_travel")
        assert travel["detail"]["other_visit_id"] == other and travel["detail"]["km_h"] > SETTINGS.quality_max_speed_kmh
    assert all("impossible_travel" not in reasons(found[i]) for i in honest)


def test_one_spot_many_homes(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    spot = people[0]
    homes = {p["dwelling_id"] for p in people[1:5]}
    assert len(homes) >= SETTINGS.quality_cluster_dwellings, "the demo residents share dwellings"
    clustered = [post_visit(api, visit(who, at(15, 3 * i), minutes=2.5, lat=spot["lat"] + 1e-5 * i,
                                       checkin={"lat": spot["lat"] + 1e-5 * i, "lng": spot["lng"],
                                                "accuracy_m": 10.0}))["id"]
                 for i, who in enumerate(people[1:5])]
    found = scored(api)
    for visit_id in clustered:
        hit = next(r for r in found[visit_id]["reasons"] if r["rule"] == "one_spot_many_homes")
        assert hit["detail"]["homes"] == 4
    assert all("one_spot_many_homes" not in reasons(found[i]) for i in honest)


def test_off_hours(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    late = post_visit(api, visit(people[4], at(23, 5)))["id"]
    early = post_visit(api, visit(people[5], at(SETTINGS.work_start_hour - 1, 30)))["id"]
    edge = post_visit(api, visit(people[5], at(SETTINGS.work_start_hour, 0) + timedelta(days=0), minutes=5,
                                 id="edge-of-day-visit-0001"))["id"]
    found = scored(api)
    assert reasons(found[late]) == {"off_hours"} and reasons(found[early]) == {"off_hours"}
    assert next(r for r in found[late]["reasons"])["detail"] == {"hour": 23}
    assert "off_hours" not in reasons(found[edge])
    assert all(found[i]["reasons"] == [] for i in honest)


def test_too_short(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    short = post_visit(api, visit(people[4], at(14), minutes=1))["id"]
    enough = post_visit(api, visit(people[5], at(15), minutes=SETTINGS.quality_min_visit_minutes))["id"]
    call = post_visit(api, visit(people[4], at(16), minutes=0.2, mode="phone", checkin=None))["id"]
    not_met = post_visit(api, visit(people[5], at(17), minutes=1, outcome="not_home"))["id"]
    found = scored(api)
    assert reasons(found[short]) == {"too_short"} and reasons(found[call]) == {"too_short"}
    assert found[enough]["reasons"] == [] and found[not_met]["reasons"] == []
    assert all(found[i]["reasons"] == [] for i in honest)


def test_phone_for_in_person(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    key = post_visit(api, visit(people[4], at(14), mode="phone", purpose="key_person", checkin=None))["id"]
    routine = post_visit(api, visit(people[5], at(15), mode="phone", purpose="routine", checkin=None))["id"]
    found = scored(api)
    assert reasons(found[key]) == {"phone_for_in_person"}
    assert found[routine]["reasons"] == []
    assert all(found[i]["reasons"] == [] for i in honest)


def test_clock_drift_from_the_device(api: Api, people: list[dict[str, Any]]) -> None:
    honest = honest_day(api, people)
    assert all(v["reasons"] == [] for v in scored(api).values())
    skew = (SETTINGS.quality_max_clock_skew_seconds + 60) * 1000
    pulled = api.as_("worker1", "GET", "/api/v1/sync/pull", params={"schema_version": 1},
                     headers={"X-Device-Id": "drifting-phone-01",
                              "X-Device-Time": str(int(clock.time() * 1000) + skew)})
    assert pulled.status_code == 200, pulled.text
    found = scored(api)
    for visit_id in honest:
        drift = next(r for r in found[visit_id]["reasons"] if r["rule"] == "clock_drift")
        assert drift["detail"]["max_skew_s"] >= SETTINGS.quality_max_clock_skew_seconds
    # A device on time does not mark anyone.
    assert api.as_("worker2", "GET", "/api/v1/sync/pull", params={"schema_version": 1},
                   headers={"X-Device-Id": "punctual-phone-01", "X-Device-Time": str(int(clock.time() * 1000))}
                   ).status_code == 200


def test_clock_drift_from_repeated_clock_ahead(api: Api, people: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    ahead = [post_visit(api, visit(who, now + timedelta(hours=1, minutes=20 * i)))["id"]
             for i, who in enumerate(people[:2])]
    today = city_today()
    until = (now + timedelta(hours=3)).astimezone(CITY_TZ).date()
    found = scored(api, **{"from": today.isoformat(), "to": until.isoformat()})
    for visit_id in ahead:
        assert {"clock_ahead", "clock_drift"} <= reasons(found[visit_id])
        drift = next(r for r in found[visit_id]["reasons"] if r["rule"] == "clock_drift")
        assert drift["detail"] == {"clock_ahead_visits": 2}


# --- thresholds, without a database ------------------------------------------------------------------------


def row(i: int, start: float, *, lat: float = 34.75, minutes: float = 10, dwelling: str | None = None,
        worker: str = "w", **over: Any) -> rules.Row:
    base = rules.Row(f"v{i}", worker, f"r{i}", dwelling or f"d{i}", "in_person", "routine", "met", start,
                     start + minutes * 60, lat, 113.6, "[]")
    return base._replace(**over)


def test_travel_threshold_exactly() -> None:
    t0 = at(10).timestamp()
    metres = 1000.0
    gap = metres / (SETTINGS.quality_max_speed_kmh / 3.6)  # exactly the top speed
    second = north(34.75, metres)
    at_limit = rules.score([row(1, t0), row(2, t0 + 600 + gap + 1, lat=second)], SETTINGS)
    assert all(s.reasons == [] for s in at_limit)
    faster = rules.score([row(1, t0), row(2, t0 + 600 + gap - 5, lat=second)], SETTINGS)
    assert all([r.rule for r in s.reasons] == ["impossible_travel"] for s in faster)
    # Within the check-in radius it is GPS noise, however fast.
    near = rules.score([row(1, t0), row(2, t0 + 600, lat=north(34.75, SETTINGS.visit_radius_m - 1))], SETTINGS)
    assert all(s.reasons == [] for s in near)
    # Two workers' visits are never each other's neighbours.
    apart = rules.score([row(1, t0), row(2, t0 + 600, lat=second, worker="x")], SETTINGS)
    assert all(s.reasons == [] for s in apart)


def test_one_spot_threshold_and_one_household() -> None:
    t0 = at(10).timestamp()
    n = SETTINGS.quality_cluster_dwellings
    few = rules.score([row(i, t0 + 60 * i, minutes=5) for i in range(n - 1)], SETTINGS)
    assert all(s.reasons == [] for s in few)
    many = rules.score([row(i, t0 + 60 * i, minutes=5) for i in range(n)], SETTINGS)
    assert all([r.rule for r in s.reasons] == ["one_spot_many_homes"] for s in many)
    family = rules.score([row(i, t0 + 60 * i, minutes=5, dwelling="same") for i in range(n + 2)], SETTINGS)
    assert all(s.reasons == [] for s in family)
    spread = rules.score([row(i, t0 + SETTINGS.quality_cluster_minutes * 60 * i + 1, minutes=5) for i in range(n)],
                         SETTINGS)
    assert all(s.reasons == [] for s in spread)


def test_score_is_capped() -> None:
    t0 = at(23).timestamp()
    flags = '["mock_location","outside_radius","stale_fix","clock_ahead"]'
    (s,) = rules.score([row(1, t0, minutes=0.5, flags=flags)], SETTINGS, {"w": {"max_skew_s": 999}})
    assert sum(r.weight for r in s.reasons) > 100 and s.score == 100


# --- the queue and decisions -------------------------------------------------------------------------------


def test_queue_worst_first_and_decisions(api: Api, engine: Engine, people: list[dict[str, Any]], world: World) -> None:
    honest_day(api, people)
    mild = post_visit(api, visit(people[4], at(23, 30)))  # off hours: 10
    worse = post_visit(api, visit(people[5], at(14), minutes=0.2, mode="phone", purpose="key_person", checkin=None))
    day = {"from": DAY.isoformat(), "to": DAY.isoformat()}
    queue = api.as_("sup_street", "GET", f"{QUALITY}/queue", params=day).json()
    assert [v["id"] for v in queue["items"]] == [worse["id"], mild["id"]]
    assert queue["items"][0]["score"] == rules.WEIGHTS["too_short"] + rules.WEIGHTS["phone_for_in_person"]

    url = f"{QUALITY}/visits/{worse['id']}/decision"
    assert api.as_("sup_street", "POST", url, json={"decision": "reject", "version": 1}).json()["code"] == \
        "reason_required"
    assert api.as_("sup_street", "POST", url, json={"decision": "accept", "version": 9}).status_code == 409
    assert api.as_("worker1", "POST", url, json={"decision": "accept", "version": 1}).status_code == 403
    assert api.as_("sup_other", "POST", url, json={"decision": "accept", "version": 1}).status_code == 404
    rejected = api.as_("sup_street", "POST", url, json={"decision": "reject", "reason": "time_implausible",
                                                       "version": 1})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["review_state"] == "flagged" and rejected.json()["task_id"] is None

    due = (city_today() + timedelta(days=3)).isoformat()
    revisit = api.as_("sup_district", "POST", f"{QUALITY}/visits/{mild['id']}/decision",
                      json={"decision": "revisit", "version": 1, "due_date": due, "note": "go again"})
    assert revisit.status_code == 200, revisit.text
    task = api.as_("worker1", "GET", f"/api/v1/tasks/{revisit.json()['task_id']}").json()
    assert (task["kind"], task["reason"], task["due_date"], task["resident_id"]) == (
        "follow_up", "supervisor_request", due, people[4]["id"])
    assert api.as_("sup_street", "GET", f"{QUALITY}/queue", params=day).json()["total"] == 0

    decisions = [r for r in raw_rows(engine) if r["action"] == "visit.quality_decision"]
    assert [(d["target_id"], d["actor_id"]) for d in decisions] == [
        (worse["id"], world.users["sup_street"]), (mild["id"], world.users["sup_district"])]
    assert '"decision": "revisit"' in decisions[1]["detail"] and revisit.json()["task_id"] in decisions[1]["detail"]
    assert decisions[0]["area_path"] == people[5]["area_path"]


def test_nobody_reviews_their_own(api: Api, people: list[dict[str, Any]]) -> None:
    own = post_visit(api, visit(people[0], at(23, 40)), user="sup_street")
    answer = api.as_("sup_street", "POST", f"{QUALITY}/visits/{own['id']}/decision",
                     json={"decision": "accept", "version": 1})
    assert (answer.status_code, answer.json()["code"]) == (403, "own_visit_review")


def test_scope_and_inputs(api: Api, people: list[dict[str, Any]], world: World) -> None:
    honest_day(api, people)
    assert scored(api, user="sup_other") == {}
    assert len(scored(api, user="sup_district", division_id=world.community("c1")["id"])) == 4
    assert api.as_("sup_other", "GET", f"{QUALITY}/visits",
                   params={"division_id": world.community("c1")["id"]}).status_code == 404
    for params, code in (({"from": "2026-02-01", "to": "2026-01-01"}, "period_invalid"),
                         ({"from": "2026-01-01", "to": "2026-06-01"}, "period_too_long"),
                         ({"rule": "nonsense"}, "validation_error")):
        response = api.as_("sup_street", "GET", f"{QUALITY}/visits", params=params)
        assert response.status_code == 422 and response.json()["code"] == code, response.text
    one_end = api.as_("sup_street", "GET", f"{QUALITY}/visits", params={"from": DAY.isoformat()})
    assert one_end.status_code == 200 and one_end.json()["total"] == 4
    for user in ("worker1", "auditor"):
        assert api.as_(user, "GET", f"{QUALITY}/queue").status_code == 403
    due = {"decision": "accept", "version": 1, "due_date": city_today().isoformat()}
    assert api.as_("sup_street", "POST", f"{QUALITY}/visits/x/decision", json=due).json()["code"] == "revisit_only"
