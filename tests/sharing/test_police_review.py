"""The staff side of police uploads: the rows in a worker's area, accepting (link or register) and dismissing a
pending row, each refusal with its code; outside the area everything is 404."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.verify_helpers import open_month, set_today, verifications
from tests.cycle.verify_helpers import record as verify
from tests.db import audit_events, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.sharing.police_helpers import REPORTS, police_headers, send, to_csv


def address(engine: Engine, dwelling: str) -> str:
    return str(rows(engine, "SELECT address FROM dwellings WHERE id = :d", d=dwelling)[0]["address"])


def upload(api: Api, world: World, engine: Engine,
           records: list[dict[str, str]]) -> None:
    c1 = world.community("c1")
    station = police_headers(api, engine, c1["path"])
    ok(send(api, station, to_csv(records), "batch-1"), 201)


def record(world: World, engine: Engine, **over: str) -> dict[str, str]:
    return {"kind": "registration", "id_number": id_number(seq="302"), "name": "周婷", "sex": "",
            "community_code": world.community("c1")["code"], "address": address(engine, dwelling_id(world, "c1", 0)),
            "date": "2026-11-20", "hukou_code": "411602", **over}


def pending(api: Api, user: str = "worker1", **params: str) -> list[dict[str, Any]]:
    return list(ok(api.as_(user, "GET", REPORTS, params={"state": "pending", **params}))["items"])


def test_a_new_row_is_accepted_by_registering_the_person(api: Api, world: World, engine: Engine) -> None:
    upload(api, world, engine, [record(world, engine)])
    [row] = pending(api)
    assert (row["outcome"], row["name"], row["resident_id"], row["batch_reference"]) == ("new", "周婷", None, "batch-1")
    assert row["visit_due"] == (city_today() + timedelta(days=7)).isoformat()
    assert audit_events(engine, "sharing.police_reports.read")
    assert pending(api, "worker3") == []  # another district sees nothing
    assert_error(api.as_("worker3", "GET", f"{REPORTS}/{row['id']}"), 404, "not_found")
    assert_error(api.as_("worker3", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 1}), 404, "not_found")
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 9}), 409,
                 "stale_version")
    done = ok(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 1}))
    assert done["state"] == "accepted" and done["resident_id"] and done["resolved_by"] == world.users["worker1"]
    resident = ok(api.as_("worker1", "GET", f"/api/v1/residents/{done['resident_id']}"))
    assert (resident["name"], resident["id_number"], resident["dwelling_id"]) == (
        "周婷", id_number(seq="302"), dwelling_id(world, "c1", 0))
    kinds = {t["kind"] for t in rows(engine, "SELECT kind FROM tasks WHERE resident_id = :r", r=done["resident_id"])}
    assert "new_arrival_visit" in kinds
    assert audit_events(engine, "sharing.police_report.accepted", done["id"])
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 2}), 409,
                 "police_row_not_pending")


def test_a_conflicting_row_is_linked_or_dismissed(api: Api, world: World, engine: Engine) -> None:
    moved = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="304"),
                              name="赵敏")
    other = register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="306"),
                              name="钱红")
    upload(api, world, engine, [record(world, engine, id_number=moved["id_number"], name="赵敏"),
                                         record(world, engine, id_number=other["id_number"], name="钱洪")])
    first, second = sorted(pending(api, outcome="conflicting"), key=lambda r: r["row_number"])
    assert first["conflict_fields"] == ["dwelling"] and first["resident_id"] == moved["id"]
    assert second["conflict_fields"] == ["dwelling", "name"]
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{first['id']}/accept",
                         json={"version": 1, "resident_id": other["id"]}), 422, "police_row_resident_mismatch")
    linked = ok(api.as_("worker1", "POST", f"{REPORTS}/{first['id']}/accept", json={"version": 1}))
    assert (linked["state"], linked["resident_id"]) == ("accepted", moved["id"])
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{second['id']}/dismiss", json={"version": 1}), 422)
    gone = ok(api.as_("sup_street", "POST", f"{REPORTS}/{second['id']}/dismiss",
                      json={"version": 1, "reason": "register_correct"}))
    assert (gone["state"], gone["reason"]) == ("dismissed", "register_correct")
    assert audit_events(engine, "sharing.police_report.dismissed", second["id"])
    assert pending(api) == []


def test_registering_needs_a_dwelling_and_a_hukou_code(api: Api, world: World, engine: Engine) -> None:
    upload(api, world, engine, [record(world, engine, address="某路99号不存在", hukou_code="")])
    [row] = pending(api)
    assert row["dwelling_id"] is None
    url = f"{REPORTS}/{row['id']}/accept"
    assert_error(api.as_("worker1", "POST", url, json={"version": 1}), 422, "police_row_dwelling_required")
    place = dwelling_id(world, "c1", 3)
    assert_error(api.as_("worker1", "POST", url, json={"version": 1, "dwelling_id": place}), 422,
                 "police_row_hukou_required")
    assert_error(api.as_("worker1", "POST", url, json={"version": 1, "dwelling_id": dwelling_id(world, "c3", 0),
                                                      "hukou_code": "411602"}), 404, "not_found")
    done = ok(api.as_("worker1", "POST", url, json={"version": 1, "dwelling_id": place, "hukou_code": "411602"}))
    assert done["state"] == "accepted"


def test_a_departed_row_is_not_resolved_here(api: Api, world: World, engine: Engine) -> None:
    left = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="308"), name="孙芳")
    upload(api, world, engine, [record(world, engine, kind="注销", id_number=left["id_number"], name="孙芳")])
    [row] = ok(api.as_("worker1", "GET", REPORTS, params={"state": "proposed"}))["items"]
    assert row["outcome"] == "departed" and row["task_id"]
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/dismiss",
                         json={"version": 1, "reason": "other"}), 409, "police_row_not_pending")
    params = {"resident_id": left["id"], "kind": "follow_up"}
    [task] = ok(api.as_("worker1", "GET", "/api/v1/tasks", params=params))["items"]
    assert (task["id"], task["reason"]) == (row["task_id"], "verify_residence")


def test_someone_registered_elsewhere_becomes_a_transfer_request(api: Api, world: World, engine: Engine) -> None:
    far = register_resident(api, "worker3", dwelling_id(world, "c3", 0), id_number=id_number(seq="310"), name="吴静")
    upload(api, world, engine, [record(world, engine, id_number=far["id_number"], name="吴静")])
    [row] = pending(api)
    # The record lies in another district: the worker is not told which one it is.
    assert (row["outcome"], row["conflict_fields"], row["resident_id"]) == ("conflicting", ["dwelling"], None)
    assert_error(api.as_("worker1", "POST", f"{REPORTS}/{row['id']}/accept", json={"version": 1}), 409,
                 "resident_registered_elsewhere")
    transfers = rows(engine, "SELECT resident_id, to_community_id FROM transfer_requests")
    assert transfers == [{"resident_id": far["id"], "to_community_id": world.community("c1")["id"]}]
    assert pending(api)[0]["state"] == "pending"


def test_a_departure_in_an_open_month_is_a_proposal_the_worker_confirms(api: Api, world: World, engine: Engine,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))
    left = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="312"), name="林芳")
    open_month(api, "2026-11")
    upload(api, world, engine, [record(world, engine, kind="注销", id_number=left["id_number"], name="林芳",
                                       date="2026-11-03")])
    [row] = ok(api.as_("worker1", "GET", REPORTS, params={"state": "proposed"}))["items"]
    [proposed] = verifications(api, "worker1", resident_id=left["id"])
    assert (row["verification_id"], row["task_id"]) == (proposed["id"], None)
    assert (proposed["proposed_outcome"], proposed["proposed_source"], proposed["proposed_on"]) == (
        "LEFT_CITY", "police", "2026-11-03")
    done = verify(api, "worker1", proposed, "LEFT_CITY", evidence="partner", moved_on="2026-11-03")
    assert (done["outcome"], done["evidence"]) == ("LEFT_CITY", "partner")


def test_a_token_without_the_upload_scope_is_refused(api: Api, world: World, engine: Engine) -> None:
    station = police_headers(api, engine, world.community("c1")["path"], scope="police:lookup")
    assert_error(send(api, station, to_csv([record(world, engine)]), "s-1"), 403, "insufficient_scope")
