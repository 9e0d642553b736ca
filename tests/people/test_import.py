"""Bulk import of residents: template, dry run, all-or-nothing commit, every row's errors, scope, files."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from app.people.imports.rules import COLUMNS
from tests.conftest import Api, World
from tests.db import audit_events, count, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.people.import_helpers import HEADERS, IMPORT, TEMPLATE, XLSX, csv_file, errors, person, upload, xlsx_file

# --- the template -----------------------------------------------------------------------------------------

def test_template_has_chinese_headers_rules_and_my_dwellings(api: Api, world: World) -> None:
    response = api.as_("worker1", "GET", TEMPLATE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert "attachment" in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["居民信息", "说明", "住所清单"]
    sheet = book["居民信息"]
    headers = [c.value for c in sheet[1]]
    assert headers == HEADERS == [c.header for c in COLUMNS]
    assert sheet.max_row == 1  # headers only: nothing to import by accident
    assert sheet.column_dimensions["B"].number_format == "@"  # 18-digit IDs stay text
    notes = "\n".join(str(c.value) for row in book["说明"].iter_rows() for c in row if c.value)
    assert "住所编号" in notes and "社区代码" in notes and "dry_run" in notes
    listed = [r[0] for r in book["住所清单"].iter_rows(min_row=2, values_only=True)]
    assert sorted(listed) == sorted(world.dwellings[world.community("c1")["id"]])


def test_template_lists_addresses_a_sheet_cannot_hold_as_plain_text(api: Api, world: World) -> None:
    """Stored text may hold control characters (only NUL is refused): the template drops them instead of
    answering 500, and an address that looks like a formula stays text."""
    c1 = world.community("c1")
    for address in ("经三路\x01号\x1f", "=1+1"):
        made = api.as_("admin", "POST", "/api/v1/dwellings", json={"community_id": c1["id"], "address": address,
                                                                  "kind": "rental"})
        assert made.status_code == 201, made.text
    response = api.as_("admin", "GET", TEMPLATE)
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    addresses = {r[3] for r in book["住所清单"].iter_rows(min_row=2, values_only=True)}
    assert {"经三路号", "=1+1"} <= addresses


@pytest.mark.parametrize(("method", "url"), [("GET", TEMPLATE), ("POST", IMPORT)])
def test_auditor_may_not_import(api: Api, method: str, url: str) -> None:
    kwargs = {"files": {"file": ("a.csv", csv_file([]), "text/csv")}} if method == "POST" else {}
    response = api.as_("auditor", method, url, **kwargs)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_template_round_trip(api: Api, world: World, engine: Engine) -> None:
    """Download, fill two rows (one by 住所编号, one by 社区代码 + 住所地址), dry run, commit."""
    book = openpyxl.load_workbook(io.BytesIO(api.as_("worker1", "GET", TEMPLATE).content))
    dwelling_id, community_code, _, address, _ = next(book["住所清单"].iter_rows(min_row=2, values_only=True))
    other = list(book["住所清单"].iter_rows(min_row=2, values_only=True))[1]
    sheet = book["居民信息"]
    column = {h: i + 1 for i, h in enumerate(HEADERS)}
    filled = [
        {"姓名": "李娜", "公民身份号码": id_number("19950720", "124"), "性别": "女", "到达日期": "2026-08-15",
         "户籍地代码": "411702", "住所编号": dwelling_id, "手机号码": "13912345678"},
        {"姓名": "赵强", "公民身份号码": id_number("19880102", "113", area="411502"), "出生日期": "1988-01-02",
         "到达日期": "2026-07-01", "户籍地代码": "411502", "社区代码": other[1], "住所地址": f" {other[3]} "},
    ]
    for offset, record in enumerate(filled, start=2):
        for header, value in record.items():
            sheet.cell(row=offset, column=column[header], value=value)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    assert community_code and address

    before = count(engine, "residents")
    dry = upload(api, "worker1", data, name="模板.xlsx", content_type=XLSX)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert (report["format"], report["rows"], report["valid_rows"], report["to_create"]) == ("xlsx", 2, 2, 2)
    assert report["errors"] == [] and report["created"] == 0
    assert count(engine, "residents") == before  # a dry run writes nothing
    assert len(audit_events(engine, "resident.import.dry_run")) == 1

    done = upload(api, "worker1", data, dry_run=False, name="模板.xlsx", content_type=XLSX)
    assert done.status_code == 201, done.text
    assert done.json()["created"] == 2
    stored = rows(engine, "SELECT id, name, dwelling_id, sex FROM residents WHERE id_number IN (:a, :b) ORDER BY name",
                  a=filled[0]["公民身份号码"], b=filled[1]["公民身份号码"])
    assert [(r["name"], r["dwelling_id"], r["sex"]) for r in stored] == [
        ("李娜", dwelling_id, "F"), ("赵强", other[0], "M")]
    tenancies = rows(engine, "SELECT resident_id, dwelling_id, source FROM tenancies WHERE resident_id IN (:a, :b)",
                     a=stored[0]["id"], b=stored[1]["id"])
    assert len(tenancies) == 2 and {t["source"] for t in tenancies} == {"worker"}
    event = audit_events(engine, "resident.import")
    assert len(event) == 1 and '"created": 2' in event[0]["detail"]
    # The automatic per-row audit ran too (ids and field names only).
    assert {r["id"] for r in stored} <= {e["target_id"] for e in audit_events(engine, "residents.create")}


# --- CSV ----------------------------------------------------------------------------------------------------

def test_csv_dry_run_then_commit(api: Api, world: World, engine: Engine) -> None:
    records = [person(world), person(world, 姓名="刘洋", 公民身份号码=id_number("20000101", "131"), 婚姻状况="未婚")]
    data = csv_file(records)
    dry = upload(api, "worker1", data)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["format"], dry.json()["encoding"], dry.json()["valid_rows"]) == ("csv", "utf-8", 2)
    assert rows(engine, "SELECT id FROM residents WHERE id_number = :n", n=records[0]["公民身份号码"]) == []

    done = upload(api, "worker1", data, dry_run=False)
    assert done.status_code == 201, done.text
    got = rows(engine, "SELECT phone, marital_status, key_person, created_by FROM residents WHERE id_number = :n",
               n=records[0]["公民身份号码"])
    assert got == [{"phone": "13800138000", "marital_status": "married", "key_person": True,
                    "created_by": got[0]["created_by"]}]
    assert got[0]["created_by"]


def test_gb18030_csv_from_chinese_excel(api: Api, world: World, engine: Engine) -> None:
    records = [person(world, 姓名="欧阳娜娜", 户籍地址="安徽省阜阳市临泉县", 工作单位="郑州某某餐饮店")]
    data = csv_file(records, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    done = upload(api, "worker1", data, dry_run=False)
    assert done.status_code == 201, done.text
    assert done.json()["encoding"] == "gb18030"
    got = rows(engine, "SELECT name, hukou_address, employer FROM residents WHERE id_number = :n",
               n=records[0]["公民身份号码"])
    assert got == [{"name": "欧阳娜娜", "hukou_address": "安徽省阜阳市临泉县", "employer": "郑州某某餐饮店"}]


def test_every_row_error_is_reported(api: Api, world: World) -> None:
    bad_check = id_number(seq="102")[:17] + ("0" if id_number(seq="102")[17] != "0" else "1")
    records = [
        person(world),  # row 2: fine
        person(world, 公民身份号码=bad_check, 手机号码="12345"),  # row 3: two errors
        person(world, 公民身份号码=id_number("19851111", "141"), 性别="女", 到达日期="2026/13/01"),  # row 4: odd = male
        person(world, 姓名="王芳芳"),  # row 5: same ID as row 2
        person(world, 姓名="", 公民身份号码=id_number("19920202", "152"), 户籍地代码="4116"),  # row 6
        person(world, 公民身份号码=id_number("19930303", "162"), 到达日期="2099-01-01", 婚姻状况="保密",
               住所编号="", 社区代码="", 住所地址=""),  # row 7
        person(world, 公民身份号码="4116021990", 身份号码未核验="也许"),  # row 8
    ]
    response = upload(api, "worker1", csv_file(records))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["valid_rows"], report["error_rows"]) == (7, 1, 6)
    assert errors(response) == {
        (3, "公民身份号码", "id_check_digit"), (3, "手机号码", "phone_format"),
        (4, "性别", "id_sex_mismatch"), (4, "到达日期", "date_format"),
        (5, "公民身份号码", "duplicate_in_file"),
        (6, "姓名", "required"), (6, "户籍地代码", "hukou_code_format"),
        (7, "到达日期", "date_out_of_range"), (7, "婚姻状况", "marital_status_format"),
        (7, "社区代码", "required"), (7, "住所地址", "required"),
        (8, "公民身份号码", "id_format"), (8, "身份号码未核验", "yes_no_format"),
    }
    assert report["error_count"] == 13
    for error in report["errors"]:  # messages, never the values
        assert error["message"] and bad_check not in error["message"]
    zh = api.as_("worker1", "POST", IMPORT, files={"file": ("r.csv", csv_file(records), "text/csv")},
                 headers={"Accept-Language": "zh-CN"})
    assert any("校验位" in e["message"] for e in zh.json()["errors"])


def test_one_bad_row_means_nothing_is_stored(api: Api, world: World, engine: Engine) -> None:
    records = [person(world, 公民身份号码=id_number(seq=str(100 + 2 * i))) for i in range(5)]
    records[3]["手机号码"] = "not a phone"
    before = {t: count(engine, t) for t in ("residents", "tenancies", "duplicate_flags")}
    response = upload(api, "worker1", csv_file(records), dry_run=False)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "import_invalid"
    assert errors(response) == {(5, "手机号码", "phone_format")}
    assert body["details"]["valid_rows"] == 4 and body["details"]["created"] == 0
    assert {t: count(engine, t) for t in before} == before
    assert audit_events(engine, "resident.import") == []


def test_dwelling_outside_my_area_is_a_row_error(api: Api, world: World, engine: Engine) -> None:
    c2, c3 = world.community("c2"), world.community("c3")
    c3_dwelling = rows(engine, "SELECT address FROM dwellings WHERE id = :i", i=world.dwellings[c3["id"]][0])[0]
    records = [
        person(world, 住所编号=world.dwellings[c2["id"]][0]),
        person(world, 公民身份号码=id_number(seq="172"), 住所编号="", 社区代码=c3["code"],
               住所地址=c3_dwelling["address"]),
        person(world, 公民身份号码=id_number(seq="174"), 住所编号="0" * 32),
    ]
    response = upload(api, "worker1", csv_file(records))
    assert errors(response) == {(2, "住所编号", "dwelling_not_found"), (3, "住所地址", "dwelling_not_found"),
                                (4, "住所编号", "dwelling_not_found")}
    # The same rows are fine for someone whose area holds them.
    ok = upload(api, "sup_other", csv_file([records[1]]))
    assert ok.json()["valid_rows"] == 1, ok.text
    c1 = world.community("c1")
    mismatch = person(world, 社区代码=c3["code"], 住所地址="")
    assert errors(upload(api, "worker1", csv_file([mismatch]))) == {(2, "住所编号", "dwelling_mismatch")}
    assert c1["code"] != c3["code"]


def test_people_already_registered(api: Api, world: World, engine: Engine) -> None:
    mine = register_resident(api, "worker1", dwelling_id(world), id_number=id_number(seq="182"))
    records = [person(world, 公民身份号码=mine["id_number"])]
    assert errors(upload(api, "worker1", csv_file(records))) == {(2, "公民身份号码", "resident_exists")}
    c3 = world.community("c3")
    elsewhere = [person(world, "c3", 公民身份号码=mine["id_number"], 住所编号=world.dwellings[c3["id"]][0])]
    response = upload(api, "worker3", csv_file(elsewhere), dry_run=False)
    assert response.status_code == 422
    assert errors(response) == {(2, "公民身份号码", "resident_registered_elsewhere")}
    assert count(engine, "transfer_requests") == 0  # an import never opens transfers


def test_returning_person_is_registered_again(api: Api, world: World, engine: Engine) -> None:
    gone = register_resident(api, "worker1", dwelling_id(world), id_number=id_number(seq="192"))
    left = api.as_("worker1", "POST", f"/api/v1/residents/{gone['id']}/leave",
                   json={"version": gone["version"], "left_on": "2026-10-01", "reason": "returned_home"})
    assert left.status_code == 200, left.text
    records = [person(world, 姓名="张丽", 公民身份号码=gone["id_number"], 到达日期="2026-11-01",
                      住所编号=world.dwellings[world.community("c1")["id"]][2])]
    # The name must be the record's.
    wrong = [{**records[0], "姓名": "王芳"}]
    assert errors(upload(api, "worker1", csv_file(wrong))) == {(2, "姓名", "resident_identity_mismatch")}
    dry = upload(api, "worker1", csv_file(records))
    assert (dry.json()["to_create"], dry.json()["to_reregister"]) == (0, 1)
    done = upload(api, "worker1", csv_file(records), dry_run=False)
    assert done.status_code == 201, done.text
    assert done.json()["reregistered"] == 1
    again = rows(engine, "SELECT id, status, arrival_date FROM residents WHERE id_number = :n", n=gone["id_number"])
    assert len(again) == 1 and again[0]["id"] == gone["id"] and again[0]["status"] == "REGISTERED"


def test_person_who_left_another_area_is_not_taken_over(api: Api, world: World, engine: Engine) -> None:
    """Their record stays with the community that holds it: the import reports it and opens nothing."""
    gone = register_resident(api, "worker3", dwelling_id(world, "c3"), id_number=id_number(seq="196"))
    left = api.as_("worker3", "POST", f"/api/v1/residents/{gone['id']}/leave",
                   json={"version": gone["version"], "left_on": "2026-10-01", "reason": "moved_within_city"})
    assert left.status_code == 200, left.text
    records = [person(world, 姓名=gone["name"], 公民身份号码=gone["id_number"], 到达日期="2026-11-01")]
    dry = upload(api, "worker1", csv_file(records))
    assert errors(dry) == {(2, "公民身份号码", "resident_registered_elsewhere")}
    assert gone["id"] not in dry.text and gone["phone"] not in dry.text
    done = upload(api, "worker1", csv_file(records), dry_run=False)
    assert done.status_code == 422, done.text
    assert rows(engine, "SELECT status, community_id FROM residents WHERE id = :r", r=gone["id"]) == [
        {"status": "LEFT", "community_id": world.community("c3")["id"]}]
    assert rows(engine, "SELECT id FROM transfer_requests") == []


def test_unverified_id_needs_a_supervisor(api: Api, world: World, engine: Engine) -> None:
    good = id_number(seq="202")
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    records = [person(world, 公民身份号码=bad, 身份号码未核验="是")]
    assert errors(upload(api, "worker1", csv_file(records))) == {(2, "身份号码未核验", "supervisor_only")}
    done = upload(api, "sup_street", csv_file(records), dry_run=False)
    assert done.status_code == 201, done.text
    got = rows(engine, "SELECT id_verified, id_accepted_by FROM residents WHERE id_number = :n", n=bad)
    assert len(got) == 1 and not got[0]["id_verified"] and got[0]["id_accepted_by"]


def test_import_writes_what_the_form_writes(api: Api, world: World, engine: Engine) -> None:
    """The same person registered through POST and through the import gives the same record."""
    via_form = register_resident(api, "worker1", dwelling_id(world), id_number=id_number(seq="212"), name="孙丽",
                                 phone="13700137000", hukou_code="411627", marital_status="married",
                                 arrival_date="2026-09-01", employer="某公司", occupation="保洁员")
    records = [person(world, 姓名="孙丽", 公民身份号码=id_number(seq="214"), 手机号码="13700137000",
                      户籍地代码="411627", 户籍地址="", 工作单位="某公司", 职业="保洁员")]
    assert upload(api, "worker1", csv_file(records), dry_run=False).status_code == 201
    imported = rows(engine, "SELECT id FROM residents WHERE id_number = :n", n=records[0]["公民身份号码"])[0]
    via_import = api.as_("worker1", "GET", f"/api/v1/residents/{imported['id']}").json()
    skip = {"id", "id_number", "created_at", "updated_at"}
    assert {k: v for k, v in via_import.items() if k not in skip} == {
        k: v for k, v in via_form.items() if k not in skip}


def test_xlsx_with_numeric_and_date_cells(api: Api, world: World) -> None:
    record: dict[str, Any] = person(world)
    legacy = "411602900315102"  # a 15-digit ID fits in a number exactly
    record.update(公民身份号码=int(legacy), 手机号码=13800138000, 到达日期=date(2026, 9, 1), 出生日期=date(1990, 3, 15),
                  户籍地代码=411602)
    numeric_id = dict(record, 公民身份号码=int(id_number(seq="222")))  # 18 digits: Excel keeps only 15
    response = upload(api, "worker1", xlsx_file([record, numeric_id]), name="x.xlsx", content_type=XLSX)
    assert response.status_code == 200, response.text
    assert response.json()["valid_rows"] == 1
    assert errors(response) == {(3, "公民身份号码", "id_number_as_number")}


def test_headers_in_english_and_unknown_columns(api: Api, world: World) -> None:
    record = {"name": "王芳", "id_number": id_number(seq="232"), "hukou_code": "411602", "arrival_date": "2026-09-01",
              "dwelling_id": world.dwellings[world.community("c1")["id"]][0], "备注": "x"}
    response = upload(api, "worker1", csv_file([record], headers=list(record)))
    assert response.status_code == 200, response.text
    assert response.json()["valid_rows"] == 1 and response.json()["ignored_columns"] == ["F"]


# --- files the import refuses ------------------------------------------------------------------------------

def _zip_without_workbook() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return out.getvalue()


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"", 422, "import_empty"),
    (b"%PDF-1.7 something", 415, "import_unsupported_type"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 415, "import_unsupported_type"),  # old .xls
    (b"\x89PNG\r\n\x1a\n", 415, "import_unsupported_type"),
    (_zip_without_workbook(), 415, "import_unsupported_type"),
    (b"PK\x03\x04 broken zip", 422, "import_unreadable"),
    ("姓名,电话\n王芳,1\n".encode(), 422, "import_columns"),
    ("姓名,公民身份号码,户籍地代码,到达日期,住所编号\n".encode(), 422, "import_empty"),
    (b"\xff\xfe\xfd\x80\x81,\xff\n", 422, "import_encoding"),
])
def test_bad_files_are_refused(api: Api, data: bytes, status: int, code: str) -> None:
    response = upload(api, "worker1", data, name="x.csv")
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def test_nul_bytes_deep_in_a_csv_are_row_errors(api: Api, world: World) -> None:
    """Past the first 64 KiB the file is not refused whole: the row says which cell holds the NUL."""
    records = [person(world), person(world, 公民身份号码=id_number(seq="242"), 住所编号="ab\x00cd")]
    data = csv_file(records)
    head, tail = data.split(b"\r\n", 2)[:2], data.split(b"\r\n", 2)[2]
    padded = b"\r\n".join(head) + b"\r\n" + b"\r\n" * 70_000 + tail
    response = upload(api, "worker1", padded)
    assert response.status_code == 200, response.text
    assert errors(response) == {(70_003, "住所编号", "nul_byte"), (70_003, "住所编号", "dwelling_not_found")}


def test_too_large_and_too_many_rows(api: Api) -> None:
    big = b"a,b\n" + b"x" * (8 * 1024 * 1024 + 10)
    response = upload(api, "worker1", big)
    assert response.status_code == 413
    assert response.json()["code"] in ("body_too_large", "import_too_large")
    header = ",".join(HEADERS) + "\n"
    many = (header + "x\n" * 20_001).encode()
    response = upload(api, "worker1", many)
    assert response.status_code == 422 and response.json()["code"] == "import_too_many_rows"


def test_a_large_register_goes_through(api: Api, world: World) -> None:
    """A register near the request body limit (MAX_BODY_BYTES, 1 MiB by default) is read whole; blank rows
    are skipped and do not count."""
    record = person(world, 户籍地址="河南省周口市" + "某" * 150)
    data = csv_file([record])
    padding = ("\n" * (1024 * 1024 - len(data) - 4096)).encode()
    response = upload(api, "worker1", data + padding)
    assert response.status_code == 200, response.text
    assert (response.json()["rows"], response.json()["valid_rows"]) == (1, 1)
