"""A police station's access token for the police upload tests, and the upload files they send.

`police_headers` is the one way these tests become a station. Until the partners branch (machine clients with
OAuth client credentials and a jurisdiction table) is on main, it makes a `users` row with role police, signs it
in (app.auth.service.login: a login session and an access token) and registers, for the test only, a scope
builder that gives the police role an AreaScope of the paths given. At merge its body becomes the partners
branch's admin API (create the client with these areas as its jurisdiction, exchange the client credentials for
a token); the tests do not change.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from app.auth import deps
from app.auth.models import User
from app.auth.service import login
from app.core.actor import AreaScope, Role
from app.core.config import get_settings
from app.core.db import unit_of_work
from app.core.security import hash_password
from tests.conftest import PASSWORD, Api
from tests.db import rows
from tests.factories import id_number

UPLOAD = "/api/v1/partner/police/registrations"
REPORTS = "/api/v1/sharing/police-reports"
LAYOUT = ["类型", "公民身份号码", "姓名", "性别", "社区代码", "居住地址", "日期", "居住证号码", "户籍地代码"]
KEYS = ["kind", "id_number", "name", "sex", "community_code", "address", "date", "permit_no", "hukou_code"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def police_headers(request: pytest.FixtureRequest, engine: Engine, *paths: str,
                   username: str = "station1") -> dict[str, str]:
    """A station whose jurisdiction is `paths` (division paths): its Authorization header."""
    previous = deps.PARTNER_SCOPES.get(Role.police)
    deps.register_partner_scope(Role.police, lambda session, user_id: AreaScope(tuple(paths)))

    def restore() -> None:
        if previous is None:
            deps.PARTNER_SCOPES.pop(Role.police, None)
        else:
            deps.register_partner_scope(Role.police, previous)

    request.addfinalizer(restore)
    with unit_of_work(engine=engine) as session:
        session.add(User(username=username, display_name=username, role=Role.police.value,
                         password_hash=hash_password(PASSWORD)))
        session.flush()
        _, access, _, _ = login(session, get_settings(), username, PASSWORD)
    return {"Authorization": f"Bearer {access}"}


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
