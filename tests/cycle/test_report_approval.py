"""The monthly report's approval (issue 13) through the HTTP API: submit → return → resubmit → approve, the frozen
figures and the lock, the late flag, every refusal, the roll-up's completeness and timeliness counted by hand, and
two supervisors deciding at once."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import date, datetime, time, timedelta
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.core.types import CITY_TZ
from app.cycle.reports import approval
from app.main import app
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.report_helpers import P_LAST, REPORTS, TODAY, P, day
from tests.db import all_audit_text, audit_events, rows
from tests.factories import dwelling_id, id_number, register_resident

DUE = P_LAST + timedelta(days=25)  # REPORT_DUE_DAY (25) of the month after P
ON_TIME = datetime.combine(P_LAST + timedelta(days=10), time(9), CITY_TZ)
LATE = datetime.combine(P_LAST + timedelta(days=26), time(9), CITY_TZ)  # the 26th: a day after the due day
CURRENT = TODAY.strftime("%Y-%m")


@pytest.fixture(autouse=True)
def _on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval, "now", lambda: ON_TIME)


def url(community: dict[str, Any], action: str = "", month: str = P) -> str:
    return f"{REPORTS}/{community['id']}/{month}" + (f"/{action}" if action else "")


def submit(api: Api, community: dict[str, Any], version: int, user: str = "worker1") -> Any:
    return api.as_(user, "POST", url(community, "submit"), json={"version": version})


def approve(api: Api, community: dict[str, Any], version: int, user: str = "sup_street") -> Any:
    return api.as_(user, "POST", url(community, "approve"), json={"version": version})


def give_back(api: Api, community: dict[str, Any], version: int, user: str = "sup_street",
              reason: str | None = "覆盖率不足，请补核") -> Any:
    body: dict[str, Any] = {"version": version}
    if reason is not None:
        body["reason"] = reason
    return api.as_(user, "POST", url(community, "return"), json=body)


def arrival(api: Api, world: World) -> None:
    """A resident registered in c1 who arrived in P: the live stock of P grows by one."""
    register_resident(api, "worker1", dwelling_id(world), id_number=id_number(date(1992, 4, 5)),
                      arrival_date=day(3).isoformat())


def test_submit_return_resubmit_approve(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    before = ok(api.as_("worker1", "GET", url(c1)))
    assert before["submission"]["state"] == "open" and before["submission"]["version"] == 0
    assert before["submission"]["due_on"] == DUE.isoformat()

    first = ok(submit(api, c1, 0))
    s = first["submission"]
    assert (s["state"], s["version"], s["late"], s["frozen"], s["submissions"]) == ("submitted", 1, False, True, 1)
    assert s["submitted_by"] == world.users["worker1"] and first["stock"] == before["stock"]

    returned = ok(give_back(api, c1, 1))["submission"]
    assert (returned["state"], returned["version"], returned["frozen"]) == ("returned", 2, False)
    assert returned["return_reason"] == "覆盖率不足，请补核" and returned["returned_by"] == world.users["sup_street"]

    again = ok(submit(api, c1, 2))["submission"]
    assert (again["state"], again["version"], again["submissions"]) == ("resubmitted", 3, 2)

    done = ok(approve(api, c1, 3, user="sup_district"))["submission"]
    assert (done["state"], done["version"], done["approved_by"]) == ("approved", 4, world.users["sup_district"])
    assert done["late"] is False and done["approved_at"] is not None

    [row] = rows(engine, "SELECT state, version, late, submissions FROM report_submissions WHERE community_id = :c",
                 c=c1["id"])
    assert (row["state"], row["version"], bool(row["late"]), row["submissions"]) == ("approved", 4, False, 2)
    events = rows(engine, "SELECT action, detail FROM audit_events WHERE action IN ('cycle.report.submit', "
                          "'cycle.report.return', 'cycle.report.approve') ORDER BY id")
    assert [(e["action"], json.loads(e["detail"])["state"]) for e in events] == [
        ("cycle.report.submit", "submitted"), ("cycle.report.return", "returned"),
        ("cycle.report.submit", "resubmitted"), ("cycle.report.approve", "approved")]
    assert json.loads(events[0]["detail"]) == {"community_id": c1["id"], "month": P, "state": "submitted",
                                               "late": False, "submissions": 1}
    assert "覆盖率" not in all_audit_text(engine)  # the reason stays in its row, never in the log


def test_the_figures_freeze_at_submission_and_stay_once_approved(api: Api, world: World) -> None:
    c1 = world.community("c1")
    frozen = ok(submit(api, c1, 0))
    arrival(api, world)
    read = ok(api.as_("sup_street", "GET", url(c1)))
    assert read["stock"] == frozen["stock"] and read["generated_at"] == frozen["generated_at"]

    ok(give_back(api, c1, 1))  # returned: the worker sees the records as they are now
    live = ok(api.as_("worker1", "GET", url(c1)))
    assert live["stock"]["total"] == frozen["stock"]["total"] + 1
    assert live["movement"]["arrivals"] == frozen["movement"]["arrivals"] + 1

    ok(submit(api, c1, 2))
    ok(approve(api, c1, 3))
    arrival(api, world)  # after the lock
    locked = ok(api.as_("worker1", "GET", url(c1)))
    assert locked["stock"] == live["stock"] and locked["submission"]["state"] == "approved"
    rolled = ok(api.as_("sup_street", "GET", f"{REPORTS}/rollup/{c1['parent_id']}/{P}"))
    [mine] = [c for c in rolled["communities"] if c["community_id"] == c1["id"]]
    assert mine["stock"] == live["stock"]  # the roll-up shows the frozen figures too
    assert rolled["totals"]["stock"]["total"] == sum(c["stock"]["total"] for c in rolled["communities"])
    exported = api.as_("worker1", "GET", url(c1) + ".csv")
    assert exported.status_code == 200
    stock_row = next(line for line in exported.content.decode("utf-8-sig").splitlines() if ",stock.total," in line)
    assert stock_row.endswith(f",stock.total,{live['stock']['total']},人,,")  # the file too (not corrected)
    assert_error(submit(api, c1, 4), 409, "report_locked")
    assert_error(give_back(api, c1, 4), 409, "report_locked")
    assert_error(approve(api, c1, 4), 409, "report_locked")


def test_a_submission_after_the_due_day_is_late(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval, "now", lambda: LATE)
    s = ok(submit(api, world.community("c1"), 0))["submission"]
    assert (s["late"], s["due_on"]) == (True, DUE.isoformat())
    monkeypatch.setattr(approval, "now", lambda: datetime.combine(DUE, time(23, 59), CITY_TZ))
    assert ok(submit(api, world.community("c2"), 0, user="worker2"))["submission"]["late"] is False  # on the day


def test_refusals(api: Api, world: World, engine: Engine) -> None:
    c1, c3 = world.community("c1"), world.community("c3")
    assert_error(approve(api, c1, 1), 409, "report_not_submitted")  # nothing submitted yet
    assert_error(give_back(api, c1, 1), 409, "report_not_submitted")
    assert_error(approve(api, c1, 0), 422)
    assert_error(submit(api, c1, 1), 409, "stale_version")
    assert_error(submit(api, c1, 0, user="sup_street"), 403)
    assert_error(submit(api, c1, 0, user="admin"), 403)
    assert_error(submit(api, c1, 0, user="auditor"), 403)
    assert_error(submit(api, c3, 0), 404)  # another district's community
    assert_error(submit(api, c1, 0, user="grid_worker"), 404)  # a grid worker does not hold the whole community
    assert_error(submit(api, world.streets[0], 0), 404)  # not a community
    assert_error(api.as_("worker1", "POST", url(c1, "submit", "2026-13"), json={"version": 0}), 422,
                 "report_month_format")
    assert_error(api.as_("worker1", "POST", url(c1, "submit", CURRENT), json={"version": 0}), 409,
                 "report_month_running")
    ok(submit(api, c1, 0))
    assert_error(submit(api, c1, 1), 409, "report_already_submitted")
    assert_error(submit(api, c1, 0), 409, "stale_version")
    assert_error(approve(api, c1, 1, user="worker1"), 403)
    assert_error(approve(api, c1, 1, user="admin"), 403)
    assert_error(give_back(api, c1, 1, user="auditor"), 403)
    assert_error(approve(api, c1, 1, user="sup_other"), 404)  # another district's supervisor
    assert_error(give_back(api, c1, 1, reason=None), 422)
    assert_error(give_back(api, c1, 1, reason=""), 422)
    assert_error(approve(api, c1, 2), 409, "stale_version")
    ok(give_back(api, c1, 1))
    assert_error(approve(api, c1, 2), 409, "report_not_submitted")  # returned: the worker's turn
    assert_error(give_back(api, c1, 2), 409, "report_not_submitted")
    assert_error(approve(api, world.community("c2"), 0), 422)  # versions of a decision start at 1
    [row] = rows(engine, "SELECT state, version FROM report_submissions")
    assert (row["state"], row["version"]) == ("returned", 2)


def test_rollup_completeness_and_timeliness(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    street = c1["parent_id"]
    n = len([c for c in world.communities if c["parent_id"] == street])
    ok(submit(api, c1, 0))  # on time
    monkeypatch.setattr(approval, "now", lambda: LATE)
    ok(submit(api, c2, 0, user="worker2"))  # late
    rolled = ok(api.as_("sup_street", "GET", f"{REPORTS}/rollup/{street}/{P}"))
    assert (rolled["submitted"], rolled["on_time"]) == (2, 1)
    assert (rolled["completeness"], rolled["timeliness"]) == (round(2 / n, 4), round(1 / n, 4))
    states = {c["community_id"]: c["submission"]["state"] for c in rolled["communities"]}
    assert (states[c1["id"]], states[c2["id"]]) == ("submitted", "submitted")
    assert sum(1 for s in states.values() if s == "open") == n - 2

    ok(give_back(api, c2, 1))  # a returned report is not counted
    rolled = ok(api.as_("sup_street", "GET", f"{REPORTS}/rollup/{street}/{P}"))
    assert (rolled["submitted"], rolled["on_time"], rolled["completeness"]) == (1, 1, round(1 / n, 4))
    ok(approve(api, c1, 1))  # approved still counts
    district = ok(api.as_("sup_district", "GET", f"{REPORTS}/rollup/{district_of(world, c1)}/{P}"))
    assert (district["submitted"], district["on_time"]) == (1, 1)


def test_two_first_submissions_at_once_one_wins(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    headers = api.headers("worker1")
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(3)

    def post() -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.post(url(c1, "submit"), headers=headers, json={"version": 0})
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in results) == [200, 409, 409], results
    assert {body["code"] for s, body in results if s == 409} <= {"stale_version", "concurrent_conflict"}
    assert len(rows(engine, "SELECT id FROM report_submissions WHERE community_id = :c", c=c1["id"])) == 1
    assert len(audit_events(engine, "cycle.report.submit")) == 1


def district_of(world: World, community: dict[str, Any]) -> str:
    return next(d["id"] for d in world.districts if d["code"] == community["district_code"])


def test_two_supervisors_decide_at_once_one_wins(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    ok(submit(api, c1, 0))
    calls = [("sup_street", "approve", {"version": 1}), ("sup_district", "return", {"version": 1, "reason": "x"}),
             ("sup_street", "return", {"version": 1, "reason": "y"}), ("sup_district", "approve", {"version": 1})]
    headers = {u: api.headers(u) for u in ("sup_street", "sup_district")}
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(len(calls))

    def post(i: int) -> None:
        user, action, body = calls[i]
        with TestClient(app) as client:
            barrier.wait()
            response = client.post(url(c1, action), headers=headers[user], json=body)
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in results) == [200, 409, 409, 409], results
    [won] = [body for s, body in results if s == 200]
    assert {body["code"] for s, body in results if s == 409} <= {"stale_version", "report_not_submitted",
                                                                  "report_locked"}
    [row] = rows(engine, "SELECT state, version FROM report_submissions WHERE community_id = :c", c=c1["id"])
    assert (row["state"], row["version"]) == (won["submission"]["state"], 2)
    assert len(audit_events(engine, "cycle.report.approve")) + len(audit_events(engine, "cycle.report.return")) == 1


def correct(api: Api, community: dict[str, Any], code: str, value: int, user: str = "worker1",
            reason: str | None = "漏登一户") -> Any:
    body: dict[str, Any] = {"code": code, "value": value}
    if reason is not None:
        body["reason"] = reason
    return api.as_(user, "POST", url(community, "corrections"), json=body)


def test_corrections_after_the_lock(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    ok(submit(api, c1, 0))
    assert_error(correct(api, c1, "stock.total", 1), 409, "report_not_locked")  # submitted, not approved yet
    approved = ok(approve(api, c1, 1))
    total = approved["stock"]["total"]

    first = ok(correct(api, c1, "stock.total", total + 2), 201)
    [fix] = first["corrections"]
    assert (fix["code"], fix["original"], fix["corrected"], fix["reason"]) == ("stock.total", total, total + 2,
                                                                               "漏登一户")
    assert fix["author"] == world.users["worker1"] and first["corrected"] == {"stock.total": total + 2}
    assert first["stock"]["total"] == total  # the approved figure stays, the correction is shown next to it
    second = ok(correct(api, c1, "stock.total", total + 1, user="sup_street"), 201)
    assert [(c["original"], c["corrected"]) for c in second["corrections"]] == [(total, total + 2),
                                                                               (total + 2, total + 1)]
    ok(correct(api, c1, "verifications.PRESENT", approved["verifications"]["by_outcome"]["PRESENT"] + 1), 201)
    read = ok(api.as_("auditor", "GET", url(c1)))  # auditors see the corrections
    assert read["corrected"] == {"stock.total": total + 1,
                                 "verifications.PRESENT": approved["verifications"]["by_outcome"]["PRESENT"] + 1}
    assert len(read["corrections"]) == 3 and read["stock"] == approved["stock"]

    assert_error(correct(api, c1, "stock.total", total + 1), 422, "correction_unchanged")
    assert_error(correct(api, c1, "stock.nobody", 1), 422, "correction_figure")
    assert_error(correct(api, c1, "verifications.coverage", 1), 422, "correction_figure")  # a share
    assert_error(correct(api, c1, "stock.total", 1, reason=None), 422)
    assert_error(correct(api, c1, "stock.total", -1), 422)
    assert_error(correct(api, c1, "stock.total", 1, user="admin"), 403)
    assert_error(correct(api, c1, "stock.total", 1, user="auditor"), 403)
    assert_error(correct(api, c1, "stock.total", 1, user="sup_other"), 404)
    assert_error(correct(api, world.community("c2"), "stock.total", 1, user="worker2"), 409, "report_not_locked")
    assert len(rows(engine, "SELECT id FROM report_corrections")) == 3
    events = audit_events(engine, "cycle.report.correct")
    assert [json.loads(e["detail"])["code"] for e in events] == ["stock.total", "stock.total",
                                                                 "verifications.PRESENT"]
    assert "漏登" not in all_audit_text(engine)
    corrections_in_the_files(api, world, read)


def corrections_in_the_files(api: Api, world: World, read: dict[str, Any]) -> None:
    """The corrections of test_corrections_after_the_lock in the CSV, the XLSX (a formula-looking reason stays text)
    and the street's roll-up."""
    c1 = world.community("c1")
    male = read["stock"]["male"]
    ok(correct(api, c1, "stock.male", male + 1, reason="=1+1"), 201)
    one, two, _, four = ok(api.as_("worker1", "GET", url(c1)))["corrections"]
    exported = api.as_("worker1", "GET", url(c1) + ".csv").content.decode("utf-8-sig")
    by_code = {line[5]: line[6:] for line in list(csv.reader(io.StringIO(exported)))[1:]}
    assert by_code["stock.total"][2:] == [str(two["corrected"]), f"#1:{one['id']};#2:{two['id']}"]
    assert by_code["stock.male"][2:] == [str(male + 1), f"#4:{four['id']}"]
    assert by_code["stock.female"][2:] == ["", ""]
    book = openpyxl.load_workbook(io.BytesIO(api.as_("worker1", "GET", url(c1) + ".xlsx").content))
    cells = [list(r) for r in book["月报告"].iter_rows(values_only=True)]
    assert cells[2] == ["类别", "指标", "数值", "单位", "更正后数值", "更正说明"]
    [total] = [r for r in cells if r[1] == "期末在册人数"]
    assert total[2:] == [read["stock"]["total"], "人", two["corrected"],
                         f"※已更正：核定值 {read['stock']['total']}，见更正#1、#2"]
    [listed] = [r for r in cells if r[0] == "#4"]
    assert listed[1:5] == ["在册人口·其中：男（stock.male）", male, male + 1, "'=1+1"]
    street = ok(api.as_("sup_street", "GET", f"{REPORTS}/rollup/{c1['parent_id']}/{P}"))
    [row] = [c for c in street["communities"] if c["community_id"] == c1["id"]]
    assert row["corrected"]["stock.male"] == male + 1 and len(row["corrections"]) == 4
    others = sum(c["stock"]["male"] for c in street["communities"] if c["community_id"] != c1["id"])
    assert street["corrected"]["stock.male"] == others + male + 1
    assert street["corrected_communities"] == {code: [c1["id"]] for code in read["corrected"] | {"stock.male": 0}}
