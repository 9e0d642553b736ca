"""Visits complete tasks: which visit discharges which task, late visits from offline phones, tasks generated after
their visit already arrived, and follow-ups."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.types import CITY_TZ, city_today
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import iso, post_visit, visit_body, visit_start
from tests.visits import now
from tests.visits.task_helpers import (
    TASKS,
    generate,
    month_of,
    previous_month,
    register_man,
    register_woman,
    task_row,
    tasks_of,
)


def located(engine: Engine, resident: dict[str, Any]) -> dict[str, Any]:
    """The resident with their dwelling's coordinates, as the visit helpers want it."""
    row = rows(engine, "SELECT r.id, r.dwelling_id, r.area_path, d.lat, d.lng FROM residents r "
                       "JOIN dwellings d ON d.id = r.dwelling_id WHERE r.id = :r", r=resident["id"])[0]
    assert row["lat"] is not None
    return row


def at_city_time(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CITY_TZ)


def phone_visit(who: dict[str, Any], start: datetime, outcome: str = "met") -> dict[str, Any]:
    return visit_body(who, mode="phone", outcome=outcome, checkin=None, started_at=iso(start),
                      ended_at=iso(start + timedelta(minutes=5)))


def a_key_person(engine: Engine, world: World, skip: int = 0) -> dict[str, Any]:
    """A demo key person of community c1 with no visits yet."""
    found = rows(engine, "SELECT r.id, r.dwelling_id, r.area_path, d.lat, d.lng FROM residents r "
                         "JOIN dwellings d ON d.id = r.dwelling_id WHERE r.community_id = :c AND r.key_person "
                         "AND r.status = 'REGISTERED' AND d.lat IS NOT NULL AND NOT EXISTS "
                         "(SELECT 1 FROM visits v WHERE v.resident_id = r.id) ORDER BY r.id",
                 c=world.community("c1")["id"])
    return found[skip]


def state(engine: Engine, task_id: str) -> tuple[str, str | None]:
    task = task_row(engine, task_id)
    return task["state"], task["completed_by_visit_id"]


# --- new arrivals ------------------------------------------------------------------------------------------


def test_an_in_person_visit_completes_the_new_arrival(api: Api, world: World, engine: Engine) -> None:
    man = located(engine, register_man(api, world))
    [task] = tasks_of(engine, man["id"])
    visit = post_visit(api, visit_body(man, purpose="new_arrival"))
    done = task_row(engine, task["id"])
    assert (done["state"], done["completed_by_visit_id"], done["version"]) == ("done", visit["id"], 2)
    assert done["completed_at"] is not None
    assert visit["tasks_completed"] == [task["id"]]
    shown = api.as_("worker1", "GET", f"{TASKS}/{task['id']}").json()
    assert (shown["state"], shown["completed_by_visit_id"]) == ("done", visit["id"])


def test_visits_that_do_not_complete_a_new_arrival(api: Api, world: World, engine: Engine) -> None:
    man = located(engine, register_man(api, world))
    [task] = tasks_of(engine, man["id"])
    post_visit(api, visit_body(man, outcome="not_home"))
    post_visit(api, visit_body(man, mode="phone", checkin=None))  # met, but by phone
    post_visit(api, visit_body(man, outcome="refused"))
    yesterday = now() - timedelta(days=1, hours=1)  # before he was registered here (an offline phone)
    post_visit(api, visit_body(man, started_at=iso(yesterday), ended_at=iso(yesterday + timedelta(minutes=5)),
                               checkin=None, no_coordinates_reason="gps_unavailable"))
    assert state(engine, task["id"]) == ("open", None)


# --- key persons -------------------------------------------------------------------------------------------


def test_a_met_visit_this_month_completes_the_monthly_task_only(api: Api, world: World, engine: Engine) -> None:
    woman = located(engine, register_woman(api, world))
    by_kind = {t["kind"]: t for t in tasks_of(engine, woman["id"])}
    visit = post_visit(api, visit_body(woman, mode="phone", checkin=None, purpose="key_person"))
    assert state(engine, by_kind["key_person_monthly"]["id"]) == ("done", visit["id"])
    assert state(engine, by_kind["new_arrival_visit"]["id"]) == ("open", None)  # a phone call is not enough


def test_not_home_leaves_the_monthly_task_open(api: Api, world: World, engine: Engine) -> None:
    who = a_key_person(engine, world)
    month = month_of(city_today())
    generate(api, month)
    [task] = tasks_of(engine, who["id"], "key_person_monthly")
    post_visit(api, visit_body(who, outcome="not_home"))
    post_visit(api, visit_body(who, mode="phone", checkin=None, outcome="unreachable"))
    assert state(engine, task["id"]) == ("open", None)


def test_a_visit_in_another_month_does_not_count(api: Api, world: World, engine: Engine) -> None:
    who = a_key_person(engine, world)
    last = previous_month(city_today())
    generate(api, last)
    [task] = tasks_of(engine, who["id"], "key_person_monthly")
    visit = post_visit(api, phone_visit(who, visit_start()))
    assert month_of(city_today()) != last and state(engine, task["id"]) == ("open", None)
    assert visit["tasks_completed"] == []


def test_a_late_visit_completes_the_month_it_was_made_in(api: Api, world: World, engine: Engine) -> None:
    """Recorded after the month ended, from an offline phone: the visit's local start date decides."""
    who, other = a_key_person(engine, world), a_key_person(engine, world, skip=1)
    first_of_month = city_today().replace(day=1)
    last_day = first_of_month - timedelta(days=1)
    last = month_of(last_day)
    generate(api, last)
    [task] = tasks_of(engine, who["id"], "key_person_monthly")
    [untouched] = tasks_of(engine, other["id"], "key_person_monthly")
    # 23:30 on the month's last day in the city is 15:30 UTC: still last month.
    late = post_visit(api, phone_visit(who, at_city_time(last_day, 23, 30)))
    assert state(engine, task["id"]) == ("done", late["id"])
    # 00:30 on the 1st in the city is still the previous day in UTC, but it is this month's visit.
    post_visit(api, phone_visit(other, at_city_time(first_of_month, 0, 30)))
    assert state(engine, untouched["id"]) == ("open", None)


def test_generation_after_the_visit_creates_the_task_done(api: Api, world: World, engine: Engine) -> None:
    who, other = a_key_person(engine, world), a_key_person(engine, world, skip=1)
    last_day = city_today().replace(day=1) - timedelta(days=1)
    visit = post_visit(api, phone_visit(who, at_city_time(last_day, 10)))
    post_visit(api, phone_visit(other, at_city_time(last_day, 10), outcome="not_home"))
    assert tasks_of(engine, who["id"]) == []
    counts = generate(api, month_of(last_day))
    assert counts["completed_by_visits"] == 1 and counts["created"] > 1
    [task] = tasks_of(engine, who["id"], "key_person_monthly")
    assert (task["state"], task["completed_by_visit_id"]) == ("done", visit["id"]) and task["completed_at"]
    assert [t["state"] for t in tasks_of(engine, other["id"])] == ["open"]


def test_a_new_key_person_already_visited_this_month_gets_a_done_task(api: Api, world: World,
                                                                      engine: Engine) -> None:
    """The same rule when the task comes from the register (a woman registered after a visit arrived)."""
    woman = located(engine, register_woman(api, world))
    visit = post_visit(api, visit_body(woman, mode="phone", checkin=None))
    monthly = tasks_of(engine, woman["id"], "key_person_monthly")[0]
    rows_before = len(tasks_of(engine, woman["id"]))
    # As if the month's task had not been made yet: the generator finds the visit.
    execute(engine, "DELETE FROM tasks WHERE id = :t", t=monthly["id"])
    assert generate(api, month_of(city_today()))["completed_by_visits"] >= 1
    [again] = tasks_of(engine, woman["id"], "key_person_monthly")
    assert (again["state"], again["completed_by_visit_id"]) == ("done", visit["id"])
    assert len(tasks_of(engine, woman["id"])) == rows_before


# --- follow-ups --------------------------------------------------------------------------------------------


def test_a_visit_asks_for_a_follow_up_and_a_later_visit_completes_it(api: Api, world: World,
                                                                     engine: Engine) -> None:
    man = located(engine, register_man(api, world))
    due = (city_today() + timedelta(days=7)).isoformat()
    first = post_visit(api, visit_body(man, outcome="not_home", follow_up={"due_date": due,
                                                                           "reason": "not_home_retry"}))
    [follow_up] = tasks_of(engine, man["id"], "follow_up")
    assert (follow_up["period"], follow_up["source_visit_id"], follow_up["created_by"], follow_up["reason"],
            str(follow_up["due_date"]), follow_up["state"]) == (
        first["id"], first["id"], world.users["worker1"], "not_home_retry", due, "open")
    assert first["tasks_created"] == [follow_up["id"]]
    start = max(now() - timedelta(minutes=2), visit_start() + timedelta(seconds=30))  # after the first, today
    second = post_visit(api, visit_body(man, started_at=iso(start), ended_at=iso(start + timedelta(minutes=1)),
                                        checkin=None, no_coordinates_reason="indoors_no_signal"))
    assert state(engine, follow_up["id"]) == ("done", second["id"])


def test_a_met_visit_with_a_follow_up_does_not_complete_its_own(api: Api, world: World, engine: Engine) -> None:
    man = located(engine, register_man(api, world))
    due = (city_today() + timedelta(days=3)).isoformat()
    visit = post_visit(api, visit_body(man, follow_up={"due_date": due, "reason": "deliver_service"}))
    [follow_up] = tasks_of(engine, man["id"], "follow_up")
    assert state(engine, follow_up["id"]) == ("open", None)
    assert state(engine, tasks_of(engine, man["id"], "new_arrival_visit")[0]["id"]) == ("done", visit["id"])


def test_a_staff_follow_up_needs_a_visit_started_after_it(api: Api, world: World, engine: Engine) -> None:
    man = located(engine, register_man(api, world))
    created = api.as_("worker1", "POST", TASKS, json={
        "resident_id": man["id"], "due_date": (city_today() + timedelta(days=2)).isoformat(),
        "reason": "document_check"})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    earlier = now() - timedelta(hours=2)  # made offline before the task existed
    post_visit(api, visit_body(man, mode="phone", checkin=None, started_at=iso(earlier),
                               ended_at=iso(earlier + timedelta(minutes=5))))
    assert state(engine, task_id) == ("open", None)
    later = post_visit(api, visit_body(man, mode="phone", checkin=None, started_at=iso(now()),
                                       ended_at=iso(now() + timedelta(seconds=30))))
    assert state(engine, task_id) == ("done", later["id"])
