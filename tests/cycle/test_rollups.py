"""Roll-ups of the monthly report (issue 13) through the HTTP API: a street of three communities built by hand
over last month; the totals equal the sum of each community's own report and the figures counted by hand, the
shares are recomputed from the sums (not averaged), scope, errors, and the files read back."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from tests.assertions import ok
from tests.conftest import Api, World
from tests.cycle.report_helpers import REPORTS, TODAY, V1, P, at, day, freeze_clock, visit
from tests.cycle.verify_helpers import open_month, record, verifications
from tests.db import audit_events
from tests.factories import id_number

ROLLUP = f"{REPORTS}/rollup"
FIGURES = ("stock", "movement", "verifications", "visits", "key_persons", "fp_documents", "services", "overdue")
# (community, key, name, born, ID sequence (odd: male)); all arrive in the month. Women 15–49 without a health
# record are key persons: A, D, F.
PEOPLE = [("X", "A", "甲女", date(1990, 3, 15), "102"), ("X", "B", "乙男", date(1985, 6, 1), "101"),
          ("X", "D", "丁女", date(1992, 7, 7), "104"), ("Y", "F", "己女", date(1995, 2, 2), "106")]


@dataclass
class Street:
    street: dict[str, Any]
    communities: dict[str, dict[str, Any]]  # X, Y, Z (Z has nobody)
    people: dict[str, dict[str, Any]]


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_clock(monkeypatch)


@pytest.fixture()
def street(api: Api, world: World) -> Street:
    district = next(d for d in world.districts if d["code"] == world.community("c1")["district_code"])
    new = ok(api.as_("admin", "POST", f"{V1}/divisions", json={
        "code": district["code"] + "997", "name": "汇总街道", "level": "street", "parent_id": district["id"],
        "vintage": 2024}), 201)
    units = {key: ok(api.as_("admin", "POST", f"{V1}/divisions", json={
        "code": new["code"] + f"00{n}", "name": f"汇总社区{key}", "level": "community", "parent_id": new["id"],
        "community_type": "mixed", "vintage": 2024}), 201) for n, key in enumerate("XYZ", start=1)}
    dwellings = {key: ok(api.as_("sup_district", "POST", f"{V1}/dwellings", json={
        "community_id": c["id"], "address": f"汇总路{key}号", "kind": "rental"}), 201)["id"]
        for key, c in units.items()}
    people = {key: ok(api.as_("sup_district", "POST", f"{V1}/residents", json={
        "name": name, "id_number": id_number(born, seq), "hukou_code": "411602",
        "arrival_date": day(2).isoformat(), "dwelling_id": dwellings[unit]}), 201)
        for unit, key, name, born, seq in PEOPLE}
    visit(api, people["A"]["id"], "in_person", "met", at(5), user="sup_district",
          services=[{"item_code": "contraceptives", "quantity": 2}])
    visit(api, people["B"]["id"], "in_person", "not_home", at(6), user="sup_district")
    visit(api, people["F"]["id"], "phone", "met", at(7), user="sup_district")
    open_month(api, P, district_code=district["code"])
    [a] = [v for v in verifications(api, "sup_district", community_id=units["X"]["id"], month=P)
           if v["resident_id"] == people["A"]["id"]]
    record(api, "sup_district", a, "PRESENT")
    return Street(new, units, people)


def summed(reports: list[dict[str, Any]], group: str, field: str) -> int:
    return sum(r[group][field] for r in reports)


def test_totals_are_the_sum_of_each_communitys_report(api: Api, street: Street, engine: Engine) -> None:
    rollup = ok(api.as_("sup_district", "GET", f"{ROLLUP}/{street.street['id']}/{P}"))
    assert (rollup["level"], rollup["month"], rollup["complete"]) == ("street", P, True)
    # The trace-back: each community's entry is its own report, fetched through the API.
    assert [c["community_id"] for c in rollup["communities"]] == [street.communities[k]["id"] for k in "XYZ"]
    own = [ok(api.as_("sup_district", "GET", f"{REPORTS}/{street.communities[k]['id']}/{P}")) for k in "XYZ"]
    for entry, report in zip(rollup["communities"], own, strict=True):
        assert {k: entry[k] for k in FIGURES} == {k: report[k] for k in FIGURES}
    totals = rollup["totals"]
    for group, fields in (("stock", ("total", "male", "female", "women_15_49")),
                          ("movement", ("arrivals", "departures")), ("verifications", ("total", "verified", "pending")),
                          ("visits", ("in_person", "phone", "in_person_met", "phone_met")),
                          ("key_persons", ("registered", "visited")), ("fp_documents", ("checked",)),
                          ("overdue", ("tasks", "assistance_requests"))):
        for field in fields:
            assert totals[group][field] == summed(own, group, field), (group, field)
    for outcome in totals["verifications"]["by_outcome"]:
        assert totals["verifications"]["by_outcome"][outcome] == sum(
            r["verifications"]["by_outcome"][outcome] for r in own)
    # Counted by hand: X has A B D, Y has F, Z nobody; all arrived on day 2.
    assert totals["communities"] == 3
    assert totals["stock"] == {"total": 4, "male": 1, "female": 3, "women_15_49": 3}
    assert totals["movement"] == {"arrivals": 4, "departures": 0}
    assert totals["visits"] == {"in_person": 2, "phone": 1, "in_person_met": 1, "phone_met": 1}
    # Shares from the summed counts: coverage 1/4 (X 1/3, Y 0/1, Z none: the average would be 1/6); key persons
    # A, D (X, A met) and F (Y, met): 2/3 (the average of 1/2 and 1 would be 3/4).
    v = totals["verifications"]
    assert (v["total"], v["verified"], v["coverage"], v["period_id"]) == (4, 1, 0.25, None)
    assert [r["verifications"]["coverage"] for r in own] == [0.3333, 0.0, None]
    assert totals["key_persons"] == {"registered": 3, "visited": 2, "share": 0.6667}
    assert [r["key_persons"]["share"] for r in own] == [0.5, 1.0, None]
    lines = {s["code"]: (s["deliveries"], s["quantity"]) for s in totals["services"]}
    assert lines["contraceptives"] == (1, 2)
    assert (rollup["completeness"], rollup["timeliness"], rollup["submitted"]) == (0.0, 0.0, 0)  # none submitted
    assert audit_events(engine, "cycle.rollup.export") == []  # counts only: reading is not recorded


def test_a_district_rollup_lists_the_streets_communities(api: Api, street: Street, world: World) -> None:
    district = next(d for d in world.districts if d["id"] == street.street["parent_id"])
    rollup = ok(api.as_("sup_district", "GET", f"{ROLLUP}/{district['id']}/{P}"))
    ids = [c["community_id"] for c in rollup["communities"]]
    assert {c["id"] for c in street.communities.values()} <= set(ids) and len(ids) > 3
    assert rollup["totals"]["stock"]["total"] == sum(c["stock"]["total"] for c in rollup["communities"])
    v = rollup["totals"]["verifications"]
    assert v["coverage"] == round(v["verified"] / v["total"], 4)
    city = ok(api.as_("auditor", "GET", f"{ROLLUP}/{world.city['id']}/{TODAY:%Y-%m}"))
    assert (city["level"], city["complete"]) == ("city", False)
    assert city["totals"]["communities"] == len(world.communities) + 3


def test_scope_and_errors(api: Api, street: Street, world: World, engine: Engine) -> None:
    url = f"{ROLLUP}/{street.street['id']}"
    for user in ("sup_street", "sup_other", "worker1", "grid_worker"):  # the street lies outside their area
        assert api.as_(user, "GET", f"{url}/{P}").status_code == 404, user
        assert api.as_(user, "GET", f"{url}/{P}.xlsx").status_code == 404, user
    assert api.as_("sup_district", "GET", f"{ROLLUP}/nope/{P}").status_code == 404
    assert api.as_("sup_district", "GET", f"{ROLLUP}/{world.city['id']}/{P}").status_code == 404  # above the area
    community = api.as_("sup_district", "GET", f"{ROLLUP}/{street.communities['X']['id']}/{P}")
    assert (community.status_code, community.json()["code"]) == (422, "rollup_level")
    assert api.as_("worker1", "GET", f"{ROLLUP}/{world.community('c1')['id']}/{P}").json()["code"] == "rollup_level"
    grid = world.grids[world.community("c1")["id"]][0]
    assert api.as_("grid_worker", "GET", f"{ROLLUP}/{grid['id']}/{P}.csv").json()["code"] == "rollup_level"
    for month, code in (("2026-13", "report_month_format"), ("26-01", "report_month_format"),
                        (f"{TODAY.year + 1}-01", "report_month_future")):
        for user in ("sup_district", "sup_other"):  # the month is checked first, wherever the division lies
            response = api.as_(user, "GET", f"{url}/{month}")
            assert (response.status_code, response.json()["code"]) == (422, code), (user, month)
        assert api.as_("sup_district", "GET", f"{url}/{month}.csv").status_code == 422
    assert audit_events(engine, "cycle.rollup.export") == []  # a refused export records nothing


def test_the_xlsx_and_csv_are_one_row_per_community_and_the_total(api: Api, street: Street, engine: Engine) -> None:
    url = f"{ROLLUP}/{street.street['id']}/{P}"
    response = api.as_("sup_district", "GET", f"{url}.xlsx")
    assert response.status_code == 200, response.text
    code = street.street["code"]
    assert f'filename="rollup-{code}-{P}.xlsx"' in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet["A1"].value == "流动人口服务管理月报告"
    assert sheet["A2"].value.startswith("填报单位：汇总街道")
    header = [c.value for c in sheet[3]]
    assert header[:3] == ["社区代码", "社区", "在册人口·期末在册人数（人）"]
    column = {h: n for n, h in enumerate(header)}
    body = [[c.value for c in row] for row in sheet.iter_rows(min_row=4, max_row=7)]
    assert [r[0] for r in body] == [street.communities[k]["code"] for k in "XYZ"] + [code]
    assert body[3][1] == "合计（汇总街道）"
    assert [r[column["在册人口·期末在册人数（人）"]] for r in body] == [3, 1, 0, 4]
    coverage = column["月核查·核查覆盖率"]
    assert [r[coverage] for r in body] == [0.3333, 0.0, "—", 0.25]
    assert sheet.cell(row=7, column=coverage + 1).number_format == "0.0%"
    assert sheet["A9"].value == "填报人："
    csv_response = api.as_("sup_district", "GET", f"{url}.csv")
    assert csv_response.status_code == 200 and csv_response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["月份", "单位代码", "单位", "在册人口·期末在册人数（人）"]
    assert [(r[1], r[3]) for r in rows[1:]] == [(street.communities[k]["code"], v) for k, v in
                                               zip("XYZ", ("3", "1", "0"), strict=True)] + [(code, "4")]
    assert rows[3][rows[0].index("月核查·核查覆盖率")] == ""  # Z: nothing to divide by
    events = audit_events(engine, "cycle.rollup.export")
    assert [(e["target_id"], e["area_path"]) for e in events] == [(street.street["id"], street.street["path"])] * 2
