"""A police upload's `new` row gives the community's worker a `reported_arrival` task (docs/sharing.md, "Police
uploads"): in the worker's day and pull, nowhere outside the community's area; registering the person completes it
and links it to the record, dismissing the report cancels it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.sharing.police_helpers import REPORTS, police_headers, send, to_csv
from tests.sync.helpers import ids, pull

PERSON = id_number(seq="312")


def address(engine: Engine, dwelling: str) -> str:
    return str(rows(engine, "SELECT address FROM dwellings WHERE id = :d", d=dwelling)[0]["address"])


def report(api: Api, world: World, engine: Engine, **over: str) -> dict[str, Any]:
    """A station reports someone new in c1 (at its first dwelling unless told): the stored row."""
    record = {"kind": "registration", "id_number": PERSON, "name": "吴新", "sex": "",
              "community_code": world.community("c1")["code"], "address": address(engine, dwelling_id(world, "c1", 0)),
              "date": "2026-11-20", "hukou_code": "411602", **over}
    station = police_headers(api, engine, world.community("c1")["path"])
    assert ok(send(api, station, to_csv([record]), "arrivals-1"), 201)["counts"]["new"] == 1
    [row] = rows(engine, "SELECT * FROM police_report_rows")
    return dict(row)


def my_tasks(api: Api, user: str) -> list[dict[str, Any]]:
    return list(ok(api.as_(user, "GET", "/api/v1/me/tasks", params={"upcoming_days": 31}))["items"])


def task_row(engine: Engine, task_id: str) -> dict[str, Any]:
    return dict(rows(engine, "SELECT * FROM tasks WHERE id = :t", t=task_id)[0])


def test_a_new_row_is_a_visit_for_the_communitys_worker_only(api: Api, world: World, engine: Engine) -> None:
    row = report(api, world, engine)
    assert row["task_id"] == row["id"]
    [task] = [t for t in my_tasks(api, "worker1") if t["kind"] == "reported_arrival"]
    assert task["id"] == row["id"] and task["resident"] is None and task["reason"] == "police_report"
    assert task["dwelling"]["id"] == dwelling_id(world, "c1", 0)
    assert "吴新" in task["note"] and PERSON[:4] in task["note"] and PERSON not in task["note"]  # masked ID
    assert task["community_id"] == world.community("c1")["id"]
    for other in ("worker2", "worker3"):  # the neighbour community, another district
        assert row["id"] not in {t["id"] for t in my_tasks(api, other)}
        assert_error(api.as_(other, "GET", f"/api/v1/tasks/{row['id']}"), 404, "not_found")
    one = ok(api.as_("worker1", "GET", f"/api/v1/tasks/{row['id']}"))
    assert (one["kind"], one["resident_id"], one["dwelling_id"], one["state"]) == (
        "reported_arrival", None, dwelling_id(world, "c1", 0), "open")
    listed = ok(api.as_("sup_street", "GET", "/api/v1/tasks", params={"kind": "reported_arrival"}))["items"]
    assert [t["id"] for t in listed] == [row["id"]]
    assert ok(api.as_("sup_other", "GET", "/api/v1/tasks", params={"kind": "reported_arrival"}))["items"] == []


def test_the_phone_receives_it_from_schema_version_4(api: Api, world: World, engine: Engine) -> None:
    row = report(api, world, engine)
    first = pull(api, "worker1", schema_version=4)
    [raw] = [t for t in first["changes"]["tasks"]["updated"] if t["id"] == row["id"]]
    assert (raw["resident_id"], raw["dwelling_id"], raw["kind"]) == (None, dwelling_id(world, "c1", 0),
                                                                      "reported_arrival")
    assert "area_path" not in raw
    # A phone whose schema requires a task's resident never gets one without it.
    other = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="314"))
    theirs = {t["id"] for t in rows(engine, "SELECT id FROM tasks WHERE resident_id = :r", r=other["id"])}
    old = pull(api, "worker1", schema_version=3, device="old-phone-1")
    assert ids(old, "tasks") == theirs != set()  # tasks with a resident only
    # Migrated to version 4 (addColumns of tasks): the table comes in full, the reported arrival with it.
    migrated = pull(api, "worker1", old["timestamp"], schema_version=4, device="old-phone-1",
                    migration={"from": 3, "tables": [], "columns": [{"table": "tasks", "columns": ["dwelling_id"]}]})
    assert row["id"] in ids(migrated, "tasks")
    assert row["id"] not in ids(pull(api, "worker2", schema_version=4, device="phone-c2-01"), "tasks")
    # Registering the person completes the task: the phone drops it.
    ok(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 1}))
    later = pull(api, "worker1", first["timestamp"], schema_version=4)
    assert row["id"] in ids(later, "tasks", "deleted")


def test_accepting_the_row_completes_the_task_and_links_the_resident(api: Api, world: World,
                                                                      engine: Engine) -> None:
    row = report(api, world, engine)
    done = ok(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 1}))
    task = task_row(engine, row["id"])
    assert (task["state"], task["resident_id"], task["kind"]) == ("done", done["resident_id"], "reported_arrival")
    assert task["completed_at"] is not None and task["version"] == 2
    day = my_tasks(api, "worker1")
    assert row["id"] not in {t["id"] for t in day}
    assert any(t["kind"] == "new_arrival_visit" and t["resident"]["id"] == done["resident_id"] for t in day)


def test_registering_the_person_directly_settles_the_report(api: Api, world: World, engine: Engine) -> None:
    row = report(api, world, engine)
    resident = register_resident(api, "worker1", dwelling_id(world, "c1", 0), id_number=PERSON, name="吴新")
    stored = dict(rows(engine, "SELECT * FROM police_report_rows WHERE id = :r", r=row["id"])[0])
    assert (stored["state"], stored["resident_id"], stored["resolved_by"]) == (
        "accepted", resident["id"], world.users["worker1"])
    task = task_row(engine, row["id"])
    assert (task["state"], task["resident_id"]) == ("done", resident["id"])
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 2}), 409,
                 "police_row_not_pending")


def test_registering_in_another_community_leaves_the_report_for_review(api: Api, world: World,
                                                                       engine: Engine) -> None:
    row = report(api, world, engine)
    register_resident(api, "worker2", dwelling_id(world, "c2", 0), id_number=PERSON, name="吴新")
    stored = rows(engine, "SELECT state FROM police_report_rows WHERE id = :r", r=row["id"])[0]
    assert stored["state"] == "pending" and task_row(engine, row["id"])["state"] == "open"


def test_an_unmatched_address_still_gives_a_task_and_dismissing_cancels_it(api: Api, world: World,
                                                                          engine: Engine) -> None:
    row = report(api, world, engine, address="某路99号不存在")
    assert row["dwelling_id"] is None
    [task] = [t for t in my_tasks(api, "worker1") if t["id"] == row["id"]]
    assert task["dwelling"] is None and "某路99号不存在" in task["note"]
    ok(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/dismiss", json={"version": 1, "reason": "not_at_address"}))
    stored = task_row(engine, row["id"])
    assert (stored["state"], stored["cancel_reason"], stored["cancelled_by"]) == (
        "cancelled", "report_dismissed", world.users["worker1"])
    assert row["id"] not in {t["id"] for t in my_tasks(api, "worker1")}


def test_a_dry_run_makes_no_task(api: Api, world: World, engine: Engine) -> None:
    record = {"kind": "registration", "id_number": PERSON, "name": "吴新", "sex": "",
              "community_code": world.community("c1")["code"], "address": address(engine, dwelling_id(world, "c1", 0)),
              "date": "2026-11-20"}
    station = police_headers(api, engine, world.community("c1")["path"])
    ok(send(api, station, to_csv([record]), "dry-1", dry_run=True))
    assert rows(engine, "SELECT id FROM tasks WHERE kind = 'reported_arrival'") == []


def test_only_a_reported_arrival_may_lack_a_resident(world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    with pytest.raises(IntegrityError):
        execute(engine, "INSERT INTO tasks (id, resident_id, community_id, area_path, district_code, kind, period, "
                        "due_date, state, created_at, updated_at, version) VALUES ('t-no-resident-0001', NULL, :c, "
                        ":p, :d, 'follow_up', 'x', '2026-12-01', 'open', '2026-12-01 00:00:00', "
                        "'2026-12-01 00:00:00', 1)", c=c1["id"], p=c1["path"], d=c1["district_code"])
