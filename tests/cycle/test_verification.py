"""The monthly verification (月核查) through the HTTP API: opening a month, recording outcomes and their effects
on the register, the error paths, and concurrent recordings of one verification."""

from __future__ import annotations

import json
import threading
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.main import app
from tests.conftest import Api, World
from tests.cycle.verify_helpers import OPEN, PERIODS, VERIFICATIONS, open_month, record, set_today, verifications
from tests.db import audit_events, execute, rows
from tests.factories import dwelling_id, id_number, register_resident

DAY = date(2026, 11, 5)


@pytest.fixture(autouse=True)
def _today(monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, DAY)


def registered(engine: Engine, community_id: str) -> set[str]:
    return {r["id"] for r in rows(engine, "SELECT id FROM residents WHERE community_id = :c AND status = 'REGISTERED' "
                                          "AND merged_into_id IS NULL AND anonymised_at IS NULL", c=community_id)}


def test_open_creates_periods_and_one_pending_verification_per_resident(api: Api, world: World,
                                                                        engine: Engine) -> None:
    opened = open_month(api, "2026-11")
    communities = len(world.communities)
    assert (opened["periods_created"], opened["periods_existing"]) == (communities, 0)
    total = rows(engine, "SELECT COUNT(*) AS n FROM residents WHERE status = 'REGISTERED' AND merged_into_id IS NULL "
                         "AND anonymised_at IS NULL")[0]["n"]
    assert opened["verifications_created"] == total > 0
    c1 = world.community("c1")
    mine = verifications(api, "worker1", month="2026-11")
    assert {v["resident_id"] for v in mine} == registered(engine, c1["id"])
    assert all(v["outcome"] is None and v["version"] == 1 and v["community_id"] == c1["id"] for v in mine)
    # One audit event per period for the bulk insert, with the count and no personal data.
    events = audit_events(engine, "verifications.create")
    assert sum(json.loads(e["detail"])["count"] for e in events) == total
    assert all(e["target_type"] == "periods" for e in events)
    assert len(audit_events(engine, "periods.create")) == communities

    again = open_month(api, "2026-11")  # idempotent: nothing new, safe to run daily
    assert (again["periods_created"], again["periods_existing"], again["verifications_created"]) == (
        0, communities, 0)
    assert rows(engine, "SELECT COUNT(*) AS n FROM verifications")[0]["n"] == total


def test_open_catches_up_new_arrivals_and_refuses_far_months(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11", district_code=world.community("c1")["district_code"])
    other = world.community("c3")
    assert verifications(api, "worker3", month="2026-11") == []  # another district: not opened
    for month in ("2026-09", "2027-01"):
        refused = api.as_("admin", "POST", OPEN, json={"month": month})
        assert (refused.status_code, refused.json()["code"]) == (422, "period_month_out_of_range")
    bad = api.as_("admin", "POST", OPEN, json={"month": "2026-13"})
    assert bad.status_code == 422
    for user in ("worker1", "sup_district", "auditor"):
        assert api.as_(user, "POST", OPEN, json={"month": "2026-11"}).status_code == 403
    # A resident registered after the month opened gets a verification at once.
    newcomer = register_resident(api, "worker1", dwelling_id(world, "c1"), id_number=id_number(seq="112"))
    [pending] = verifications(api, "worker1", resident_id=newcomer["id"])
    assert pending["outcome"] is None and pending["month"] == "2026-11"
    assert len(registered(engine, other["id"])) > 0


def test_present_and_replay(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    v = verifications(api, "worker1", month="2026-11")[0]
    done = record(api, "worker1", v, "PRESENT", note="本人在家")
    assert (done["outcome"], done["evidence"], done["version"]) == ("PRESENT", "phone", 2)
    assert done["verified_by"] == world.users["worker1"]
    # The same outcome again (a lost response retried) changes nothing, whatever version it carries.
    assert record(api, "worker1", v, "PRESENT", note="本人在家")["version"] == 2
    other = record(api, "worker1", {**v, "version": 2}, "NOT_FOUND", status=409)
    assert other["code"] == "verification_recorded"
    stale = record(api, "worker1", v, "NOT_FOUND", status=409)
    assert stale["code"] == "stale_version"
    [update] = [e for e in audit_events(engine, "verifications.update") if e["target_id"] == v["id"]]
    assert "outcome" in update["fields"] and "本人在家" not in str(update)


def test_errors_bad_outcome_scope_closed(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    v = verifications(api, "worker1", month="2026-11")[0]
    url = f"{VERIFICATIONS}/{v['id']}"
    bad = api.as_("worker1", "PUT", url, json={"version": 1, "outcome": "GONE", "evidence": "phone"})
    assert bad.status_code == 422
    no_visit = api.as_("worker1", "PUT", url, json={"version": 1, "outcome": "PRESENT", "evidence": "visit"})
    assert (no_visit.status_code, no_visit.json()["code"]) == (422, "evidence_missing")
    no_dwelling = api.as_("worker1", "PUT", url, json={"version": 1, "outcome": "MOVED_WITHIN_CITY",
                                                      "evidence": "phone"})
    assert (no_dwelling.status_code, no_dwelling.json()["code"]) == (422, "dwelling_required")
    unknown_visit = record(api, "worker1", v, "PRESENT", status=404, evidence="visit", visit_id="a" * 32)
    assert unknown_visit["code"] == "not_found"
    for user in ("worker3", "worker2", "sup_other"):  # out of scope: 404, for reads and writes
        assert api.as_(user, "GET", url).status_code == 404
    assert record(api, "worker3", v, "PRESENT", status=404)["code"] == "not_found"
    assert api.as_("auditor", "PUT", url, json={"version": 1, "outcome": "PRESENT", "evidence": "phone"}
                   ).status_code == 403
    assert api.as_("admin", "PUT", url, json={"version": 1, "outcome": "PRESENT", "evidence": "phone"}
                   ).status_code == 403

    period = api.as_("sup_street", "GET", f"{PERIODS}/{v['period_id']}").json()
    assert api.as_("worker1", "POST", f"{PERIODS}/{v['period_id']}/close", json={"version": 1}).status_code == 403
    assert api.as_("sup_other", "POST", f"{PERIODS}/{v['period_id']}/close", json={"version": 1}).status_code == 404
    stale = api.as_("sup_street", "POST", f"{PERIODS}/{v['period_id']}/close", json={"version": 9})
    assert (stale.status_code, stale.json()["code"]) == (409, "stale_version")
    closed = api.as_("sup_street", "POST", f"{PERIODS}/{v['period_id']}/close", json={"version": period["version"]})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    again = api.as_("sup_street", "POST", f"{PERIODS}/{v['period_id']}/close", json={"version": 2})
    assert (again.status_code, again.json()["code"]) == (409, "period_closed")
    assert record(api, "worker1", v, "PRESENT", status=409)["code"] == "period_closed"
    assert rows(engine, "SELECT outcome FROM verifications WHERE id = :i", i=v["id"]) == [{"outcome": None}]


def test_outcomes_act_on_the_register(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    mine = verifications(api, "worker1", month="2026-11")
    left, home, moved = mine[0], mine[1], mine[2]
    record(api, "worker1", left, "LEFT_CITY", moved_on="2026-11-02")
    record(api, "worker1", home, "RETURNED_HOME")
    [person] = rows(engine, "SELECT status, left_on, left_reason FROM residents WHERE id = :i", i=left["resident_id"])
    assert (person["status"], str(person["left_on"]), person["left_reason"]) == ("LEFT", "2026-11-02", "left_city")
    assert rows(engine, "SELECT left_reason FROM residents WHERE id = :i", i=home["resident_id"]) == [
        {"left_reason": "returned_home"}]
    # Someone who left through the register is no longer verified: the pending verification goes.
    gone = mine[3]
    version = rows(engine, "SELECT version FROM residents WHERE id = :i", i=gone["resident_id"])[0]["version"]
    response = api.as_("worker1", "POST", f"/api/v1/residents/{gone['resident_id']}/leave",
                       json={"version": version, "left_on": "2026-11-01", "reason": "left_city"})
    assert response.status_code == 200, response.text
    assert verifications(api, "worker1", resident_id=gone["resident_id"]) == []
    assert record(api, "worker1", gone, "PRESENT", status=404)["code"] == "not_found"
    # A status changed behind the register's back (no event: an old import, a manual fix) is still refused.
    other = mine[4]
    execute(engine, "UPDATE residents SET status = 'ARCHIVED' WHERE id = :i", i=other["resident_id"])
    assert record(api, "worker1", other, "PRESENT", status=409)["code"] == "resident_not_registered"

    c2 = world.community("c2")
    target = world.dwellings[c2["id"]][0]
    out_of_scope = record(api, "worker1", moved, "MOVED_WITHIN_CITY", status=404, new_dwelling_id=target)
    assert out_of_scope["code"] == "not_found"
    done = record(api, "sup_street", moved, "MOVED_WITHIN_CITY", new_dwelling_id=target)
    assert done["outcome"] == "MOVED_WITHIN_CITY" and done["community_id"] == moved["community_id"]
    [person] = rows(engine, "SELECT community_id, dwelling_id, status FROM residents WHERE id = :i",
                    i=moved["resident_id"])
    assert (person["community_id"], person["dwelling_id"], person["status"]) == (c2["id"], target, "REGISTERED")
    # The hand-over: a pending verification in the receiving community, on its worker's list.
    [handed] = verifications(api, "worker2", resident_id=moved["resident_id"])
    assert handed["outcome"] is None and handed["month"] == "2026-11" and handed["community_id"] == c2["id"]
    assert [v["id"] for v in verifications(api, "worker1", resident_id=moved["resident_id"])] == [moved["id"]]


def test_not_found_streak_ends_as_whereabouts_unknown(api: Api, world: World, engine: Engine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    resident_id = None
    for month, day in (("2026-09", date(2026, 9, 3)), ("2026-10", date(2026, 10, 3)), ("2026-11", DAY)):
        set_today(monkeypatch, day)
        open_month(api, month, district_code=world.community("c1")["district_code"])
        mine = verifications(api, "worker1", month=month, pending="true")
        v = mine[0] if resident_id is None else next(x for x in mine if x["resident_id"] == resident_id)
        resident_id = v["resident_id"]
        done = record(api, "worker1", v, "NOT_FOUND")
        expected = int(month[-2:]) - 8
        assert done["not_found_streak"] == expected
        status = rows(engine, "SELECT status, left_reason FROM residents WHERE id = :i", i=resident_id)[0]
        if expected < 3:
            assert status == {"status": "REGISTERED", "left_reason": None}
    assert status == {"status": "LEFT", "left_reason": "whereabouts_unknown"}


def test_supervisor_lists_filters_and_progress(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    mine = verifications(api, "worker1", month="2026-11")
    record(api, "worker1", mine[0], "PRESENT")
    record(api, "worker1", mine[1], "NOT_FOUND")
    c1 = world.community("c1")
    [period] = api.as_("sup_street", "GET", PERIODS, params={"month": "2026-11", "community_id": c1["id"]}
                       ).json()["items"]
    progress = period["progress"]
    assert (progress["total"], progress["pending"], progress["verified"]) == (len(mine), len(mine) - 2, 2)
    assert progress["by_outcome"]["PRESENT"] == 1 and progress["by_outcome"]["NOT_FOUND"] == 1
    assert progress["coverage"] == round(2 / len(mine), 4)
    assert {v["id"] for v in verifications(api, "sup_street", period_id=period["id"], outcome="NOT_FOUND")} == {
        mine[1]["id"]}
    assert len(verifications(api, "sup_street", period_id=period["id"], pending="true")) == len(mine) - 2
    grid = world.grids[c1["id"]][0]
    in_grid = verifications(api, "sup_street", period_id=period["id"], grid_id=grid["id"])
    assert {v["id"] for v in in_grid} == {v["id"] for v in verifications(api, "grid_worker", month="2026-11")}
    assert verifications(api, "sup_street", grid_id="0" * 32) == []
    assert api.as_("sup_other", "GET", f"{PERIODS}/{period['id']}").status_code == 404
    assert api.as_("worker1", "GET", PERIODS, params={"month": "2026-1"}).status_code == 422


def test_concurrent_recordings_one_wins(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    v = verifications(api, "worker1", month="2026-11")[0]
    headers = api.headers("worker1")
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(4)
    outcomes = ["PRESENT", "NOT_FOUND", "LEFT_CITY", "SETTLED"]

    def put(i: int) -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.put(f"{VERIFICATIONS}/{v['id']}", headers=headers,
                                  json={"version": 1, "outcome": outcomes[i], "evidence": "phone"})
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in results) == [200, 409, 409, 409], results
    [won] = [body for s, body in results if s == 200]
    assert {body["code"] for s, body in results if s == 409} <= {"stale_version", "verification_recorded"}
    [stored] = rows(engine, "SELECT outcome, version FROM verifications WHERE id = :i", i=v["id"])
    assert (stored["outcome"], stored["version"]) == (won["outcome"], 2)
    status = rows(engine, "SELECT status FROM residents WHERE id = :i", i=v["resident_id"])[0]["status"]
    assert status == ("LEFT" if won["outcome"] in ("LEFT_CITY", "SETTLED") else "REGISTERED")


def test_cli_opens_the_month_idempotently(engine: Engine, world: World) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    runner = CliRunner()
    first = runner.invoke(cli, ["cycle-open", "--month", "2026-11"], prog_name="migrant")
    assert first.exit_code == 0, first.output
    assert f"2026-11: {len(world.communities)} periods opened (0 existed)" in first.output
    again = runner.invoke(cli, ["cycle-open", "--month", "2026-11"], prog_name="migrant")
    assert f"0 periods opened ({len(world.communities)} existed), 0 verifications created" in again.output
    for args in (["--month", "2026-13"], ["--month", "2026-09"], ["--district", "41"]):
        refused = runner.invoke(cli, ["cycle-open", *args], prog_name="migrant")
        assert refused.exit_code == 2, refused.output
    assert rows(engine, "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'cycle.open'")[0]["n"] == 2
