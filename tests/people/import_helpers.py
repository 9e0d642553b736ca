"""Building and uploading resident import files, shared by the import, ID-strictness, task and sync tests."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from tests.conftest import Api, World
from tests.factories import id_number

TEMPLATE = "/api/v1/residents/import/template"
IMPORT = "/api/v1/residents/import"
HEADERS = ["姓名", "公民身份号码", "性别", "出生日期", "手机号码", "民族", "户籍地代码", "户籍地址", "到达日期",
           "婚姻状况", "工作单位", "职业", "居住证号码", "住所编号", "社区代码", "住所地址", "身份号码未核验"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def person(world: World, community: str = "c1", **over: Any) -> dict[str, str]:
    c = world.community(community)
    data = {"姓名": "王芳", "公民身份号码": id_number(seq="102"), "手机号码": "138-0013-8000", "户籍地代码": "411602",
            "户籍地址": "河南省周口市川汇区某路1号", "到达日期": "2026-09-01", "婚姻状况": "已婚",
            "住所编号": world.dwellings[c["id"]][0]}
    data.update(over)
    return data


def csv_file(records: list[dict[str, str]], encoding: str = "utf-8-sig", headers: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=headers or HEADERS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode(encoding)


def xlsx_file(records: list[dict[str, Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for record in records:
        sheet.append([record.get(h) for h in HEADERS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(api: Api, user: str, data: bytes, *, dry_run: bool = True, name: str = "register.csv",
           content_type: str = "text/csv") -> Any:
    return api.as_(user, "POST", IMPORT, params={"dry_run": str(dry_run).lower()},
                   files={"file": (name, data, content_type)})


def errors(response: Any) -> set[tuple[int, str | None, str]]:
    body = response.json()
    report = body["details"] if "details" in body and body.get("code") else body
    return {(e["row"], e["column"], e["code"]) for e in report["errors"]}
