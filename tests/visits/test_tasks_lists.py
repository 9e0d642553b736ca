"""The worker's day (/me/tasks), task lists with derived states, follow-ups created by staff, cancellation, scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from app.cycle.tasks import mine
from app.visits import geo
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.visits import API
from tests.visits.task_helpers import ME, TASKS, generate, previous_month, register_man, register_woman, task_row


def follow_up(api: Api, resident_id: str, days: int = 3, user: str = "worker1", **over: Any) -> dict[str, Any]:
    body = {"resident_id": resident_id, "due_date": (city_today() + timedelta(days=days)).isoformat(),
            "reason": "deliver_service", **over}
    response = api.as_(user, "POST", TASKS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def me(api: Api, user: str = "worker1", status: int = 200, **params: Any) -> dict[str, Any]:
    response = api.as_(user, "GET", ME, params=params)
    assert response.status_code == status, response.text
    return dict(response.json())


def listed(api: Api, user: str = "worker1", **params: Any) -> list[dict[str, Any]]:
    response = api.as_(user, "GET", TASKS, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def path_of(engine: Engine, resident_id: str) -> str:
    return str(rows(engine, "SELECT area_path FROM residents WHERE id = :r", r=resident_id)[0]["area_path"])


# --- derived states ---------------------------------------------------------------------------------------


def test_states_are_derived_from_the_due_date(api: Api, world: World) -> None:
    man = register_man(api, world)
    task = follow_up(api, man["id"], days=3)
    assert task["state"] == "open" and task["kind"] == "follow_up"
    due = city_today() + timedelta(days=3)
    for on, expected in ((due - timedelta(days=1), "open"), (due, "due"), (due + timedelta(days=1), "overdue")):
        assert api.as_("worker1", "GET", f"{TASKS}/{task['id']}", params={"on": on.isoformat()}).json()[
            "state"] == expected
        found = listed(api, state=expected, on=on.isoformat(), resident_id=man["id"], kind="follow_up")
        assert [t["id"] for t in found] == [task["id"]]
        others = [s for s in ("open", "due", "overdue") if s != expected]
        assert listed(api, state=others, on=on.isoformat(), resident_id=man["id"], kind="follow_up") == []


def test_list_filters(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    woman = register_woman(api, world)
    soon = follow_up(api, man["id"], days=2)
    later = follow_up(api, man["id"], days=20)
    cancel = api.as_("worker1", "POST", f"{TASKS}/{later['id']}/cancel",
                     json={"reason": "no_longer_needed", "version": later["version"]})
    assert cancel.status_code == 200, cancel.text
    execute(engine, "UPDATE tasks SET state = 'done' WHERE resident_id = :r AND kind = 'new_arrival_visit'",
            r=woman["id"])
    mine = {man["id"], woman["id"]}

    def ids(**params: Any) -> set[str]:
        return {t["id"] for t in listed(api, **params) if t["resident_id"] in mine}

    assert ids(state="cancelled") == {later["id"]}
    assert {t["kind"] for t in listed(api, state="done") if t["resident_id"] in mine} == {"new_arrival_visit"}
    assert ids(kind="follow_up") == {soon["id"], later["id"]}
    assert ids(resident_id=woman["id"]) == {t["id"] for t in rows(engine, "SELECT id FROM tasks WHERE resident_id "
                                                                         "= :r", r=woman["id"])}
    due_day = (city_today() + timedelta(days=2)).isoformat()
    assert ids(due_from=due_day, due_to=due_day) == {soon["id"]}
    assert ids(community_id=world.community("c2")["id"]) == set()
    page = api.as_("sup_street", "GET", TASKS, params={"limit": 1, "kind": "follow_up"}).json()
    assert (page["total"], page["limit"], len(page["items"])) == (2, 1, 1)
    assert page["items"][0]["resident"]["name"] == "李强"


# --- the worker's day ---------------------------------------------------------------------------------------


def test_my_day_lists_due_and_overdue_tasks_with_what_the_phone_needs(api: Api, world: World,
                                                                      engine: Engine) -> None:
    generate(api, previous_month(city_today()), "sup_street")  # overdue by now
    man = register_man(api, world, phone="13912345678")
    today_task = follow_up(api, man["id"], days=0)
    soon = follow_up(api, man["id"], days=5)
    day = me(api)
    assert day["on"] == city_today().isoformat() and day["coord_system"] == "wgs84" and not day["truncated"]
    items = day["items"]
    assert day["total"] == len(items) > 1
    assert [t["due_date"] for t in items] == sorted(t["due_date"] for t in items)
    states = {t["id"]: t["state"] for t in items}
    assert states[today_task["id"]] == "due" and soon["id"] not in states
    assert {s for i, s in states.items() if i != today_task["id"]} == {"overdue"}
    mine = next(t for t in items if t["id"] == today_task["id"])
    dwelling = rows(engine, "SELECT d.id, d.address, d.lat, d.lng FROM residents r JOIN dwellings d "
                            "ON d.id = r.dwelling_id WHERE r.id = :r", r=man["id"])[0]
    assert mine["dwelling"] == dwelling and mine["distance_m"] is None
    assert mine["resident"] == {"id": man["id"], "name": "李强", "sex": "M", "age": mine["resident"]["age"],
                                "key_person": False, "phone_masked": "139****5678"}
    c1_path = world.community("c1")["path"]
    for task in items:
        assert task_row(engine, task["id"])["area_path"].startswith(c1_path)
    # Coming up: tasks due within the next days, and any date to plan for.
    upcoming = {t["id"] for t in me(api, upcoming_days=5)["items"]}
    assert soon["id"] in upcoming and today_task["id"] in upcoming
    assert today_task["id"] not in {t["id"] for t in me(api, on=(city_today() - timedelta(days=1)).isoformat())[
        "items"]}


def test_my_day_by_distance_from_a_gcj02_point(api: Api, world: World, engine: Engine) -> None:
    generate(api, previous_month(city_today()), "sup_street")
    items = me(api)["items"]
    assert len(items) > 3
    target = items[-1]
    # One resident's dwelling has no coordinates: that task goes last.
    unlocated = items[0]
    execute(engine, "UPDATE dwellings SET lat = NULL, lng = NULL WHERE id = :d", d=unlocated["dwelling"]["id"])
    lat, lng = geo.wgs84_to_gcj02(target["dwelling"]["lat"], target["dwelling"]["lng"])
    day = me(api, order="distance", lat=lat, lng=lng, coord_system="gcj02")
    ordered = day["items"]
    assert ordered[0]["dwelling"]["id"] == target["dwelling"]["id"] and ordered[0]["distance_m"] < 1
    assert ordered[-1]["dwelling"]["id"] == unlocated["dwelling"]["id"] and ordered[-1]["distance_m"] is None
    distances = [t["distance_m"] for t in ordered if t["distance_m"] is not None]
    assert len(distances) == len(ordered) - sum(1 for t in ordered if t["dwelling"]["id"] ==
                                                unlocated["dwelling"]["id"])
    assert distances == sorted(distances) and distances[-1] > 50
    # The answer's coordinates are in the system asked for (what a Chinese map SDK draws).
    assert (day["coord_system"], ordered[0]["dwelling"]["lat"], ordered[0]["dwelling"]["lng"]) == (
        "gcj02", pytest.approx(lat, abs=1e-9), pytest.approx(lng, abs=1e-9))
    wgs = me(api, order="distance", lat=target["dwelling"]["lat"], lng=target["dwelling"]["lng"])
    assert [t["id"] for t in wgs["items"]] == [t["id"] for t in ordered]
    assert wgs["items"][0]["distance_m"] < 1 and wgs["items"][0]["dwelling"] == target["dwelling"]
    # By due date with a point: distances are given too.
    assert all(t["distance_m"] is not None for t in me(api, lat=lat, lng=lng, coord_system="gcj02")["items"]
               if t["dwelling"]["id"] != unlocated["dwelling"]["id"])


def test_my_day_is_limited(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(api, previous_month(city_today()), "sup_street")
    monkeypatch.setattr(mine, "MY_TASKS_LIMIT", 2)
    day = me(api)
    assert (len(day["items"]), day["limit"], day["truncated"]) == (2, 2, True) and day["total"] > 2


@pytest.mark.parametrize(("params", "code"), [
    ({"order": "distance"}, "point_required"),
    ({"order": "distance", "lat": 34.7}, "coordinates_incomplete"),
    ({"lng": 113.6}, "coordinates_incomplete"),
    ({"upcoming_days": 32}, "validation_error"),
    ({"lat": 91, "lng": 113.6}, "validation_error"),
    ({"lat": "nan", "lng": 113.6}, "validation_error"),
    ({"coord_system": "bd09", "lat": 34.7, "lng": 113.6}, "validation_error"),
    ({"order": "nearest"}, "validation_error"),
])
def test_my_day_refuses_bad_parameters(api: Api, params: dict[str, Any], code: str) -> None:
    assert me(api, status=422, **params)["code"] == code


@pytest.mark.parametrize("user", ["admin", "auditor"])
def test_my_day_is_for_field_staff(api: Api, user: str) -> None:
    assert me(api, user, status=403)["code"] == "forbidden"


# --- scope ------------------------------------------------------------------------------------------------


def test_others_see_nothing_of_my_area(api: Api, world: World, engine: Engine) -> None:
    generate(api, previous_month(city_today()), "sup_street")
    man = register_man(api, world)
    task = follow_up(api, man["id"], days=0)
    c1_tasks = {r["id"] for r in rows(engine, "SELECT id FROM tasks WHERE community_id = :c",
                                      c=world.community("c1")["id"])}
    for user in ("worker2", "worker3", "sup_other"):
        assert not {t["id"] for t in me(api, user, upcoming_days=31)["items"]} & c1_tasks
        assert not {t["id"] for t in listed(api, user)} & c1_tasks
        response = api.as_(user, "GET", f"{TASKS}/{task['id']}")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert api.as_("auditor", "GET", TASKS).status_code == 403


def test_a_grid_worker_sees_only_their_grid(api: Api, world: World, engine: Engine) -> None:
    generate(api, previous_month(city_today()), "sup_street")
    grid_path = world.grids[world.community("c1")["id"]][0]["path"]
    seen = me(api, "grid_worker")["items"]
    expected = {r["id"] for r in rows(engine, "SELECT id FROM tasks WHERE area_path LIKE :p AND state = 'open'",
                                      p=grid_path + "%")}
    assert seen and {t["id"] for t in seen} == expected
    assert len(me(api)["items"]) > len(seen)
    assert {t["id"] for t in listed(api, "grid_worker")} == expected


# --- staff follow-ups --------------------------------------------------------------------------------------


def test_a_worker_creates_a_follow_up(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    task = follow_up(api, man["id"], days=10, note="带宣传资料")
    row = task_row(engine, task["id"])
    assert (row["kind"], row["state"], row["created_by"], row["reason"], row["note"], row["source_visit_id"]) == (
        "follow_up", "open", world.users["worker1"], "deliver_service", "带宣传资料", None)
    assert len(row["period"]) == 32 and row["area_path"] == path_of(engine, man["id"])
    assert str(row["due_date"]) == (city_today() + timedelta(days=10)).isoformat()
    assert task["resident"]["id"] == man["id"] and task["created_by"] == world.users["worker1"]
    # Two follow-ups for the same person are two tasks.
    follow_up(api, man["id"], days=10, user="sup_street")
    assert rows(engine, "SELECT count(*) AS n FROM tasks WHERE kind = 'follow_up' AND resident_id = :r",
                r=man["id"])[0]["n"] == 2


@pytest.mark.parametrize(("over", "code"), [
    ({"days": -1}, "due_date_past"),
    ({"days": 367}, "due_date_too_far"),
    ({"reason": "pregnancy"}, "validation_error"),
    ({"note": "x" * 201}, "validation_error"),
    ({"note": "a\x00b"}, "nul_byte"),
    ({"extra": 1}, "validation_error"),
])
def test_follow_up_input_is_checked(api: Api, world: World, engine: Engine, over: dict[str, Any],
                                    code: str) -> None:
    man = register_man(api, world)
    days = over.pop("days", 3)
    body = {"resident_id": man["id"], "due_date": (city_today() + timedelta(days=days)).isoformat(),
            "reason": "other", **over}
    response = api.as_("worker1", "POST", TASKS, json=body)
    assert response.status_code == 422 and response.json()["code"] == code, response.text
    assert rows(engine, "SELECT count(*) AS n FROM tasks WHERE kind = 'follow_up'")[0]["n"] == 0


def test_follow_up_edges_of_the_date_range(api: Api, world: World) -> None:
    man = register_man(api, world)
    assert follow_up(api, man["id"], days=0)["state"] == "due"
    assert follow_up(api, man["id"], days=366)["state"] == "open"


def test_follow_up_refusals(api: Api, world: World, engine: Engine) -> None:
    far = register_man(api, world, community="c3", user="worker3")
    assert api.as_("worker1", "POST", TASKS, json={
        "resident_id": far["id"], "due_date": city_today().isoformat(), "reason": "other"}).status_code == 404
    gone = register_man(api, world, seq="051")
    left = api.as_("worker1", "POST", f"{API}/residents/{gone['id']}/leave",
                   json={"version": gone["version"], "left_on": city_today().isoformat(), "reason": "left_city"})
    assert left.status_code == 200
    body = {"resident_id": gone["id"], "due_date": city_today().isoformat(), "reason": "other"}
    response = api.as_("worker1", "POST", TASKS, json=body)
    assert response.status_code == 409 and response.json()["code"] == "resident_not_registered"
    for user in ("admin", "auditor"):
        assert api.as_(user, "POST", TASKS, json=body).json()["code"] == "forbidden"
    assert rows(engine, "SELECT count(*) AS n FROM tasks WHERE kind = 'follow_up'")[0]["n"] == 0


# --- cancellation ------------------------------------------------------------------------------------------


def cancel(api: Api, user: str, task: dict[str, Any], version: int | None = None,
           reason: str = "created_in_error") -> Any:
    return api.as_(user, "POST", f"{TASKS}/{task['id']}/cancel",
                   json={"reason": reason, "version": task["version"] if version is None else version})


def test_a_worker_cancels_their_own_follow_up(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    task = follow_up(api, man["id"])
    response = cancel(api, "worker1", task)
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["version"]) == ("cancelled", 2)
    row = task_row(engine, task["id"])
    assert (row["state"], row["cancel_reason"], row["cancelled_by"]) == (
        "cancelled", "created_in_error", world.users["worker1"])
    again = cancel(api, "worker1", task, version=2)
    assert again.status_code == 409 and again.json()["code"] == "task_closed"


def test_workers_may_not_cancel_system_tasks_or_others_follow_ups(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    arrival = api.as_("worker1", "GET", TASKS, params={"resident_id": man["id"]}).json()["items"][0]
    theirs = follow_up(api, man["id"], user="sup_street")
    for task in (arrival, theirs):
        response = cancel(api, "worker1", task)
        assert response.status_code == 403 and response.json()["code"] == "task_cancel_forbidden"
        assert task_row(engine, task["id"])["state"] == "open"
    # A supervisor may cancel any task in their area.
    assert cancel(api, "sup_street", arrival, reason="duplicate_task").status_code == 200
    assert cancel(api, "sup_district", theirs).status_code == 200
    assert task_row(engine, arrival["id"])["cancelled_by"] == world.users["sup_street"]


def test_cancel_refusals(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    task = follow_up(api, man["id"])
    stale = cancel(api, "worker1", task, version=5)
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    assert stale.json()["details"] == {"current_version": 1}
    assert cancel(api, "worker2", task).status_code == 404
    assert cancel(api, "sup_other", task).status_code == 404
    assert cancel(api, "auditor", task).json()["code"] == "forbidden"
    bad = api.as_("worker1", "POST", f"{TASKS}/{task['id']}/cancel", json={"reason": "bored", "version": 1})
    assert bad.status_code == 422
    assert api.as_("worker1", "POST", f"{TASKS}/{'0' * 32}/cancel",
                   json={"reason": "other", "version": 1}).status_code == 404
    execute(engine, "UPDATE tasks SET state = 'done' WHERE id = :t", t=task["id"])
    closed = cancel(api, "sup_street", task)
    assert closed.status_code == 409 and closed.json()["code"] == "task_closed"
    assert task_row(engine, task["id"])["state"] == "done"
