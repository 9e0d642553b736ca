"""A police upload's limits and refusals: file-level errors (size, rows, type, columns, JSON) and each row rule,
every one with its stable code; a refused row stores nothing."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from sqlalchemy import Engine

from app.sharing.uploads.rules import MAX_BYTES, MAX_ROWS
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import count
from tests.factories import id_number
from tests.sharing.police_helpers import LAYOUT, XLSX, police_headers, send, to_csv, to_json


@pytest.fixture()
def station(api: Api, engine: Engine, world: World) -> dict[str, str]:
    return police_headers(api, engine, world.community("c1")["path"])


def good(world: World, **over: str) -> dict[str, str]:
    return {"kind": "registration", "id_number": id_number(seq="402"), "name": "周婷",
            "community_code": world.community("c1")["code"], "address": "某路1号", "date": "2026-11-20", **over}


def test_file_level_refusals(api: Api, world: World, station: dict[str, str]) -> None:
    assert_error(send(api, station, b"%PDF-1.4 not a table", "f-1", name="a.pdf"), 415, "import_unsupported_type")
    assert_error(send(api, station, b"", "f-2"), 422, "import_empty")
    assert_error(send(api, station, "姓名,性别\n王芳,女\n".encode(), "f-3"), 422, "police_upload_columns")
    assert_error(send(api, station, b"x" * (MAX_BYTES + 1), "f-4"), 413, "import_too_large")
    many = to_csv([good(world, id_number=id_number(n=i)) for i in range(MAX_ROWS + 1)])
    assert_error(send(api, station, many, "f-5"), 422, "import_too_many_rows")
    assert_error(send(api, station, b'[{"kind": ', "f-6", name="a.json"), 422, "import_unreadable")
    assert_error(send(api, station, b'{"rows": 3}', "f-7", name="a.json"), 422, "import_unreadable")
    assert_error(send(api, station, b"[]", "f-8", name="a.json"), 422, "import_empty")
    assert_error(send(api, station, b"[" * 40 + b"]" * 40, "f-9", name="a.json"), 422, "json_too_deep")
    assert_error(send(api, station, to_json([good(world)]), "bad reference!"), 422)
    too_many_json = json.dumps([good(world)] * (MAX_ROWS + 1)).encode()
    assert_error(send(api, station, too_many_json, "f-10", name="a.json"), 422, "import_too_many_rows")


def test_row_rules(api: Api, world: World, engine: Engine, station: dict[str, str]) -> None:
    same = id_number(seq="404")
    records = [
        good(world, id_number=same),  # row 2: fine (new)
        good(world, id_number=same, name="周婷"),  # row 3: the same person again
        good(world, id_number=id_number(seq="406"), sex="男"),  # row 4: the ID says female
        good(world, id_number=id_number(seq="408"), community_code="410100999999"),  # row 5: no such community
        good(world, id_number=id_number(seq="410"), community_code="41010"),  # row 6: not 12 digits
        good(world, id_number=id_number(seq="412"), hukou_code="4116"),  # row 7
        good(world, id_number=id_number(seq="414"), address=""),  # row 8: a registration needs the address
        good(world, id_number=id_number(seq="416"), name="名" * 51),  # row 9
        good(world, id_number=id_number(seq="418"), sex="X"),  # row 10
        good(world, id_number="1234"),  # row 11
        good(world, id_number=id_number(seq="420"), date="2099-01-01"),  # row 12
        good(world, kind="deregistration", id_number=id_number(seq="422"), address=""),  # row 13: fine (matched)
    ]
    report = ok(send(api, station, to_csv(records), "rows-1"), 201)
    assert {(e["row"], e["field"], e["code"]) for e in report["errors"]} == {
        (3, "id_number", "duplicate_in_file"), (4, "sex", "id_sex_mismatch"),
        (5, "community_code", "community_not_found"), (6, "community_code", "community_code_format"),
        (7, "hukou_code", "hukou_code_format"), (8, "address", "required"), (9, "name", "too_long"),
        (10, "sex", "sex_format"), (11, "id_number", "id_format"), (12, "date", "date_out_of_range")}
    assert {r["row"]: r["outcome"] for r in report["results"]} == {2: "new", 13: "matched"}
    assert count(engine, "police_report_rows") == 2


def test_an_id_typed_as_a_number_in_excel(api: Api, world: World, station: dict[str, str]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(LAYOUT)
    sheet.append(["登记", float(id_number(seq="430")[:17] + "0"), "周婷", None, world.community("c1")["code"],
                  "某路1号", "2026-11-20"])
    out = io.BytesIO()
    book.save(out)
    report = ok(send(api, station, out.getvalue(), "x-1", name="a.xlsx", content_type=XLSX), 201)
    assert {(e["row"], e["field"], e["code"]) for e in report["errors"]} == {
        (2, "id_number", "id_number_as_number")}


def test_json_rows_with_a_number_for_an_id_and_a_nul_byte(api: Api, world: World, station: dict[str, str]) -> None:
    data = json.dumps({"rows": [{**good(world), "id_number": 41160219900315040},
                                {**good(world, id_number=id_number(seq="432")), "name": "周\u0000婷"}]}).encode()
    report = ok(send(api, station, data, "j-1", name="a.json"), 201)
    assert {(e["row"], e["field"], e["code"]) for e in report["errors"]} == {
        (1, "id_number", "invalid"), (2, "name", "nul_byte")}


def test_a_station_without_a_jurisdiction_sees_nothing(api: Api, world: World, engine: Engine) -> None:
    nowhere = police_headers(api, engine, username="station-nowhere")
    report = ok(send(api, nowhere, to_csv([good(world)]), "n-1"), 201)
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(2, "outside_jurisdiction")]
    assert count(engine, "police_report_rows") == 0
