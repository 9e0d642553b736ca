"""The verification list's exports (issue 13, "Exports … the verification list"): the printed XLSX read back, the CSV,
the list route's filters and scope (rows out of the caller's area never appear), a formula-looking name kept as
text, the audit event of an export that carries names, and the refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from app.core.types import CITY_TZ
from app.cycle.verification import export
from app.cycle.verification.models import Verification
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.verify_helpers import VERIFICATIONS, open_month, record, set_today, verifications
from tests.db import all_audit_text, audit_events, execute, rows

MONTH = "2026-11"
HEADER = ["序号", "月份", "社区代码", "社区", "姓名", "性别", "住址", "核查结果", "核查方式", "核查日期",
          "迁入/离开日期", "连续查无此人月数", "备注", "打卡异常"]
FORMULA = "=HYPERLINK(\"http://x\",\"点我\")"


@pytest.fixture(autouse=True)
def _today(monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))


def names(engine: Engine, listed: list[dict[str, Any]]) -> list[str]:
    """The residents' names of the listed verifications, in the list's order."""
    by_id = {r["id"]: r["name"] for r in rows(engine, "SELECT id, name FROM residents")}
    return [by_id[v["resident_id"]] for v in listed]


def sheet_rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["月核查名单"]
    return [list(r) for r in book["月核查名单"].iter_rows(values_only=True)]


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_printed_list_of_a_community(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    c1 = world.community("c1")
    listed = verifications(api, "worker1", month=MONTH)
    first = listed[0]
    execute(engine, "UPDATE residents SET name = :n WHERE id = :i", n=FORMULA, i=first["resident_id"])
    proposal = ok(api.as_("admin", "POST", "/api/v1/cycle/proposals", json={
        "resident_id": listed[1]["resident_id"], "outcome": "LEFT_CITY", "source": "police"}))
    done = record(api, "worker1", proposal, "LEFT_CITY", evidence="partner", moved_on="2026-11-02")
    cells = sheet_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.xlsx",
                               params={"month": MONTH, "community_id": c1["id"]}))
    assert cells[0][0] == "流动人口月核查名单" and cells[0][1:] == [None] * 13
    assert cells[1][0] == f"填报单位：{c1['name']}（{c1['code']}）" and cells[1][7] == "报告期：2026年11月"
    assert cells[2] == HEADER
    body, tail = cells[3:-2], cells[-2:]
    assert tail == [[None] * 14, ["填报人：", "审核人：", "日期：    年  月  日"] + [None] * 11]
    assert [r[0] for r in body] == list(range(1, len(listed) + 1))
    expected_names = names(engine, listed)
    expected_names[0] = "'" + FORMULA  # written as text, never evaluated
    assert [r[4] for r in body] == expected_names
    assert {(r[1], r[2], r[3]) for r in body} == {(MONTH, c1["code"], c1["name"])}
    [gone] = [r for r in body if r[7] == "离开本市"]
    on = datetime.fromisoformat(done["verified_at"]).astimezone(CITY_TZ).date().isoformat()
    assert gone[8:12] == ["部门数据", on, "2026-11-02", 0] and done["outcome"] == "LEFT_CITY"
    assert gone[13] is None  # no check-in behind partner data
    assert sum(r[7] == "待核查" for r in body) == len(listed) - 1
    book = openpyxl.load_workbook(io.BytesIO(api.as_("worker1", "GET", f"{VERIFICATIONS}.xlsx",
                                                     params={"month": MONTH}).content))
    assert book["月核查名单"].cell(row=4 + 0, column=5).data_type == "s"  # the formula-looking name is text

    [event] = audit_events(engine, "cycle.verification.export")[:1]
    assert json.loads(event["detail"]) == {"format": "xlsx", "rows": len(listed),
                                           "filters": {"month": MONTH, "community_id": c1["id"]}}
    assert event["area_path"] == c1["path"] and event["actor_id"] == world.users["worker1"]
    assert "点我" not in all_audit_text(engine)  # names never reach the log


def test_csv_filters_and_scope(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    c1, c3 = world.community("c1"), world.community("c3")
    listed = verifications(api, "worker1", month=MONTH)
    record(api, "worker1", listed[0], "PRESENT")
    table = csv_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.csv", params={"month": MONTH}))
    assert table[0][:8] == [*HEADER[:7], "核查结果代码"]
    assert [r[4] for r in table[1:]] == names(engine, listed)
    theirs = set(names(engine, verifications(api, "worker3", month=MONTH)))
    assert theirs and not theirs & {r[4] for r in table[1:]}  # another district's residents never appear
    present = csv_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.csv",
                               params={"month": MONTH, "outcome": "PRESENT"}))
    assert [(r[0], r[4], r[7], r[8]) for r in present[1:]] == [("1", names(engine, listed[:1])[0], "PRESENT", "在住")]
    pending = csv_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.csv", params={"pending": "true"}))
    assert len(pending) - 1 == len(listed) - 1
    # A community outside the area: the same empty list as the list route, and the caller's own area as the unit.
    outside = {"month": MONTH, "community_id": c3["id"]}
    assert verifications(api, "worker1", **outside) == []
    assert csv_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.csv", params=outside)) == [table[0]]
    cells = sheet_rows(api.as_("worker1", "GET", f"{VERIFICATIONS}.xlsx", params=outside))
    assert cells[1][0] == f"填报单位：{c1['name']}（{c1['code']}）" and cells[3] == [None] * 14
    city = sheet_rows(api.as_("admin", "GET", f"{VERIFICATIONS}.xlsx", params={"community_id": c3["id"]}))
    assert city[1][0] == f"填报单位：{c3['name']}（{c3['code']}）" and city[1][7] == "报告期：全部月份"
    assert len(city) - 5 == len(verifications(api, "admin", community_id=c3["id"]))
    events = audit_events(engine, "cycle.verification.export")
    assert [json.loads(e["detail"])["rows"] for e in events] == [len(listed), 1, len(listed) - 1, 0, 0,
                                                                 len(city) - 5]


def test_refusals_record_nothing(api: Api, engine: Engine) -> None:
    for suffix in (".csv", ".xlsx"):
        assert_error(api.as_("worker1", "GET", f"{VERIFICATIONS}{suffix}", params={"month": "2026-13"}), 422)
        assert_error(api.as_("worker1", "GET", f"{VERIFICATIONS}{suffix}", params={"outcome": "SOMEWHERE"}), 422)
        assert_error(api.client.get(f"{VERIFICATIONS}{suffix}"), 401)
        assert_error(api.as_("auditor", "GET", f"{VERIFICATIONS}{suffix}"), 403)  # like the list: staff only
    assert audit_events(engine, "cycle.verification.export") == []


def test_rows_are_written_as_they_are_read(api: Api, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded memory: the CSV's first chunk leaves before the read has gone through the rows (a read of
    `yield_per` rows at a time, never the whole list in memory)."""
    open_month(api, MONTH)
    total = len(verifications(api, "sup_district", month=MONTH))
    assert total > 50
    monkeypatch.setattr(export, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(export, "YIELD_PER", 10)
    read = 0
    real = export._read

    def counting(stmt: Any) -> Any:
        nonlocal read
        for row in real(stmt):
            read += 1
            yield row

    monkeypatch.setattr(export, "_read", counting)
    response = api.as_("sup_district", "GET", f"{VERIFICATIONS}.csv", params={"month": MONTH})
    assert len(csv_rows(response)) == total + 1 and read == total
    read, everyone = 0, len(rows(engine, "SELECT id FROM verifications WHERE month = :m", m=MONTH))
    chunks = export.stream_csv(export.rows_stmt(select(Verification).where(col(Verification.month) == MONTH)))
    first = next(chunks)
    assert first.startswith("\ufeff".encode()) and 0 < read < everyone
    assert sum(1 for _ in chunks) > 1 and read == everyone
