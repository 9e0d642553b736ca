"""The monthly report (月报告) through the HTTP API: a small community built by hand over last month, every figure
checked against the numbers counted by hand here, the XLSX read back cell by cell, the CSV, scope and errors."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from app.core.types import CITY_TZ
from app.cycle.assistance import service as assistance_service
from app.cycle.tasks import service as task_service
from tests.assertions import ok
from tests.conftest import Api, World
from tests.cycle.report_helpers import (
    P_FIRST,
    P_LAST,
    REPORTS,
    TODAY,
    V1,
    P,
    at,
    day,
    freeze_clock,
    visit,
)
from tests.cycle.verify_helpers import open_month, record, verifications
from tests.db import audit_events, rows
from tests.factories import id_number


def years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return date(d.year - years, 2, 28)


@dataclass
class Town:
    community: dict[str, Any]
    people: dict[str, dict[str, Any]]
    visits: dict[str, dict[str, Any]]


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_clock(monkeypatch)


# (key, name, born, ID sequence (odd: male), arrival)
PEOPLE = [
    ("A", "甲女", date(1990, 3, 15), "002", day(1)),  # arrives this month; a key person (no health record)
    ("B", "乙男", date(1985, 6, 1), "001", day(3)),  # arrives this month
    ("C", "丙女", date(1960, 1, 1), "004", date(2025, 1, 1)),  # 66: not 15–49
    ("E", "戊女", years_before(P_LAST, 15), "006", date(2025, 6, 1)),  # exactly 15 at the month's end: counted
    ("G", "己女", years_before(P_LAST, 50), "008", date(2025, 6, 1)),  # exactly 50 at the month's end: not counted
    ("H", "庚男", date(1970, 1, 1), "003", date(2025, 2, 1)),  # returns home on day 4: a departure
    ("J", "辛男", date(1980, 1, 1), "005", date(2025, 3, 1)),  # leaves the city on day 8: a departure
    ("K", "壬男", date(1975, 5, 5), "007", date(2025, 4, 1)),  # moves within the community on day 9: neither
]


@pytest.fixture()
def town(api: Api, world: World) -> Town:
    c1 = world.community("c1")
    street = next(s for s in world.streets if s["id"] == c1["parent_id"])
    community = ok(api.as_("admin", "POST", f"{V1}/divisions", json={
        "code": street["code"] + "998", "name": "报表社区", "level": "community", "parent_id": street["id"],
        "community_type": "mixed", "vintage": 2024}), 201)
    dwellings = [ok(api.as_("sup_street", "POST", f"{V1}/dwellings", json={
        "community_id": community["id"], "address": f"报表路{n}号", "kind": "rental"}), 201)["id"] for n in (1, 2)]
    people = {}
    for key, name, born, seq, arrival in PEOPLE:
        people[key] = ok(api.as_("sup_street", "POST", f"{V1}/residents", json={
            "name": name, "id_number": id_number(born, seq), "hukou_code": "411602",
            "arrival_date": arrival.isoformat(), "dwelling_id": dwellings[0]}), 201)
    k = people["K"]
    ok(api.as_("sup_street", "POST", f"{V1}/residents/{k['id']}/move", json={
        "version": k["version"], "dwelling_id": dwellings[1], "moved_on": day(9).isoformat()}))
    visits = {
        "V1": visit(api, people["A"]["id"], "in_person", "met", at(5), services=[
            {"item_code": "contraceptives", "quantity": 3}, {"item_code": "education"}]),
        "V2": visit(api, people["B"]["id"], "phone", "met", at(6)),
        "V3": visit(api, people["C"]["id"], "phone", "unreachable", at(7)),
        "V4": visit(api, people["B"]["id"], "in_person", "not_home", at(8)),
        "V6": visit(api, people["C"]["id"], "phone", "met", at(0, on=P_FIRST - timedelta(days=1))),  # the month before
    }
    v3 = visits["V3"]
    visits["V3b"] = ok(api.as_("sup_street", "POST", f"{V1}/visits/{v3['id']}/corrections", json={
        "mode": "phone", "purpose": "routine", "outcome": "refused", "started_at": at(7).isoformat(),
        "ended_at": (at(7) + timedelta(minutes=5)).isoformat(), "correction_reason": "wrong_outcome"}), 201)
    for key, status in (("A", "valid"), ("E", "missing")):
        ok(api.as_("sup_street", "POST", f"{V1}/residents/{people[key]['id']}/fp-documents",
                   json={"status": status}), 201)
    for key, urgent in (("A", False), ("B", True)):  # sent on day 2: B's (urgent) is due on day 17, A's next month
        draft = ok(api.as_("admin", "POST", f"{V1}/assistance-requests", json={
            "resident_id": people[key]["id"], "topic": "residence", "urgent": urgent}), 201)
        ok(api.as_("admin", "POST", f"{V1}/assistance-requests/{draft['id']}/send", json={"version": 1}))
    open_month(api, P, district_code=c1["district_code"])
    mine = {v["resident_id"]: v for v in verifications(api, "sup_street", community_id=community["id"], month=P)}
    assert len(mine) == 8
    for key, outcome, extra in (("A", "PRESENT", {}), ("B", "PRESENT", {}), ("E", "PRESENT", {}),
                                ("C", "NOT_FOUND", {}), ("H", "RETURNED_HOME", {"moved_on": day(4).isoformat()}),
                                ("J", "LEFT_CITY", {"moved_on": day(8).isoformat()})):
        record(api, "sup_street", mine[people[key]["id"]], outcome, **extra)
    return Town(community, people, visits)


def expected_services(api: Api) -> dict[str, tuple[int, int]]:
    items = ok(api.as_("admin", "GET", f"{V1}/catalog"))["items"]
    in_force = {i["code"]: (0, 0) for i in items if date.fromisoformat(i["effective_from"]) <= P_LAST
                and (i["effective_to"] is None or date.fromisoformat(i["effective_to"]) >= P_FIRST)}
    return {**in_force, "contraceptives": (1, 3), "education": (1, 1)}


def test_every_figure_of_last_month_matches_the_hand_count(api: Api, town: Town, engine: Engine) -> None:
    report = ok(api.as_("sup_street", "GET", f"{REPORTS}/{town.community['id']}/{P}"))
    assert (report["month"], report["as_of"], report["complete"]) == (P, P_LAST.isoformat(), True)
    assert report["community_name"] == "报表社区"
    # Living there on the last day: A B C E G K (H and J left; K moved between two dwellings of the community).
    assert report["stock"] == {"total": 6, "male": 2, "female": 4, "women_15_49": 2}  # A and E are 15–49
    assert report["movement"] == {"arrivals": 2, "departures": 2}  # A, B in; H, J out
    outcomes = {"PRESENT": 3, "MOVED_WITHIN_CITY": 0, "LEFT_CITY": 1, "RETURNED_HOME": 1, "NOT_FOUND": 1,
                "SETTLED": 0, "DECEASED": 0}
    v = report["verifications"]
    assert (v["total"], v["verified"], v["pending"], v["coverage"], v["by_outcome"]) == (8, 6, 2, 0.75, outcomes)
    assert v["period_state"] == "open" and v["period_id"]
    # V1, V4 in person (V1 met); V2 and the correction of V3 by phone (V2 met); V3 superseded, V6 the month before.
    assert report["visits"] == {"in_person": 2, "phone": 2, "in_person_met": 1, "phone_met": 1}
    assert report["key_persons"] == {"registered": 2, "visited": 1, "share": 0.5}  # A and E; V1 met A
    assert report["fp_documents"] == {"checked": 2, "by_status": {"valid": 1, "temporary": 0, "expired": 0,
                                                                  "nonconforming": 0, "missing": 1}}
    assert {s["code"]: (s["deliveries"], s["quantity"]) for s in report["services"]} == expected_services(api)
    # Open past their due day at the month's end: the new-arrival visits of A B C E G K (due day 17; H's and J's
    # were cancelled when they left) and E's key-person visit (due day 25; V1 completed A's); B's urgent request.
    assert report["overdue"] == {"tasks": 7, "tasks_by_kind": {"new_arrival_visit": 6, "key_person_monthly": 1,
                                                               "follow_up": 0, "verification": 0,
                                                               "reported_arrival": 0},
                                 "assistance_requests": 1}
    assert audit_events(engine, "cycle.report.export") == []  # counts only: reading the figures is not recorded
    # The same figures for every caller who may see the community.
    for user in ("sup_district", "admin", "auditor"):
        again = ok(api.as_(user, "GET", f"{REPORTS}/{town.community['id']}/{P}"))
        assert {k: again[k] for k in ("stock", "movement", "verifications", "visits", "overdue")} == {
            k: report[k] for k in ("stock", "movement", "verifications", "visits", "overdue")}


def test_the_current_month_counts_so_far(api: Api, town: Town) -> None:
    report = ok(api.as_("sup_street", "GET", f"{REPORTS}/{town.community['id']}/{TODAY:%Y-%m}"))
    assert (report["complete"], report["as_of"]) == (False, TODAY.isoformat())
    assert report["stock"] == {"total": 6, "male": 2, "female": 4, "women_15_49": 2}  # still A and E (E is 15)
    assert report["movement"] == {"arrivals": 0, "departures": 0}
    v = report["verifications"]
    assert (v["period_id"], v["total"], v["coverage"]) == (None, 0, None)  # not opened: nothing to cover


def test_items_settled_after_the_month_still_count_for_it(api: Api, town: Town,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """G's new-arrival visit cancelled and B's urgent request answered today, after the month ended: both were
    overdue when the month ended, so last month still counts them; the current month no longer does."""
    monkeypatch.setattr(task_service, "utcnow", lambda: datetime.now(CITY_TZ))
    monkeypatch.setattr(assistance_service, "today", lambda: TODAY)
    g, b = town.people["G"]["id"], town.people["B"]["id"]
    [task] = ok(api.as_("sup_street", "GET", f"{V1}/tasks", params={"resident_id": g,
                                                                     "kind": "new_arrival_visit"}))["items"]
    ok(api.as_("sup_street", "POST", f"{V1}/tasks/{task['id']}/cancel",
               json={"reason": "no_longer_needed", "version": task["version"]}))
    [request] = ok(api.as_("admin", "GET", f"{V1}/assistance-requests", params={"resident_id": b}))["items"]
    matched = ok(api.as_("admin", "POST", f"{V1}/assistance-requests/{request['id']}/progress",
                         json={"state": "matched", "version": request["version"]}))
    ok(api.as_("admin", "POST", f"{V1}/assistance-requests/{request['id']}/answer",
               json={"finding": "confirmed", "version": matched["version"]}))
    last = ok(api.as_("sup_street", "GET", f"{REPORTS}/{town.community['id']}/{P}"))["overdue"]
    assert (last["tasks"], last["tasks_by_kind"]["new_arrival_visit"], last["assistance_requests"]) == (7, 6, 1)
    now = ok(api.as_("sup_street", "GET", f"{REPORTS}/{town.community['id']}/{TODAY:%Y-%m}"))["overdue"]
    # Now: the five new-arrival visits still open and E's key-person visit, all due last month; B's request is
    # answered, and A's (sent on day 2, due 30 days later) is overdue once its due day has passed.
    [a_request] = ok(api.as_("admin", "GET", f"{V1}/assistance-requests",
                             params={"resident_id": town.people["A"]["id"]}))["items"]
    a_overdue = int(date.fromisoformat(a_request["due_on"]) < TODAY)
    assert (now["tasks"], now["tasks_by_kind"]["new_arrival_visit"], now["assistance_requests"]) == (6, 5, a_overdue)


def xlsx_rows(content: bytes) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [tuple(row) for row in book.active.iter_rows(values_only=True)]


def test_the_xlsx_is_the_printed_form(api: Api, town: Town, engine: Engine) -> None:
    community = town.community
    response = api.as_("sup_street", "GET", f"{REPORTS}/{community['id']}/{P}.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert f'filename="report-{community["code"]}-{P}.xlsx"' in response.headers["content-disposition"]
    sheet_rows = xlsx_rows(response.content)
    assert sheet_rows[0][0] == "流动人口服务管理月报告"
    assert sheet_rows[1][0] == f"填报单位：报表社区（{community['code']}）"
    assert sheet_rows[1][2] == f"报告期：{P_FIRST.year}年{P_FIRST.month}月"
    assert sheet_rows[2] == ("类别", "指标", "数值", "单位")
    body = {(r[0], r[1]): (r[2], r[3]) for r in sheet_rows[3:] if r[0] and r[1] is not None and r[0] != "填报人："}
    expected = {
        ("在册人口", "期末在册人数"): (6, "人"), ("在册人口", "其中：男"): (2, "人"),
        ("在册人口", "其中：女"): (4, "人"),
        ("在册人口", "其中：育龄妇女（15–49岁）"): (2, "人"),
        ("人口变动", "本月流入"): (2, "人"), ("人口变动", "本月流出"): (2, "人"),
        ("月核查", "应核查"): (8, "人"), ("月核查", "已核查"): (6, "人"), ("月核查", "待核查"): (2, "人"),
        ("月核查", "核查覆盖率"): (0.75, None),
        ("月核查", "核查结果：在住"): (3, "人"), ("月核查", "核查结果：本市内迁移"): (0, "人"),
        ("月核查", "核查结果：离开本市"): (1, "人"), ("月核查", "核查结果：返回户籍地"): (1, "人"),
        ("月核查", "核查结果：查无此人"): (1, "人"), ("月核查", "核查结果：已落户本地"): (0, "人"),
        ("月核查", "核查结果：死亡"): (0, "人"),
        ("月访视", "入户访视"): (2, "次"), ("月访视", "其中：见到本人"): (1, "次"),
        ("月访视", "电话访视"): (2, "次"), ("月访视", "其中：联系到本人"): (1, "次"),
        ("重点对象", "重点对象人数"): (2, "人"), ("重点对象", "本月已访视"): (1, "人"),
        ("重点对象", "访视率"): (0.5, None),
        ("婚育证明", "本月查验"): (2, "份"), ("婚育证明", "其中：有效"): (1, "份"),
        ("婚育证明", "其中：临时"): (0, "份"),
        ("婚育证明", "其中：过期"): (0, "份"), ("婚育证明", "其中：不符合要求"): (0, "份"),
        ("婚育证明", "其中：未提供"): (1, "份"),
        ("逾期事项", "逾期任务"): (7, "件"), ("逾期事项", "其中：新到人员访视"): (6, "件"),
        ("逾期事项", "其中：重点对象月访视"): (1, "件"), ("逾期事项", "其中：随访"): (0, "件"),
        ("逾期事项", "其中：核查"): (0, "件"), ("逾期事项", "其中：公安通报新到人员走访"): (0, "件"),
        ("逾期事项", "逾期协查"): (1, "件"),
    }
    items = {i["code"]: i for i in ok(api.as_("admin", "GET", f"{V1}/catalog"))["items"]}
    for code, (n, q) in expected_services(api).items():
        expected[("免费服务", f"{items[code]['name_zh']}（人次）")] = (n, "人次")
        expected[("免费服务", f"{items[code]['name_zh']}（数量）")] = (q, items[code]["unit"])
    assert body == expected
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    coverage_row = next(i for i, r in enumerate(sheet_rows, start=1) if r[1] == "核查覆盖率")
    assert book.active.cell(row=coverage_row, column=3).number_format == "0.0%"
    assert "A1:D1" in {str(m) for m in book.active.merged_cells.ranges}
    assert sheet_rows[-1][:3] == ("填报人：", "审核人：", "日期：    年  月  日")
    assert sheet_rows[-2] == (None, None, None, None)  # a blank line above the signatures
    [event] = audit_events(engine, "cycle.report.export")
    assert (event["target_id"], event["area_path"], event["actor_role"]) == (
        community["id"], community["path"], "supervisor")


def test_the_csv_is_one_row_per_figure(api: Api, town: Town, engine: Engine) -> None:
    community = town.community
    response = api.as_("auditor", "GET", f"{REPORTS}/{community['id']}/{P}.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0] == ["月份", "社区代码", "社区", "类别", "指标", "代码", "数值", "单位", "更正后数值", "更正记录"]
    assert all(line[:3] == [P, community["code"], "报表社区"] for line in lines[1:])
    values = {line[5]: line[6] for line in lines[1:]}
    assert (values["stock.total"], values["stock.women_15_49"], values["movement.departures"]) == ("6", "2", "2")
    assert (values["verifications.coverage"], values["key_persons.share"]) == ("0.75", "0.5")
    assert (values["services.contraceptives.quantity"], values["overdue.assistance_requests"]) == ("3", "1")
    [event] = audit_events(engine, "cycle.report.export")
    assert event["actor_role"] == "auditor" and '"format": "csv"' in event["detail"]


def test_out_of_scope_is_not_found(api: Api, town: Town, world: World, engine: Engine) -> None:
    ours = town.community["id"]
    for user in ("worker1", "worker3", "sup_other", "grid_worker"):
        for suffix in ("", ".xlsx", ".csv"):
            response = api.as_(user, "GET", f"{REPORTS}/{ours}/{P}{suffix}")
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), (user, suffix)
    assert audit_events(engine, "cycle.report.export") == []
    c1 = world.community("c1")
    assert ok(api.as_("worker1", "GET", f"{REPORTS}/{c1['id']}/{P}"))["community_id"] == c1["id"]  # own community
    street = c1["parent_id"]  # a division that is not a community, and an id that is nothing
    for target in (street, "0" * 32):
        assert api.as_("admin", "GET", f"{REPORTS}/{target}/{P}").status_code == 404


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "26-11", "abcd-ef", "0000-01", "2026_11"])
def test_a_bad_month_is_refused(api: Api, world: World, month: str) -> None:
    c1 = world.community("c1")["id"]
    for suffix in ("", ".xlsx"):
        response = api.as_("worker1", "GET", f"{REPORTS}/{c1}/{month}{suffix}")
        assert (response.status_code, response.json()["code"]) == (422, "report_month_format"), response.text


def test_a_future_month_is_refused(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")["id"]
    following = (TODAY.replace(day=28) + timedelta(days=5)).strftime("%Y-%m")
    for suffix in ("", ".csv"):
        response = api.as_("worker1", "GET", f"{REPORTS}/{c1}/{following}{suffix}")
        assert (response.status_code, response.json()["code"]) == (422, "report_month_future"), response.text
    assert audit_events(engine, "cycle.report.export") == []


def test_no_cell_is_a_formula(api: Api, world: World) -> None:
    """A catalogue item named like a formula is written as text in both files (and listed with zeros: in force)."""
    ok(api.as_("admin", "POST", f"{V1}/catalog/items", json={
        "code": "formula_item", "name_zh": "=1+1", "name_en": "x", "unit": "@次", "effective_from": P_FIRST.isoformat(),
        "note": "test"}), 201)
    c1 = world.community("c1")["id"]
    lines = list(csv.reader(io.StringIO(ok_bytes(api.as_("worker1", "GET", f"{REPORTS}/{c1}/{P}.csv")).decode(
        "utf-8-sig"))))
    [line] = [x for x in lines if x[5] == "services.formula_item.quantity"]
    assert (line[4], line[6], line[7]) == ("'=1+1（数量）", "0", "'@次")
    sheet_rows = xlsx_rows(ok_bytes(api.as_("worker1", "GET", f"{REPORTS}/{c1}/{P}.xlsx")))
    assert ("免费服务", "'=1+1（人次）", 0, "人次") in sheet_rows


def ok_bytes(response: Any) -> bytes:
    assert response.status_code == 200, response.text
    return bytes(response.content)


def test_this_months_stock_is_the_register(api: Api, world: World, engine: Engine) -> None:
    """On the demo city: the stock counted from the tenancies today is the register's registered residents."""
    c1 = world.community("c1")
    report = ok(api.as_("worker1", "GET", f"{REPORTS}/{c1['id']}/{TODAY:%Y-%m}"))
    [counted] = rows(engine, "SELECT COUNT(*) AS n, SUM(CASE WHEN sex = 'M' THEN 1 ELSE 0 END) AS m FROM residents "
                             "WHERE community_id = :c AND status = 'REGISTERED' AND merged_into_id IS NULL", c=c1["id"])
    assert (report["stock"]["total"], report["stock"]["male"]) == (counted["n"], counted["m"]) and counted["n"] > 0
