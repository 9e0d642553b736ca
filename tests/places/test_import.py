"""Importing a division table: CSV and XLSX, dry run and commit, all or nothing, every error code."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from typing import Any

import pytest
from sqlalchemy import Engine

from app.places import importer
from tests.assertions import assert_error as error
from tests.assertions import ok
from tests.conftest import Api, World
from tests.places.helpers import (
    DIVISIONS,
    HEADER_ZH,
    audit_actions,
    count_divisions,
    csv_bytes,
    division,
    snapshot,
    upload,
    xlsx_bytes,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def new_district_rows(world: World) -> list[list[Any]]:
    """A new district with one street, two communities and a grid, plus a renamed existing community."""
    c1 = world.community("c1")
    return [
        ["410199", "郑东新区", "district", "410100", "", 2025],
        ["410199001", "如意湖街道", "street", "410199", "", 2025],
        ["410199001001", "如意湖社区", "community", "410199001", "gated", 2025],
        ["410199001002", "龙湖村", "community", "410199001", "urban_village", 2025],
        ["g01", "第一网格", "grid", "410199001001", "", 2025],
        [c1["code"], "改名后的社区", "community", c1["code"][:9], c1["community_type"], 2024],
    ]


def test_csv_dry_run_writes_nothing(api: Api, world: World, engine: Engine) -> None:
    before = snapshot(engine)
    report = ok(upload(api, csv_bytes(new_district_rows(world)), query="?dry_run=true"))
    assert report == {"dry_run": True, "format": "csv", "rows": 6, "created": 5, "updated": 1, "unchanged": 0,
                      "ignored_columns": [], "error_count": 0, "errors": []}
    assert snapshot(engine) == before
    assert audit_actions(engine, "divisions.import") == []


def test_gbk_csv_is_read_like_utf8(api: Api, world: World, engine: Engine) -> None:
    """Chinese Excel saves "CSV (逗号分隔)" in GBK: it reads the same as the UTF-8 file."""
    rows = new_district_rows(world)
    utf8 = ok(upload(api, csv_bytes(rows), query="?dry_run=true"))
    gbk = ok(upload(api, csv_bytes(rows).decode().encode("gbk"), query="?dry_run=true"))
    assert gbk == utf8 and gbk["created"] == 5


def test_csv_commit_creates_and_updates(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    report = ok(upload(api, csv_bytes(new_district_rows(world))))
    assert (report["dry_run"], report["created"], report["updated"], report["unchanged"]) == (False, 5, 1, 0)
    district = division(engine, path="/410100/410199/")
    community = division(engine, path="/410100/410199/410199001/410199001002/")
    grid = division(engine, path="/410100/410199/410199001/410199001001/G01/")
    assert district is not None and district.parent_id == world.city["id"] and district.district_code == "410199"
    assert community is not None and community.community_type == "urban_village" and community.vintage == 2025
    assert community.district_code == "410199" and community.active
    assert grid is not None and grid.code == "G01" and grid.level == "grid"
    renamed = division(engine, id=c1["id"])
    assert renamed is not None and renamed.name == "改名后的社区" and renamed.version == 2
    events = audit_actions(engine, "divisions.import")
    assert len(events) == 1 and json.loads(events[0].detail or "{}")["created"] == 5
    assert len([e for e in audit_actions(engine, "divisions.create") if e.target_id in
                {district.id, community.id, grid.id}]) == 3
    # The new divisions are usable at once, and the same file again changes nothing.
    body = ok(api.as_("admin", "GET", f"{DIVISIONS}/{grid.id}"))
    assert [a["code"] for a in body["ancestors"]] == ["410100", "410199", "410199001", "410199001001"]
    again = ok(upload(api, csv_bytes(new_district_rows(world))))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 6)
    renamed = division(engine, id=c1["id"])
    assert renamed is not None and renamed.version == 2


def test_csv_with_bom_and_chinese_headers(api: Api, engine: Engine) -> None:
    rows = [
        ["410199", "郑东新区", "区", "410100", "", "2025年"],
        ["410199001", "如意湖街道", "街道（乡镇）", "410199", "", ""],
        ["410199001001", "商都社区", "社区", "410199001", "商（市）场", ""],
        ["410199001002", "杨庄村", "村", "410199001", "城乡结合部", "2024"],
        ["410199001003", "金色港湾", "社区", "410199001", "封闭小区", ""],
        ["410199001004", "东风社区", "社区", "410199001", "杂居小区", ""],
        ["410199001005", "祭城村", "村", "410199001", "城中村", ""],
    ]
    header = [" 代码 ", "名称", "级别", "上级代码", "社区类型", "年份", "备注"]
    data = csv_bytes([[*r, "内部备注"] for r in rows], header=header, bom=True)
    report = ok(upload(api, data, query="?vintage=2023"))
    assert report["created"] == 7 and report["ignored_columns"] == ["备注"]
    prefix = "/410100/410199/410199001/"
    expected = {"001": ("market", 2023), "002": ("fringe", 2024), "003": ("gated", 2023), "004": ("mixed", 2023),
                "005": ("urban_village", 2023)}
    for suffix, (ctype, vintage) in expected.items():
        stored = division(engine, path=f"{prefix}410199001{suffix}/")
        assert stored is not None and (stored.community_type, stored.vintage) == (ctype, vintage)
    district = division(engine, path="/410100/410199/")
    assert district is not None and district.vintage == 2025


def test_tab_separated_csv_below_a_title_row(api: Api, engine: Engine) -> None:
    text = ("郑州市行政区划代码表（2025）\n"
            "code\tname\tlevel\tparent_code\tvintage\n"
            "410199\t郑东新区\tdistrict\t410100\t2025\n")
    report = ok(upload(api, text.encode()))
    assert report["created"] == 1
    assert division(engine, path="/410100/410199/") is not None


def test_xlsx_dry_run_and_commit(api: Api, world: World, engine: Engine) -> None:
    rows = new_district_rows(world)
    numeric = [[int(r[0]) if str(r[0]).isdigit() else r[0], r[1], r[2], int(r[3]), r[4] or None, r[5]] for r in rows]
    data = xlsx_bytes(numeric, header=HEADER_ZH)
    before = snapshot(engine)
    report = ok(upload(api, data, name="区划.xlsx", content_type=XLSX_TYPE, query="?dry_run=1"))
    assert (report["format"], report["created"], report["updated"], report["dry_run"]) == ("xlsx", 5, 1, True)
    assert snapshot(engine) == before
    # The file name and declared type do not matter: the content decides.
    committed = ok(upload(api, data, name="table.csv", content_type="text/plain"))
    assert (committed["format"], committed["created"], committed["dry_run"]) == ("xlsx", 5, False)
    grid = division(engine, path="/410100/410199/410199001/410199001001/G01/")
    assert grid is not None and grid.vintage == 2025


def test_xlsx_row_numbers_count_title_and_blank_rows(api: Api, engine: Engine) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["郑州市行政区划代码表"])
    sheet.append(["code", "name", "level", "parent_code", "community_type", "vintage"])
    sheet.append([410199, "郑东新区", "district", 410100, None, 2025])
    sheet.append([])
    sheet.append([4101990010, "坏代码", "street", 410199, None, 2025.0])  # row 5: ten digits
    sheet.append([410199002, "好街道", "street", 410199, None, 2025])
    out = io.BytesIO()
    workbook.save(out)
    before = snapshot(engine)
    body = error(upload(api, out.getvalue(), name="t.xlsx"), 422, "import_invalid")
    assert [(e["row"], e["code"], e["field"]) for e in body["details"]["errors"]] == [
        (5, "division_code_invalid", "code")]
    assert body["details"]["rows"] == 3 and body["details"]["error_count"] == 1
    assert snapshot(engine) == before


def test_one_bad_row_leaves_the_database_unchanged(api: Api, world: World, engine: Engine) -> None:
    rows = [*new_district_rows(world), ["410199001009", "", "community", "410199001", "gated", 2025]]
    before = snapshot(engine)
    body = error(upload(api, csv_bytes(rows)), 422, "import_invalid")
    assert body["details"]["errors"] == [
        {"row": 8, "code": "name_required", "field": "name", "message": "The name is empty."}]
    assert body["details"]["dry_run"] is False
    assert snapshot(engine) == before
    assert audit_actions(engine, "divisions.import") == []
    # The same with XLSX.
    body = error(upload(api, xlsx_bytes(rows), name="t.xlsx"), 422, "import_invalid")
    assert [e["row"] for e in body["details"]["errors"]] == [8]
    assert snapshot(engine) == before


def test_every_row_error_code(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    street = next(s for s in world.streets if s["id"] == c1["parent_id"])
    district = next(d for d in world.districts if d["code"] == c1["district_code"])
    inactive_street = district["code"] + "098"
    ok(api.as_("admin", "POST", DIVISIONS, json={"code": inactive_street, "name": "停用街道", "level": "street",
                                                 "parent_id": district["id"], "vintage": 2025, "active": False}), 201)
    rows: list[list[Any]] = [
        ["", "无代码", "district", "410100", "", 2025],  # 2
        ["410198", "", "district", "410100", "", 2025],  # 3
        ["410197", "名" * 101, "district", "410100", "", 2025],  # 4
        ["410196", "层级", "planet", "410100", "", 2025],  # 5
        ["41019", "短代码", "district", "410100", "", 2025],  # 6
        ["410299", "外市", "district", "410100", "", 2025],  # 7
        ["410300", "有上级的市", "city", "410100", "", 2025],  # 8
        ["410195001001", "无上级", "community", "", "gated", 2025],  # 9
        ["410194001", "孤儿街道", "street", "410194", "", 2025],  # 10
        ["410193001", "子", "street", "410193", "", 2025],  # 11 (parent row 12 is bad)
        ["410193", "", "district", "410100", "", 2025],  # 12
        [street["code"] + "091", "缺类型", "community", street["code"], "", 2025],  # 13
        ["410192", "多类型", "district", "410100", "gated", 2025],  # 14
        [street["code"] + "092", "怪类型", "community", street["code"], "castle", 2025],  # 15
        ["410191", "无年份", "district", "410100", "", ""],  # 16
        ["410190", "坏年份", "district", "410100", "", "1900"],  # 17
        ["410189", "重复", "district", "410100", "", 2025],  # 18
        ["410189", "重复", "district", "410100", "", 2025],  # 19
        [inactive_street + "001", "停用下", "community", inactive_street, "gated", 2025],  # 20
        ["G01", "重复网格", "grid", c1["code"], "", 2025],  # 21: exists → an update, not an error
        ["g09", "新网格", "grid", c1["code"], "", 2025],  # 22
        ["G09", "新网格", "grid", c1["code"], "", 2025],  # 23: same as row 22 once upper-cased
    ]
    before = snapshot(engine)
    body = error(upload(api, csv_bytes(rows)), 422, "import_invalid")
    found = {(e["row"], e["code"]) for e in body["details"]["errors"]}
    assert found == {
        (2, "code_required"), (3, "name_required"), (4, "name_too_long"), (5, "level_invalid"),
        (6, "division_code_invalid"), (7, "division_code_mismatch"), (8, "division_parent_level"),
        (9, "division_parent_level"), (10, "parent_not_found"), (11, "parent_invalid"), (12, "name_required"),
        (13, "community_type_required"), (14, "community_type_forbidden"), (15, "community_type_invalid"),
        (16, "vintage_required"), (17, "vintage_invalid"), (19, "duplicate_row"),
        (20, "division_parent_inactive"), (23, "duplicate_row"),
    }
    assert all(e["message"] for e in body["details"]["errors"])
    assert [e["row"] for e in body["details"]["errors"]] == sorted(e["row"] for e in body["details"]["errors"])
    assert body["details"]["error_count"] == len(found)
    assert snapshot(engine) == before
    zh = error(upload(api, csv_bytes(rows[:1]), user="admin"), 422, "import_invalid")
    assert zh["details"]["errors"][0]["message"] == "The code is empty."
    response = api.as_("admin", "POST", f"{DIVISIONS}/import", headers={"Accept-Language": "zh"},
                       files={"file": ("a.csv", csv_bytes(rows[:1]), "text/csv")})
    assert error(response, 422, "import_invalid")["details"]["errors"][0]["message"] == "代码为空。"


def test_update_keeps_active_flag(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid = world.grids[c1["id"]][0]
    for dwelling_id in world.dwellings[c1["id"]]:  # empty the grid so it can be deactivated
        ok(api.as_("admin", "PATCH", f"/api/v1/dwellings/{dwelling_id}", json={"active": False, "version": 1}))
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": False, "version": 1}))
    report = ok(upload(api, csv_bytes([["G01", "改名网格", "grid", c1["code"], "", 2024]])))
    assert report["updated"] == 1
    stored = division(engine, id=grid["id"])
    assert stored is not None and stored.name == "改名网格" and stored.active is False


# --- the file itself -------------------------------------------------------------------------------------

def zip_bytes(names: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in names.items():
            archive.writestr(name, content)
    return out.getvalue()


FILE_ERRORS = [
    ("empty", b"", 422, "import_empty"),
    ("header only", b"code,name,level,parent_code\n", 422, "import_empty"),
    ("blank lines", b"\n\n,,,\n", 422, "import_empty"),
    ("missing columns", b"code,name\n410199,x\n", 422, "import_columns"),
    ("repeated column", "code,代码,name,level,parent_code\n".encode(), 422, "import_columns"),
    ("not text", b"\xff\xfe\xfd\x80\x81,\xff\n", 422, "import_encoding"),
    ("old xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 415, "import_unsupported_type"),
    ("pdf", b"%PDF-1.7\n...", 415, "import_unsupported_type"),
    ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, 415, "import_unsupported_type"),
    ("binary", bytes(range(256)), 415, "import_unsupported_type"),
    ("early nul byte", b"code,name,level,parent_code\n410199,\x00\n", 415, "import_unsupported_type"),
    ("zip, not xlsx", zip_bytes({"readme.txt": b"hello"}), 415, "import_unsupported_type"),
    ("broken zip", b"PK\x03\x04" + b"garbage" * 10, 422, "import_unreadable"),
    ("broken xlsx", zip_bytes({"xl/workbook.xml": b"<not-xml", "[Content_Types].xml": b"<x/>"}), 422,
     "import_unreadable"),
    ("bad csv quoting", b'code,name,level,parent_code\n"410199,x\x0d', 422, "import_invalid"),
]


@pytest.mark.parametrize(("label", "data", "status", "code"), FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_errors(api: Api, engine: Engine, label: str, data: bytes, status: int, code: str) -> None:
    before = count_divisions(engine)
    error(upload(api, data), status, code)
    assert count_divisions(engine) == before


def test_missing_columns_are_named(api: Api) -> None:
    body = error(upload(api, b"code,name\n410199,x\n"), 422, "import_columns")
    assert body["details"] == {"missing": ["level", "parent_code"], "duplicate": []}


def test_size_limits(api: Api, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    before = count_divisions(engine)
    data = csv_bytes([["410199", "郑东新区", "district", "410100", "", 2025]])
    limits = importer.LIMITS
    monkeypatch.setattr(importer, "LIMITS", dataclasses.replace(limits, max_bytes=len(data) - 1))
    error(upload(api, data), 413, "import_too_large")
    monkeypatch.setattr(importer, "LIMITS", dataclasses.replace(limits, max_rows=3))
    many = csv_bytes([[f"4101{n:02d}", "区", "district", "410100", "", 2025] for n in range(11, 16)])
    error(upload(api, many), 422, "import_too_many_rows")
    error(upload(api, xlsx_bytes([[f"4101{n:02d}", "区", "district", "410100", "", 2025] for n in range(11, 16)]),
                 name="t.xlsx"), 422, "import_too_many_rows")
    monkeypatch.setattr(importer, "LIMITS", dataclasses.replace(limits, max_unpacked=1000))
    error(upload(api, xlsx_bytes([["410199", "郑东新区", "district", "410100", "", 2025]]), name="t.xlsx"), 413,
          "import_too_large")
    assert count_divisions(engine) == before


def test_nul_byte_deep_in_a_csv_is_a_row_error(api: Api, engine: Engine) -> None:
    before = count_divisions(engine)
    padding = [[f"4101{n:02d}", "区" * 90, "district", "410100", "", 2025] for n in range(11, 99)]
    rows = [*padding * 3, ["410199", "郑东\x00新区", "district", "410100", "", 2025]]
    data = csv_bytes(rows)
    assert data.index(b"\x00") > 65536
    report = error(upload(api, data), 422, "import_invalid")["details"]
    assert {(e["code"], e["field"]) for e in report["errors"]} >= {("nul_byte", "name")}
    assert count_divisions(engine) == before


def test_body_over_the_request_limit(api: Api) -> None:
    from app.core.middleware import body_limit

    big = b"code,name,level,parent_code\n" + b"x" * body_limit(f"{DIVISIONS}/import")
    error(upload(api, big), 413, "body_too_large")


def test_import_route_accepts_bodies_over_the_general_limit(api: Api) -> None:
    """Imports have their own allowance: a file over MAX_BODY_BYTES reaches the importer's own 413."""
    from app.core.config import get_settings

    big = b"code,name,level,parent_code\n" + b"x" * (get_settings().max_body_bytes + 1)
    assert len(big) < 5 * 1024 * 1024
    response = upload(api, big)
    assert response.json()["code"] != "body_too_large", response.text


@pytest.mark.parametrize("request_kwargs", [
    {"json": {"file": "code,name"}},
    {"files": {"other": ("a.csv", b"code", "text/csv")}},
    {"data": {"file": "not a file"}},
])
def test_request_without_a_file(api: Api, request_kwargs: dict[str, Any]) -> None:
    response = api.as_("admin", "POST", f"{DIVISIONS}/import", **request_kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"code", "message", "details"}


@pytest.mark.parametrize("query", ["dry_run=maybe", "vintage=1900", "vintage=abc"])
def test_bad_import_query(api: Api, query: str) -> None:
    data = csv_bytes([["410199", "郑东新区", "district", "410100", "", 2025]])
    error(upload(api, data, query=f"?{query}"), 422, "validation_error")
