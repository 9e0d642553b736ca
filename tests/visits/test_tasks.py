"""Tasks: how they are created (registration, key persons, the monthly generator, the CLI) and how the register's
moves, departures, merges and transfers carry or cancel them. Helpers here are shared by the other task tests."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import get_settings
from app.core.types import city_today
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import id_number
from tests.people.import_helpers import csv_file, person, upload
from tests.visits import API
from tests.visits.task_helpers import (
    RESIDENTS,
    TASKS,
    detail,
    generate,
    key_person_due,
    key_persons,
    month_end,
    month_of,
    previous_month,
    register_man,
    register_woman,
    task_row,
    tasks_of,
)

# --- created on registration ---------------------------------------------------------------------------


def test_registration_creates_a_new_arrival_visit(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    today = city_today()
    [task] = tasks_of(engine, man["id"])
    assert (task["kind"], task["period"], str(task["due_date"]), task["state"]) == (
        "new_arrival_visit", today.isoformat(), (today + timedelta(days=get_settings().new_arrival_visit_days))
        .isoformat(), "open")
    assert task["created_by"] is None and task["community_id"] == world.community("c1")["id"]
    assert task["area_path"] == rows(engine, "SELECT area_path FROM residents WHERE id = :r", r=man["id"])[0][
        "area_path"]
    listed = api.as_("worker1", "GET", f"{TASKS}/{task['id']}").json()
    assert listed["state"] == "open" and listed["resident"]["id"] == man["id"]
    assert listed["resident"]["sex"] == "M" and listed["resident"]["key_person"] is False


def test_a_key_person_gets_this_months_visit_task(api: Api, world: World, engine: Engine) -> None:
    woman = register_woman(api, world)
    today = city_today()
    month = month_of(today)
    due = key_person_due(month)
    if due < today:  # registered after the month's due day: due by the month's end
        due = month_end(today)
    tasks = tasks_of(engine, woman["id"])
    assert [(t["kind"], t["period"]) for t in tasks] == [("key_person_monthly", month),
                                                         ("new_arrival_visit", today.isoformat())]
    assert str(tasks[0]["due_date"]) == due.isoformat() and tasks[0]["state"] == "open"


def test_becoming_a_key_person_adds_the_months_task(api: Api, world: World, engine: Engine) -> None:
    woman = register_woman(api, world)
    health = {"version": 0, "contraception": "iud", "contraception_since": "2020-01-01", "pregnancy": "not_pregnant"}
    doc = api.as_("worker1", "POST", f"{RESIDENTS}/{woman['id']}/fp-documents", json={"status": "valid"})
    assert doc.status_code == 201, doc.text
    put = api.as_("worker1", "PUT", f"{RESIDENTS}/{woman['id']}/health", params={"purpose": "visit"}, json=health)
    assert put.status_code == 200, put.text
    assert rows(engine, "SELECT key_person FROM residents WHERE id = :r", r=woman["id"])[0]["key_person"] in (0, False)
    # As if she had not been a key person when the month began.
    execute(engine, "DELETE FROM tasks WHERE resident_id = :r AND kind = 'key_person_monthly'", r=woman["id"])
    pregnant = {**health, "version": put.json()["version"], "pregnancy": "pregnant"}
    put = api.as_("worker1", "PUT", f"{RESIDENTS}/{woman['id']}/health", params={"purpose": "visit"}, json=pregnant)
    assert put.status_code == 200, put.text
    [task] = tasks_of(engine, woman["id"], "key_person_monthly")
    assert task["period"] == month_of(city_today()) and task["state"] == "open"


def test_import_creates_no_new_arrival_tasks(api: Api, world: World, engine: Engine) -> None:
    """An imported register is existing stock, not new arrivals (returning people included)."""
    gone = register_man(api, world, seq="031")
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{gone['id']}/leave",
                   json={"version": gone["version"], "left_on": city_today().isoformat(), "reason": "returned_home"})
    assert left.status_code == 200, left.text
    before = rows(engine, "SELECT count(*) AS n FROM tasks")[0]["n"]
    records = [person(world, 公民身份号码=id_number(seq="131")),
               person(world, 姓名=gone["name"], 公民身份号码=gone["id_number"])]
    done = upload(api, "worker1", csv_file(records), dry_run=False)
    assert done.status_code == 201, done.text
    assert (done.json()["created"], done.json()["reregistered"]) == (1, 1)
    assert rows(engine, "SELECT count(*) AS n FROM tasks WHERE state = 'open'")[0]["n"] == 0
    assert rows(engine, "SELECT count(*) AS n FROM tasks")[0]["n"] == before


# --- the monthly generator --------------------------------------------------------------------------------


def test_generation_is_idempotent(api: Api, world: World, engine: Engine) -> None:
    month = month_of(city_today())
    district_path = next(d["path"] for d in world.districts if d["code"] == world.community("c1")["district_code"])
    expected = key_persons(engine, district_path)
    assert len(expected) > 10
    first = generate(api, month)
    assert first == {"month": month, "created": len(expected), "existing": 0, "completed_by_visits": 0}
    again = generate(api, month)
    assert again == {"month": month, "created": 0, "existing": len(expected), "completed_by_visits": 0}
    made = rows(engine, "SELECT resident_id, due_date, state, created_by, area_path FROM tasks "
                        "WHERE kind = 'key_person_monthly' AND period = :m", m=month)
    assert {t["resident_id"] for t in made} == expected and len(made) == len(expected)
    assert {(str(t["due_date"]), t["state"], t["created_by"]) for t in made} == {
        (key_person_due(month).isoformat(), "open", None)}
    assert all(t["area_path"].startswith(district_path) for t in made)
    events = [detail(e) for e in rows(engine, "SELECT detail FROM audit_events WHERE action = 'tasks.generate' "
                                              "ORDER BY id")]
    assert events == [{"month": month, "created": len(expected), "existing": 0, "completed_by_visits": 0},
                      {"month": month, "created": 0, "existing": len(expected), "completed_by_visits": 0}]


def test_generation_is_limited_to_the_callers_area(api: Api, world: World, engine: Engine) -> None:
    month = previous_month(city_today())
    street = next(s for s in world.streets if s["id"] == world.community("c1")["parent_id"])
    assert generate(api, month, "sup_street")["created"] == len(key_persons(engine, street["path"]))
    paths = [r["area_path"] for r in rows(engine, "SELECT area_path FROM tasks WHERE period = :m", m=month)]
    assert paths and all(p.startswith(street["path"]) for p in paths)
    everyone = key_persons(engine)
    assert generate(api, month, "admin") == {"month": month, "created": len(everyone) - len(paths),
                                             "existing": len(paths), "completed_by_visits": 0}


def test_generation_skips_people_who_are_not_registered_key_persons(api: Api, world: World, engine: Engine) -> None:
    woman = register_woman(api, world)
    man = register_man(api, world)
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{woman['id']}/leave",
                   json={"version": woman["version"], "left_on": city_today().isoformat(), "reason": "left_city"})
    assert left.status_code == 200, left.text
    month = previous_month(city_today())
    generate(api, month)
    assert [t["period"] for t in tasks_of(engine, woman["id"], "key_person_monthly")] == [month_of(city_today())]
    assert tasks_of(engine, man["id"], "key_person_monthly") == []


@pytest.mark.parametrize("user", ["worker1", "grid_worker", "auditor"])
def test_workers_and_auditors_may_not_generate(api: Api, engine: Engine, user: str) -> None:
    response = api.as_(user, "POST", f"{TASKS}/generate", json={"month": month_of(city_today())})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert rows(engine, "SELECT count(*) AS n FROM tasks")[0]["n"] == 0


@pytest.mark.parametrize(("month", "code"), [("2026-13", "validation_error"), ("26-11", "validation_error"),
                                             ("1999-01", "validation_error"), ("future", "month_out_of_range"),
                                             ("past", "month_out_of_range")])
def test_generation_month_must_be_valid_and_near(api: Api, engine: Engine, month: str, code: str) -> None:
    today = city_today()
    if month == "future":
        month = month_of(month_end(month_end(today) + timedelta(days=1)) + timedelta(days=1))  # two months ahead
    elif month == "past":
        month = f"{today.year - 1:04d}-{today.month:02d}"
        month = previous_month(date.fromisoformat(month + "-01"))  # 13 months back
    response = api.as_("sup_district", "POST", f"{TASKS}/generate", json={"month": month})
    assert response.status_code == 422 and response.json()["code"] == code, response.text
    assert rows(engine, "SELECT count(*) AS n FROM tasks")[0]["n"] == 0


def test_generation_accepts_next_month_and_a_year_back(api: Api) -> None:
    today = city_today()
    assert generate(api, month_of(month_end(today) + timedelta(days=1)))["created"] > 0
    assert generate(api, f"{today.year - 1:04d}-{today.month:02d}")["created"] > 0


def test_cli_generates_city_wide(engine: Engine) -> None:
    runner = CliRunner()
    month = month_of(city_today())
    result = runner.invoke(cli, ["tasks-generate"], prog_name="migrant")
    assert result.exit_code == 0, result.output
    total = len(key_persons(engine))
    assert f"{month}: {total} key-person tasks created" in result.output
    again = runner.invoke(cli, ["tasks-generate", "--month", month], prog_name="migrant")
    assert again.exit_code == 0 and f"0 key-person tasks created (0 already done by visits), {total} existed" in \
        again.output
    assert rows(engine, "SELECT count(*) AS n FROM tasks WHERE period = :m", m=month)[0]["n"] == total
    events = rows(engine, "SELECT actor_id FROM audit_events WHERE action = 'tasks.generate'")
    assert len(events) == 2


@pytest.mark.parametrize(("month", "message"), [("2026-13", "--month must be YYYY-MM"),
                                                ("2001-01", "month_out_of_range")])
def test_cli_refuses_a_bad_month(engine: Engine, month: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["tasks-generate", "--month", month], prog_name="migrant")
    assert result.exit_code == 2 and message in result.output
    assert rows(engine, "SELECT count(*) AS n FROM tasks")[0]["n"] == 0


# --- the register's changes -------------------------------------------------------------------------------


def test_a_move_takes_open_tasks_along(api: Api, world: World, engine: Engine) -> None:
    man = register_man(api, world)
    [arrival] = tasks_of(engine, man["id"])
    done = register_man(api, world, seq="021")
    execute(engine, "UPDATE tasks SET state = 'done' WHERE resident_id = :r", r=done["id"])
    c2 = world.community("c2")
    for who in (man, done):
        moved = api.as_("sup_street", "POST", f"{RESIDENTS}/{who['id']}/move",
                        json={"version": who["version"], "dwelling_id": world.dwellings[c2["id"]][0],
                              "moved_on": city_today().isoformat()})
        assert moved.status_code == 200, moved.text
    task = task_row(engine, arrival["id"])
    new_path = rows(engine, "SELECT area_path FROM residents WHERE id = :r", r=man["id"])[0]["area_path"]
    assert (task["community_id"], task["area_path"], task["version"]) == (c2["id"], new_path, 2)
    assert task["district_code"] == c2["district_code"]
    # The closed task stays where the work was done.
    assert tasks_of(engine, done["id"])[0]["community_id"] == world.community("c1")["id"]
    assert api.as_("worker1", "GET", f"{TASKS}/{arrival['id']}").status_code == 404
    assert api.as_("worker2", "GET", f"{TASKS}/{arrival['id']}").json()["community_id"] == c2["id"]


def test_leaving_cancels_open_tasks(api: Api, world: World, engine: Engine) -> None:
    woman = register_woman(api, world)
    execute(engine, "UPDATE tasks SET state = 'done' WHERE resident_id = :r AND kind = 'new_arrival_visit'",
            r=woman["id"])
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{woman['id']}/leave",
                   json={"version": woman["version"], "left_on": city_today().isoformat(), "reason": "left_city"})
    assert left.status_code == 200, left.text
    by_kind = {t["kind"]: t for t in tasks_of(engine, woman["id"])}
    assert (by_kind["key_person_monthly"]["state"], by_kind["key_person_monthly"]["cancel_reason"],
            by_kind["key_person_monthly"]["cancelled_by"]) == ("cancelled", "resident_left", world.users["worker1"])
    assert by_kind["new_arrival_visit"]["state"] == "done" and by_kind["new_arrival_visit"]["cancel_reason"] is None


def test_a_merge_cancels_the_merged_records_tasks(api: Api, world: World, engine: Engine) -> None:
    keep = register_man(api, world, seq="041")
    merged = register_man(api, world, seq="043")
    response = api.as_("sup_street", "POST", f"{RESIDENTS}/{keep['id']}/merge",
                       json={"merged_id": merged["id"], "reason": "duplicate_registration",
                             "version_keep": keep["version"], "version_merged": merged["version"]})
    assert response.status_code == 200, response.text
    [gone] = tasks_of(engine, merged["id"])
    assert (gone["state"], gone["cancel_reason"], gone["cancelled_by"]) == ("cancelled", "merged",
                                                                            world.users["sup_street"])
    assert [t["state"] for t in tasks_of(engine, keep["id"])] == ["open"]


def test_an_accepted_transfer_gives_the_receiving_community_a_new_arrival(api: Api, world: World,
                                                                           engine: Engine) -> None:
    man = register_man(api, world)
    yesterday = (city_today() - timedelta(days=1)).isoformat()
    # Registered earlier and already visited in c1.
    execute(engine, "UPDATE tasks SET period = :p, state = 'done' WHERE resident_id = :r", p=yesterday, r=man["id"])
    c2 = world.community("c2")
    asked = api.as_("worker2", "POST", RESIDENTS, json={
        "name": "李强", "id_number": man["id_number"], "hukou_code": "411602", "arrival_date": "2026-01-05",
        "dwelling_id": world.dwellings[c2["id"]][1]})
    assert asked.status_code == 409, asked.text
    transfer_id = asked.json()["details"]["transfer_request_id"]
    accepted = api.as_("worker1", "POST", f"{API}/transfers/{transfer_id}/accept")
    assert accepted.status_code == 200, accepted.text
    fresh = [t for t in tasks_of(engine, man["id"]) if t["state"] == "open"]
    assert [(t["kind"], t["period"], t["community_id"]) for t in fresh] == [
        ("new_arrival_visit", city_today().isoformat(), c2["id"])]
    mine = api.as_("worker2", "GET", TASKS, params={"resident_id": man["id"], "state": "open"}).json()["items"]
    assert [t["id"] for t in mine] == [fresh[0]["id"]]
