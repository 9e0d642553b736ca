"""Worker activity: the figures equal those counted by hand from what the test did."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.types import CITY_TZ, city_today
from tests.audit.helpers import DAY, at, visit
from tests.conftest import Api, World
from tests.db import execute
from tests.factories import post_visit
from tests.visits import resident

ACTIVITY = "/api/v1/audit/activity"
SETTINGS = get_settings()


def task(api: Api, user: str, who: dict[str, Any], days: int) -> str:
    response = api.as_(user, "POST", "/api/v1/tasks", json={
        "resident_id": who["id"], "reason": "other", "due_date": (city_today() + timedelta(days=days)).isoformat()})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_activity_figures_by_hand(api: Api, engine: Engine, world: World) -> None:
    p = [resident(engine, world, skip=i) for i in range(6)]
    other = resident(engine, world, community="c2")
    # Yesterday: worker1 three visits in person (one at 23:10, off hours) and a phone call, corrected once.
    post_visit(api, visit(p[0], at(9)))
    post_visit(api, visit(p[1], at(10)))
    post_visit(api, visit(p[2], at(23, 10)))
    call = post_visit(api, visit(p[3], at(11), mode="phone", checkin=None))
    fix = {k: v for k, v in visit(p[3], at(11, 5), mode="phone", checkin=None).items() if k != "resident_id"}
    corrected = api.as_("worker1", "POST", f"/api/v1/visits/{call['id']}/corrections",
                        json={**fix, "correction_reason": "wrong_time"})
    assert corrected.status_code == 201, corrected.text
    post_visit(api, visit(other, at(9)), user="worker2")
    # Tasks: open, open, done on time, overdue, cancelled (not counted); one open in c2.
    task(api, "worker1", p[0], 2)
    task(api, "worker1", p[1], 5)
    done = task(api, "worker1", p[2], 3)
    overdue = task(api, "worker1", p[4], 1)
    cancelled = task(api, "worker1", p[5], 4)
    assert api.as_("worker1", "POST", f"/api/v1/tasks/{cancelled}/cancel",
                   json={"reason": "other", "version": 1}).status_code == 200
    task(api, "worker2", other, 2)
    execute(engine, "UPDATE tasks SET due_date = :d WHERE id = :t", d=DAY, t=overdue)
    # A 45-second call from now: within the clock's tolerance (one that ends minutes ahead is `clock_ahead`).
    now = datetime.now(UTC) + timedelta(seconds=1)
    completing = post_visit(api, {**visit(p[2], now, minutes=0.75), "mode": "phone", "checkin": None})
    assert completing["tasks_completed"] == [done]
    hour = now.astimezone(CITY_TZ).hour
    late_call = int(not SETTINGS.work_start_hour <= hour < SETTINGS.work_end_hour)
    # worker1's phone, with its clock 5 s ahead.
    ahead = str(int(clock.time() * 1000) + 5000)
    pulled = api.as_("worker1", "GET", "/api/v1/sync/pull", params={"schema_version": 1}, headers={
        "X-Device-Id": "activity-phone-01", "X-App-Version": "2.1.0", "X-Device-Time": ahead})
    assert pulled.status_code == 200, pulled.text

    period = {"from": DAY.isoformat(), "to": (city_today() + timedelta(days=10)).isoformat()}
    got = api.as_("sup_street", "GET", ACTIVITY, params=period)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["from"], body["group"]) == (DAY.isoformat(), "worker")
    rows = {r["id"]: r for r in body["rows"]}
    w1, w2 = rows[world.users["worker1"]], rows[world.users["worker2"]]
    assert w1["visits"] == {"total": 5, "in_person": 3, "phone": 2}
    assert w1["flagged"] == 1 + late_call and w1["flagged_share"] == round((1 + late_call) / 5, 4)
    assert w1["tasks"] == {"due": 4, "on_time": 1, "late": 0, "overdue": 1, "open": 2}
    assert w2["visits"] == {"total": 1, "in_person": 1, "phone": 0}
    assert w2["flagged"] == 0 and w2["flagged_share"] == 0
    assert w2["tasks"] == {"due": 1, "on_time": 0, "late": 0, "overdue": 0, "open": 1}
    assert w1["verification_coverage"] is None and w1["report_timeliness"] is None
    assert world.users["grid_worker"] in rows and world.users["worker3"] not in rows
    (device,) = w1["devices"]
    assert (device["device_id"], device["app_version"], device["pulls"], device["rejected_total"]) == (
        "activity-phone-01", "2.1.0", 1, 0)
    assert 0 < device["clock_skew_ms"] < 65_000 and device["last_sync_at"] is not None
    assert w2["devices"] == []
    assert body["totals"]["visits"] == {"total": 6, "in_person": 4, "phone": 2}
    assert body["totals"]["tasks"] == {"due": 5, "on_time": 1, "late": 0, "overdue": 1, "open": 3}

    c1, c2 = world.community("c1"), world.community("c2")
    by_place = {r["id"]: r for r in api.as_("sup_street", "GET", ACTIVITY,
                                            params={**period, "group": "community"}).json()["rows"]}
    assert by_place[c1["id"]]["visits"] == w1["visits"] and by_place[c1["id"]]["tasks"] == w1["tasks"]
    assert by_place[c2["id"]]["visits"] == w2["visits"] and by_place[c2["id"]]["devices"] is None
    assert by_place[c1["id"]]["code"] == c1["code"]
    street = api.as_("sup_district", "GET", ACTIVITY, params={**period, "group": "street"}).json()["rows"]
    mine = next(r for r in street if r["id"] == c1["parent_id"])
    assert mine["visits"] == body["totals"]["visits"] and mine["tasks"] == body["totals"]["tasks"]
    (district,) = api.as_("sup_district", "GET", ACTIVITY, params={**period, "group": "district"}).json()["rows"]
    assert district["code"] == c1["district_code"] and district["visits"]["total"] == 6
    # Another district's supervisor sees none of it; narrowing to c1 keeps only c1.
    other_rows = api.as_("sup_other", "GET", ACTIVITY, params={**period, "group": "community"}).json()["rows"]
    assert all(r["visits"]["total"] == 0 for r in other_rows) and c1["id"] not in {r["id"] for r in other_rows}
    narrowed = api.as_("sup_district", "GET", ACTIVITY, params={**period, "group": "community",
                                                               "division_id": c1["id"]}).json()["rows"]
    assert [r["id"] for r in narrowed] == [c1["id"]]


def test_activity_access(api: Api, world: World) -> None:
    for user in ("worker1", "auditor"):
        assert api.as_(user, "GET", ACTIVITY).status_code == 403
    assert api.as_("sup_other", "GET", ACTIVITY, params={"division_id": world.community("c1")["id"]}
                   ).status_code == 404
    assert api.as_("sup_street", "GET", ACTIVITY, params={"group": "planet"}).status_code == 422
    assert api.as_("admin", "GET", ACTIVITY, params={"group": "district"}).status_code == 200
