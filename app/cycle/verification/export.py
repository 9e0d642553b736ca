"""The verification list (月核查名单) as files: XLSX in the office print layout of the monthly report (title,
unit, period, the list, signature lines) and CSV, streamed with bounded memory (docs/cycle.md, "Exports").

The rows are read after the request's unit of work has committed (its audit event with it), in a read unit of
work of their own, `yield_per` rows at a time (a server-side cursor on PostgreSQL), and written as they are read:
CSV in chunks, XLSX through openpyxl's write-only mode into a spooled temporary file."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.db import unit_of_work
from app.core.tabular import safe_cell, sheet_text
from app.core.types import CITY_TZ
from app.cycle.reports.export import OUTCOMES_ZH, SIGNATURES
from app.cycle.verification.models import Verification
from app.people.models import Resident
from app.places.models import Division, Dwelling

TITLE = "流动人口月核查名单"
HEADER = ("序号", "月份", "社区代码", "社区", "姓名", "性别", "住址", "核查结果", "核查方式", "核查日期",
          "迁入/离开日期", "连续查无此人月数", "备注", "打卡异常")
CSV_HEADER = ("序号", "月份", "社区代码", "社区", "姓名", "性别", "住址", "核查结果代码", "核查结果", "核查方式",
              "核查日期", "迁入/离开日期", "连续查无此人月数", "备注", "打卡异常", "打卡异常代码")
# The check-in flags of the visit a verification was recorded at (app/visits/models.py CheckinFlag).
FLAGS_ZH = {"outside_radius": "超出住所范围", "poor_accuracy": "定位精度差", "mock_location": "模拟定位",
            "clock_ahead": "设备时间超前", "late_record": "补录", "stale_fix": "定位过旧", "no_coordinates": "无定位",
            "dwelling_unlocated": "住所未定位"}
EVIDENCE_ZH = {"visit": "入户访视", "phone": "电话", "partner": "部门数据"}
SEX_ZH = {"M": "男", "F": "女"}
WIDTHS = (6, 9, 14, 16, 10, 5, 30, 12, 10, 12, 13, 9, 24, 18)
YIELD_PER = 1000
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Heading:
    unit: str  # 填报单位
    period: str  # 报告期
    area_path: str | None  # where the listed rows lie, for the audit event: the community, or the caller's area


def rows_stmt(listed: Select[Any]) -> Select[Any]:
    """The list route's statement (filters, scope, order) with the columns a printed list shows."""
    base = listed.subquery()
    v = aliased(Verification, base)
    community = aliased(Division)
    columns: list[Any] = [col(v.month), col(community.code), col(community.name).label("community_name"),
                          col(Resident.name).label("resident_name"), col(Resident.sex), col(Dwelling.address),
                          col(v.outcome), col(v.evidence), col(v.verified_at), col(v.moved_on),
                          col(v.not_found_streak), col(v.note), col(v.checkin_flags)]
    return (select(*columns).select_from(base)
            .join(Resident, col(Resident.id) == col(v.resident_id))
            .join(community, col(community.id) == col(v.community_id))
            .outerjoin(Dwelling, col(Dwelling.id) == col(v.dwelling_id))
            .order_by(col(v.month).desc(), col(v.area_path), col(v.id)))


def count(session: Session, listed: Select[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(listed.order_by(None).subquery())).scalar_one())


def heading(session: Session, actor: Actor, community_id: str | None, month: str | None) -> Heading:
    """The unit: the community asked for when it lies in the caller's area, else the caller's area (the city for
    city-wide readers); the period: the month asked for, else all months."""
    unit: str | None = None
    prefixes = actor.area_prefixes
    area = prefixes[0] if prefixes is not None and len(prefixes) == 1 else None
    if community_id is not None:
        chosen = session.get(Division, community_id)
        if chosen is not None and chosen.level == "community" and actor.sees_path(chosen.path):
            unit, area = f"{chosen.name}（{chosen.code}）", chosen.path
    if unit is None:
        if actor.city_wide:
            places = session.execute(select(Division).where(col(Division.level) == "city")).scalars().all()
        else:
            places = session.execute(select(Division).where(col(Division.path).in_(prefixes or ()))
                                     .order_by(col(Division.path))).scalars().all()
        unit = "、".join(f"{d.name}（{d.code}）" for d in places) or "—"
    period = f"{month[:4]}年{int(month[5:7])}月" if month else "全部月份"
    return Heading(unit=unit, period=period, area_path=area)


def _cells(n: int, r: Any) -> list[Any]:
    """One row: text through `safe_cell` (a name never becomes a formula) and `sheet_text`."""
    verified = r.verified_at.astimezone(CITY_TZ).date().isoformat() if isinstance(r.verified_at, datetime) else ""
    return [n, r.month, r.code, _text(r.community_name), _text(r.resident_name), SEX_ZH.get(r.sex, ""),
            _text(r.address or ""), OUTCOMES_ZH.get(r.outcome, r.outcome) if r.outcome else "待核查",
            EVIDENCE_ZH.get(r.evidence or "", ""),
            verified, r.moved_on.isoformat() if r.moved_on else "", r.not_found_streak, _text(r.note or ""),
            "、".join(FLAGS_ZH.get(f, f) for f in _flags(r.checkin_flags))]


def _flags(raw: str | None) -> list[str]:
    return list(orjson.loads(raw)) if raw else []


def _text(value: str) -> str:
    return str(safe_cell(sheet_text(value)))


def _read(stmt: Select[Any]) -> Iterator[Any]:
    with unit_of_work(write=False) as session:
        yield from session.execute(stmt.execution_options(yield_per=YIELD_PER))


def stream_csv(stmt: Select[Any]) -> Iterator[bytes]:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel opens UTF-8 with a byte-order mark correctly
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for n, r in enumerate(_read(stmt), start=1):
        cells = _cells(n, r)
        writer.writerow([*cells[:7], r.outcome or "", *cells[7:], ";".join(_flags(r.checkin_flags))])
        if buffer.tell() > CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def stream_xlsx(stmt: Select[Any], head: Heading) -> Iterator[bytes]:
    """Write-only: rows go to the file as they are read; formats and merges as write-only mode allows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    book = Workbook(write_only=True)
    sheet: Any = book.create_sheet("月核查名单")
    for n, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(n)].width = width
    last = get_column_letter(len(HEADER))
    sheet.merged_cells.ranges.add(f"A1:{last}1")  # write-only: merges are declared before the rows
    sheet.print_title_rows = "3:3"
    sheet.page_setup.paperSize, sheet.page_setup.orientation = "9", "landscape"  # 9: A4
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    title = WriteOnlyCell(sheet, TITLE)
    title.font = Font(bold=True, size=16)
    sheet.append([title])
    sheet.append([f"填报单位：{_text(head.unit)}"] + [None] * 6 + [f"报告期：{head.period}"])
    bold = []
    for text in HEADER:
        cell = WriteOnlyCell(sheet, text)
        cell.font = Font(bold=True)
        bold.append(cell)
    sheet.append(bold)
    for n, r in enumerate(_read(stmt), start=1):
        sheet.append(_cells(n, r))
    sheet.append([])
    sheet.append(list(SIGNATURES))
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk
