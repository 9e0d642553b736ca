"""Helpers for the places tests: error assertions, database peeks, building import files."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.ledger.models import AuditEvent
from app.places.models import Division, Dwelling

DIVISIONS = "/api/v1/divisions"
DWELLINGS = "/api/v1/dwellings"
STAFF = ("admin", "worker1", "grid_worker", "sup_street", "sup_district")
HEADER = ["code", "name", "level", "parent_code", "community_type", "vintage"]
HEADER_ZH = ["代码", "名称", "级别", "上级代码", "社区类型", "年份"]


def division(engine: Engine, *, path: str | None = None, id: str | None = None) -> Division | None:
    with Session(engine) as session:
        stmt = select(Division)
        stmt = stmt.where(col(Division.path) == path) if path else stmt.where(col(Division.id) == id)
        return session.execute(stmt).scalar_one_or_none()


def dwelling(engine: Engine, dwelling_id: str) -> Dwelling:
    with Session(engine) as session:
        found = session.get(Dwelling, dwelling_id)
        assert found is not None
        return found


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Everything the places domain stores, to prove a failed request changed nothing."""
    with Session(engine) as session:
        divisions = session.execute(
            select(Division.id, Division.code, Division.name, Division.path, Division.active, Division.version,
                   Division.community_type, Division.vintage).order_by(col(Division.id))
        ).all()
        dwellings = session.execute(
            select(Dwelling.id, Dwelling.address, Dwelling.area_path, Dwelling.community_id, Dwelling.grid_id,
                   Dwelling.version, Dwelling.active).order_by(col(Dwelling.id))
        ).all()
    return [tuple(r) for r in divisions] + [tuple(r) for r in dwellings]


def count_divisions(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(Division)).scalar_one()


def audit_actions(engine: Engine, prefix: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.execute(
            select(AuditEvent).where(col(AuditEvent.action).startswith(prefix)).order_by(col(AuditEvent.id))
        ).scalars())


def csv_bytes(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode()
    return b"\xef\xbb\xbf" + data if bom else data


def xlsx_bytes(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER,
               blank_rows_at: int | None = None) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "区划"
    sheet.append(list(header))
    for index, row in enumerate(rows):
        if blank_rows_at is not None and index == blank_rows_at:
            sheet.append([])
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(api: Any, data: bytes, *, name: str = "table.csv", user: str = "admin", query: str = "",
           content_type: str = "text/csv") -> Any:
    return api.as_(user, "POST", f"{DIVISIONS}/import{query}", files={"file": (name, data, content_type)})
