"""Issue 13, "Done when": one community walked through a whole month through the HTTP API.

A new street of two communities (X, Y) in the first district. Three months are opened one after the other (the
clock helpers of the cycle tests); a resident not found in each of them leaves the register as whereabouts
unknown in the third, the report's month P (last month). In P two phones pull their lists and push a mix of
outcomes through /sync/push, one of them a move from X to Y that opens a pending verification in Y. Then X's
report is submitted, returned, resubmitted and approved, corrected after the lock, the roll-ups of the street,
the district and the city are checked against figures counted by hand here, the XLSX is read back cell by
cell, and the month's verification list is exported."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from app.core.types import CITY_TZ
from app.cycle.reports import approval
from app.sync import pull as pull_module
from app.sync.wire import date_to_ms
from tests.assertions import ok
from tests.conftest import Api, World
from tests.cycle.report_helpers import P_FIRST, P_LAST, REPORTS, V1, D, P, day, freeze_clock
from tests.cycle.verify_helpers import open_month, record, set_today, verifications
from tests.db import rows
from tests.factories import id_number
from tests.sync.helpers import pull
from tests.sync.push_helpers import push

P1_FIRST = (P_FIRST - timedelta(days=1)).replace(day=1)  # the month before P
P2_FIRST = (P1_FIRST - timedelta(days=1)).replace(day=1)  # and the one before that
ON_TIME = datetime.combine(P_LAST + timedelta(days=10), time(9), CITY_TZ)
# (community, key, name, born, ID sequence: odd = male). Everyone arrived in P2.
PEOPLE = [("X", "A", "甲女", date(1990, 3, 15), "202"), ("X", "B", "乙男", date(1985, 6, 1), "201"),
          ("X", "C", "丙女", date(1992, 7, 7), "204"), ("X", "N", "寻男", date(1980, 1, 9), "203"),
          ("X", "M", "迁女", date(1995, 2, 2), "206"), ("X", "L", "离男", date(1970, 5, 5), "205"),
          ("Y", "F", "己女", date(1988, 8, 8), "208")]
OUTCOMES = ("PRESENT", "MOVED_WITHIN_CITY", "LEFT_CITY", "RETURNED_HOME", "SETTLED", "DECEASED", "NOT_FOUND")
CHECKED = ("stock", "movement")  # figure groups compared whole; verifications are compared field by field


@dataclass
class Walk:
    street: dict[str, Any]
    units: dict[str, dict[str, Any]]  # X, Y
    dwellings: dict[str, str]
    people: dict[str, dict[str, Any]]
    district: dict[str, Any]
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)  # roll-ups of P before the phones


def outcomes(**counts: int) -> dict[str, int]:
    return {o: counts.get(o, 0) for o in OUTCOMES}


# Counted by hand. X: A, B, C stay (C is never verified); N leaves as whereabouts unknown on D, M moves to Y on
# the 8th, L leaves the city on the 9th. Y: F stays and M arrives; both are verified present.
HAND = {
    "X": {"stock": {"total": 3, "male": 1, "female": 2, "women_15_49": 2},
          "movement": {"arrivals": 0, "departures": 3},
          "verifications": {"total": 6, "verified": 5, "pending": 1,
                            "by_outcome": outcomes(PRESENT=2, MOVED_WITHIN_CITY=1, LEFT_CITY=1, NOT_FOUND=1)}},
    "Y": {"stock": {"total": 2, "male": 0, "female": 2, "women_15_49": 2},
          "movement": {"arrivals": 1, "departures": 0},
          "verifications": {"total": 2, "verified": 2, "pending": 0, "by_outcome": outcomes(PRESENT=2)}},
}


def clock(monkeypatch: pytest.MonkeyPatch, today: date) -> None:
    set_today(monkeypatch, today)
    monkeypatch.setattr(pull_module, "city_today", lambda: today)


def build(api: Api, world: World) -> Walk:
    """The street, its two communities with a dwelling each, the people, and the two workers' phones' areas."""
    district = next(d for d in world.districts if d["code"] == world.community("c1")["district_code"])
    street = ok(api.as_("admin", "POST", f"{V1}/divisions", json={
        "code": district["code"] + "996", "name": "月巡街道", "level": "street", "parent_id": district["id"],
        "vintage": 2024}), 201)
    units = {key: ok(api.as_("admin", "POST", f"{V1}/divisions", json={
        "code": street["code"] + f"00{n}", "name": f"月巡社区{key}", "level": "community", "parent_id": street["id"],
        "community_type": "mixed", "vintage": 2024}), 201) for n, key in enumerate("XY", start=1)}
    dwellings = {key: ok(api.as_("sup_district", "POST", f"{V1}/dwellings", json={
        "community_id": c["id"], "address": f"月巡路{key}号", "kind": "rental"}), 201)["id"]
        for key, c in units.items()}
    people = {key: ok(api.as_("sup_district", "POST", f"{V1}/residents", json={
        "name": name, "id_number": id_number(born, seq), "hukou_code": "411602",
        "arrival_date": P2_FIRST.replace(day=2).isoformat(), "dwelling_id": dwellings[unit]}), 201)
        for unit, key, name, born, seq in PEOPLE}
    # worker1 works X and Y (a move needs the new dwelling in the recorder's area); worker2 works Y.
    for user, keys in (("worker1", "XY"), ("worker2", "Y")):
        account = ok(api.as_("admin", "GET", f"{V1}/users/{world.users[user]}"))
        ok(api.as_("admin", "PATCH", f"{V1}/users/{world.users[user]}", json={
            "version": account["version"], "division_ids": [units[k]["id"] for k in keys]}))
    return Walk(street, units, dwellings, people, district)


def mine(api: Api, walk: Walk, user: str, key: str, person: str, month: str) -> dict[str, Any]:
    [v] = [v for v in verifications(api, user, community_id=walk.units[key]["id"], month=month)
           if v["resident_id"] == walk.people[person]["id"]]
    return v


def not_found_streak(api: Api, walk: Walk, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """P2 and P1: N is not found twice; the register keeps them."""
    for n, first in enumerate((P2_FIRST, P1_FIRST), start=1):
        clock(monkeypatch, first.replace(day=3))
        month = first.strftime("%Y-%m")
        opened = open_month(api, month, district_code=walk.district["code"])
        assert opened["periods_created"] >= 2
        assert len(verifications(api, "worker1", community_id=walk.units["X"]["id"], month=month)) == 6
        done = record(api, "worker1", mine(api, walk, "worker1", "X", "N", month), "NOT_FOUND")
        assert done["not_found_streak"] == n
    assert rows(engine, "SELECT status FROM residents WHERE id = :i", i=walk.people["N"]["id"]) == [
        {"status": "REGISTERED"}]


def changed(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A verification as WatermelonDB pushes it after the worker recorded an outcome offline."""
    return {**raw, **fields, "_status": "updated", "_changed": ",".join(fields)}


def held(body: dict[str, Any], walk: Walk, key: str) -> dict[str, dict[str, Any]]:
    """The phone's verifications of P in the community, by person."""
    by_id = {p["id"]: k for k, p in walk.people.items()}
    return {by_id[v["resident_id"]]: v for v in body["changes"]["verifications"]["updated"]
            if v["month"] == P and v["community_id"] == walk.units[key]["id"]}


def phones(api: Api, walk: Walk, engine: Engine) -> None:
    """P: phone X records five outcomes offline and pushes them; phone Y then holds the hand-over and records it."""
    # The police report L deregistered: a partner's proposal, which the worker confirms on the phone.
    ok(api.as_("admin", "POST", f"{V1}/cycle/proposals", json={
        "resident_id": walk.people["L"]["id"], "outcome": "LEFT_CITY", "source": "police", "month": P}))
    first = pull(api, "worker1", schema_version=3, device="phone-xxxx")
    x = held(first, walk, "X")
    assert set(x) == {"A", "B", "C", "N", "M", "L"} and all(v["outcome"] is None for v in x.values())
    assert (x["L"]["proposed_outcome"], x["L"]["proposed_source"]) == ("LEFT_CITY", "police")
    result = push(api, "worker1", {"verifications": {"created": [], "deleted": [], "updated": [
        changed(x["A"], outcome="PRESENT", evidence="phone"),
        changed(x["B"], outcome="PRESENT", evidence="phone"),
        changed(x["N"], outcome="NOT_FOUND", evidence="phone"),
        changed(x["M"], outcome="MOVED_WITHIN_CITY", evidence="phone", new_dwelling_id=walk.dwellings["Y"],
                moved_on=date_to_ms(day(8))),
        changed(x["L"], outcome="LEFT_CITY", evidence="partner", moved_on=date_to_ms(day(9))),
    ]}}, first["timestamp"], device="phone-xxxx")
    assert (result["rejected"], result["applied"]) == ([], {"verifications": 5})
    people = {k: walk.people[k]["id"] for k in ("N", "M", "L")}
    got = {r["id"]: r for r in rows(engine, "SELECT id, status, left_reason, left_on FROM residents "
                                            "WHERE id IN (:n, :m, :l)", **{k.lower(): v for k, v in people.items()})}
    assert (got[people["N"]]["status"], got[people["N"]]["left_reason"]) == ("LEFT", "whereabouts_unknown")
    assert str(got[people["N"]]["left_on"]) == D.isoformat()
    assert (got[people["L"]]["status"], got[people["L"]]["left_reason"]) == ("LEFT", "left_city")
    assert got[people["M"]]["status"] == "REGISTERED"
    assert mine(api, walk, "worker1", "X", "N", P)["not_found_streak"] == 3

    phone_y = pull(api, "worker2", schema_version=3, device="phone-yyyy")
    y = held(phone_y, walk, "Y")
    assert set(y) == {"F", "M"} and y["M"]["outcome"] is None  # the hand-over: pending in the receiving community
    assert y["M"]["id"] != x["M"]["id"]
    result = push(api, "worker2", {"verifications": {"created": [], "deleted": [], "updated": [
        changed(y["F"], outcome="PRESENT", evidence="phone"), changed(y["M"], outcome="PRESENT", evidence="phone"),
    ]}}, phone_y["timestamp"], device="phone-yyyy")
    assert (result["rejected"], result["applied"]) == ([], {"verifications": 2})
    # The moved person's recorded verification stays in X, as recorded.
    assert mine(api, walk, "worker1", "X", "M", P)["outcome"] == "MOVED_WITHIN_CITY"


def report_url(walk: Walk, key: str, action: str = "") -> str:
    return f"{REPORTS}/{walk.units[key]['id']}/{P}" + (f"/{action}" if action else "")


def approve_and_correct(api: Api, walk: Walk) -> dict[str, Any]:
    """Submit, return, resubmit, approve X's report; then a correction after the lock. Returns the final read."""
    steps = [("worker1", "submit", {"version": 0}, "submitted"),
             ("sup_district", "return", {"version": 1, "reason": "C 未核查，请补核"}, "returned"),
             ("worker1", "submit", {"version": 2}, "resubmitted"),
             ("sup_district", "approve", {"version": 3}, "approved")]
    for user, action, body, state in steps:
        answer = ok(api.as_(user, "POST", report_url(walk, "X", action), json=body))
        assert answer["submission"]["state"] == state
    locked = api.as_("worker1", "POST", report_url(walk, "X", "submit"), json={"version": 4})
    assert (locked.status_code, locked.json()["code"]) == (409, "report_locked")
    corrected = ok(api.as_("worker1", "POST", report_url(walk, "X", "corrections"), json={
        "code": "stock.total", "value": 4, "reason": "补登一人"}), 201)
    assert corrected["corrected"] == {"stock.total": 4}
    report = ok(api.as_("sup_district", "GET", report_url(walk, "X")))
    s = report["submission"]
    assert (s["state"], s["submissions"], s["late"], s["frozen"]) == ("approved", 2, False, True)
    assert report["corrected"] == {"stock.total": 4} and report["stock"]["total"] == 3  # approved value kept
    assert [(c["code"], c["original"], c["corrected"]) for c in report["corrections"]] == [("stock.total", 3, 4)]
    return dict(report)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The hand-checked figures of a report or of a roll-up's totals."""
    v = report["verifications"]
    return {**{g: report[g] for g in CHECKED}, "verifications": {
        "total": v["total"], "verified": v["verified"], "pending": v["pending"], "by_outcome": v["by_outcome"]}}


def add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: add(a[k], b[k]) if isinstance(a[k], dict) else a[k] + b[k] for k in a}


def check_rollups(api: Api, walk: Walk, world: World) -> None:
    """Street: exactly the hand figures. District and city: the hand figures of X and Y plus the other
    communities' rows, which the walk left as they were before the phones; shares from the sums."""
    ours = {walk.units[k]["id"]: k for k in "XY"}
    hand_street = add(HAND["X"], HAND["Y"])
    levels = (("street", walk.street["id"], "sup_district"), ("district", walk.district["id"], "sup_district"),
              ("city", world.city["id"], "admin"))
    for level, division, user in levels:
        rollup = ok(api.as_(user, "GET", f"{REPORTS}/rollup/{division}/{P}"))
        assert rollup["level"] == level
        rows_by_id = {c["community_id"]: c for c in rollup["communities"]}
        for cid, key in ours.items():
            assert figures(rows_by_id[cid]) == HAND[key], (level, key)
        others = [c for cid, c in rows_by_id.items() if cid not in ours]
        before = {c["community_id"]: figures(c) for c in walk.baseline.get(level, {}).get("communities", [])}
        assert all(figures(c) == before[c["community_id"]] for c in others)
        expected = hand_street
        for c in others:
            expected = add(expected, figures(c))
        assert figures(rollup["totals"]) == expected, level
        # X's correction after the lock: its row says so, and the total of the figure is given corrected.
        assert rows_by_id[walk.units["X"]["id"]]["corrected"] == {"stock.total": 4}
        assert rollup["corrected"] == {"stock.total": expected["stock"]["total"] + 1}
        assert rollup["corrected_communities"] == {"stock.total": [walk.units["X"]["id"]]}
        v = expected["verifications"]
        assert rollup["totals"]["verifications"]["coverage"] == round(v["verified"] / v["total"], 4)
        n = len(rows_by_id)
        assert n == (2 if level == "street" else len(walk.baseline[level]["communities"]))
        assert level != "street" or others == []
        # X approved, on time (first submitted on the 10th of the month after P); Y never submitted.
        assert (rollup["submitted"], rollup["on_time"]) == (1, 1), level
        assert rollup["completeness"] == round(1 / n, 4) and rollup["timeliness"] == round(1 / n, 4)
    street = ok(api.as_("sup_district", "GET", f"{REPORTS}/rollup/{walk.street['id']}/{P}"))
    assert street["totals"]["verifications"]["coverage"] == round(7 / 8, 4)
    check_rollup_files(api, walk)


def check_rollup_files(api: Api, walk: Walk) -> None:
    """The street's files use X's corrected stock (4, total 6), marked, and list the correction."""
    url = f"{REPORTS}/rollup/{walk.street['id']}/{P}"
    table = list(csv.reader(io.StringIO(api.as_("sup_district", "GET", url + ".csv").content.decode("utf-8-sig"))))
    stock, note = table[0].index("在册人口·期末在册人数（人）"), table[0].index("更正说明")
    assert [(r[1], r[stock], r[note]) for r in table[1:]] == [
        (walk.units["X"]["code"], "4", "期末在册人数：※已更正：核定值 3，见更正#1"), (walk.units["Y"]["code"], "2", ""),
        (walk.street["code"], "6", f"期末在册人数：※含更正，核定合计 5，更正后 6（{walk.units['X']['code']}）")]
    response = api.as_("sup_district", "GET", url + ".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["月报告汇总"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[2][-1] == "更正说明" and [r[stock - 1] for r in cells[3:6]] == [4, 2, 6]
    assert sheet.cell(row=4, column=stock).fill.fgColor.rgb.endswith("FFF2CC")
    assert sheet.cell(row=5, column=stock).fill.fgColor.rgb in ("00000000", None)
    assert cells[-5][:2] == ["锁定后更正记录", None] and cells[-4][:2] == ["社区代码", "更正号"]
    assert cells[-3][:5] == [walk.units["X"]["code"], "#1", "在册人口·期末在册人数（stock.total）", 3, 4]


def check_xlsx(api: Api, walk: Walk, report: dict[str, Any]) -> None:
    """The printed form of X, cell by cell: the hand-counted rows, then every other row as the CSV has it. X was
    corrected after the lock: two more columns (the corrected value, a note naming the correction) and the list of
    corrections under the figures."""
    response = api.as_("worker1", "GET", report_url(walk, "X") + ".xlsx")
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["月报告"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    x = walk.units["X"]
    assert cells[0] == ["流动人口服务管理月报告", None, None, None, None, None]
    assert cells[1] == [f"填报单位：月巡社区X（{x['code']}）", None, None,
                        f"报告期：{P_FIRST.year}年{P_FIRST.month}月", None, None]
    assert cells[2] == ["类别", "指标", "数值", "单位", "更正后数值", "更正说明"]
    outcome_zh = {"PRESENT": "在住", "MOVED_WITHIN_CITY": "本市内迁移", "LEFT_CITY": "离开本市",
                  "RETURNED_HOME": "返回户籍地", "NOT_FOUND": "查无此人", "SETTLED": "已落户本地", "DECEASED": "死亡"}
    head = [["在册人口", "期末在册人数", 3, "人", 4, "※已更正：核定值 3，见更正#1"],
            ["在册人口", "其中：男", 1, "人"], ["在册人口", "其中：女", 2, "人"],
            ["在册人口", "其中：育龄妇女（15–49岁）", 2, "人"], ["人口变动", "本月流入", 0, "人"],
            ["人口变动", "本月流出", 3, "人"], ["月核查", "应核查", 6, "人"], ["月核查", "已核查", 5, "人"],
            ["月核查", "待核查", 1, "人"], ["月核查", "核查覆盖率", round(5 / 6, 4), None]]
    head += [["月核查", f"核查结果：{outcome_zh[o]}", HAND["X"]["verifications"]["by_outcome"][o], "人"]
             for o in report["verifications"]["by_outcome"]]
    head = [row + [None] * (6 - len(row)) for row in head]
    assert cells[3:3 + len(head)] == head
    assert sheet.cell(row=13, column=3).number_format == "0.0%"
    [fix] = report["corrections"]
    when = datetime.fromisoformat(fix["created_at"]).astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    assert cells[-6:] == [[None] * 6, ["锁定后更正记录", None, None, None, None, None],
                          ["更正号", "指标（代码）", "更正前", "更正后", "更正原因", "更正人、时间"],
                          ["#1", "在册人口·期末在册人数（stock.total）", 3, 4, "补登一人", f"worker1 {when}"],
                          [None] * 6, ["填报人：", "审核人：", "日期：    年  月  日", None, None, None]]
    flat = list(csv.reader(io.StringIO(api.as_("worker1", "GET", report_url(walk, "X") + ".csv")
                                       .content.decode("utf-8-sig"))))
    assert flat[0][-2:] == ["更正后数值", "更正记录"]
    flat = flat[1:]
    assert len(flat) == len(cells) - 9  # title, unit, header, blank line, corrections (3 rows), signatures
    for row, line in zip(cells[3:-6], flat, strict=True):
        value = line[6]
        expected = None if value == "" else (float(value) if "." in value else int(value))
        shown = "—" if expected is None else expected
        assert row[:4] == [line[3], line[4], shown, line[7] or None], (row, line)
        assert (row[4], line[8], line[9]) == ((4, "4", f"#1:{fix['id']}") if line[5] == "stock.total"
                                              else (None, "", ""))


def check_list(api: Api, walk: Walk) -> None:
    """The month's verification list of X as the office files it (CSV): each person with their outcome."""
    response = api.as_("worker1", "GET", "/api/v1/cycle/verifications.csv",
                       params={"month": P, "community_id": walk.units["X"]["id"]})
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]
    names = {p["name"]: k for k, p in walk.people.items()}
    got = {names[r[4]]: (r[7], r[12]) for r in table}
    assert got == {"A": ("PRESENT", "0"), "B": ("PRESENT", "0"), "C": ("", "0"), "N": ("NOT_FOUND", "3"),
                   "M": ("MOVED_WITHIN_CITY", "0"), "L": ("LEFT_CITY", "0")}


def test_a_community_walks_through_a_whole_month(api: Api, world: World, engine: Engine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approval, "now", lambda: ON_TIME)
    walk = build(api, world)
    not_found_streak(api, walk, engine, monkeypatch)
    freeze_clock(monkeypatch)
    clock(monkeypatch, D)
    open_month(api, P, district_code=walk.district["code"])
    for level, division, user in (("district", walk.district["id"], "sup_district"),
                                  ("city", world.city["id"], "admin")):
        walk.baseline[level] = ok(api.as_(user, "GET", f"{REPORTS}/rollup/{division}/{P}"))
    phones(api, walk, engine)
    report = approve_and_correct(api, walk)
    assert figures(report) == HAND["X"]
    assert report["verifications"]["coverage"] == round(5 / 6, 4)
    assert figures(ok(api.as_("worker2", "GET", report_url(walk, "Y")))) == HAND["Y"]
    check_rollups(api, walk, world)
    check_xlsx(api, walk, report)
    check_list(api, walk)
