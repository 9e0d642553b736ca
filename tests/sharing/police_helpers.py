"""A police station's access token for the police upload tests, and the upload files they send.

`police_headers` is the one way these tests become a station: a machine client made through the admin API with
the divisions at the paths given as its jurisdiction, and its token from the token endpoint (client credentials).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openpyxl
from sqlalchemy import Engine

from tests.conftest import Api
from tests.db import rows
from tests.factories import id_number
from tests.sharing.partner_helpers import bearer, make_client

UPLOAD = "/api/v1/partner/police/registrations"
REPORTS = "/api/v1/sharing/police-reports"
LAYOUT = ["类型", "公民身份号码", "姓名", "性别", "社区代码", "居住地址", "日期", "居住证号码", "户籍地代码"]
KEYS = ["kind", "id_number", "name", "sex", "community_code", "address", "date", "permit_no", "hukou_code"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def police_headers(api: Api, engine: Engine, *paths: str, username: str = "station1",
                   scope: str | None = None) -> dict[str, str]:
    """A station whose jurisdiction is the divisions at `paths` (none: no jurisdiction at all): its Authorization
    header (`scope`: the token's, default every police scope)."""
    ids = [str(rows(engine, "SELECT id FROM divisions WHERE path = :p", p=p)[0]["id"]) for p in paths]
    client = make_client(api, "police", username, division_ids=ids or None)
    return bearer(api, client, **({"scope": scope} if scope else {}))


def to_csv(records: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LAYOUT)
    writer.writerows([[r.get(k, "") for k in KEYS] for r in records])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(records: list[dict[str, str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(LAYOUT)
    for r in records:
        sheet.append([r.get(k) or None for k in KEYS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_json(records: list[dict[str, str]]) -> bytes:
    return json.dumps([{k: v for k, v in r.items() if v} for r in records], ensure_ascii=False).encode()


def send(api: Api, headers: dict[str, str], data: bytes, reference: str, *, dry_run: bool = False,
         name: str = "batch.csv", content_type: str = "text/csv") -> Any:
    return api.client.post(UPLOAD, headers=headers, params={"reference": reference, "dry_run": str(dry_run).lower()},
                           files={"file": (name, data, content_type)})


def police_row(api: Api, station: dict[str, str], engine: Engine, community: dict[str, Any], dwelling: str) -> str:
    """A station reports someone new at `dwelling` (in `community`): the pending row's id."""
    place = rows(engine, "SELECT address FROM dwellings WHERE id = :d", d=dwelling)[0]["address"]
    data = to_csv([{"kind": "registration", "id_number": id_number(seq="998"), "name": "新来", "sex": "",
                    "community_code": community["code"], "address": place, "date": "2026-11-20"}])
    response = send(api, station, data, "sweep-1")
    assert response.status_code == 201, response.text
    [row] = rows(engine, "SELECT id FROM police_report_rows WHERE batch_id = "
                         "(SELECT id FROM police_batches WHERE reference = 'sweep-1')")
    return str(row["id"])
