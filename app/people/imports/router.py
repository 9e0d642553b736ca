"""Bulk import of residents: the Excel template (with its 说明 sheet) and the import itself.

Included in app/api.py before the /residents/{id} routes, so these fixed paths win.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.deps import StaffActor
from app.core.actor import Actor
from app.core.deps import SessionDep
from app.core.errors import language
from app.core.tabular import sheet_text
from app.people.imports import service as importer
from app.people.imports.rules import COLUMNS
from app.people.imports.schemas import ResidentImportReport
from app.places.models import Division, Dwelling

router = APIRouter(tags=["residents"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_NAME = "流动人口导入模板.xlsx"
DWELLING_LIST_MAX = 5000
TEMPLATE_ROWS = importer.IMPORT_MAX_ROWS + 1
NOTES = [
    "在“居民信息”工作表第 2 行起每行填写一人；请勿修改第 1 行表头。错误报告中的行号即 Excel 行号（表头为第 1 行）。",
    f"每次最多 {importer.IMPORT_MAX_ROWS:,} 行，文件不超过 8 MiB。支持 .xlsx（读取第一个工作表）和 CSV"
    "（UTF-8 或 GBK/GB18030 编码，表头相同）。",
    "先试导入（dry_run=true，默认）：系统按单个登记的全部规则检查每一行，列出所有错误（行号、列名、错误代码），不保存任何数据。",
    "正式导入（dry_run=false）：所有行都无误才全部保存；只要有一行有错，一条也不保存，并返回同样的错误清单。",
    "住所的填写方式（二选一）：填“住所编号”（见“住所清单”工作表，即系统中的住所编号）；或同时填“社区代码”（12 位）和"
    "“住所地址”（须与该社区在系统中登记的地址一致，忽略空格和全角）。两种都填时须指向同一住所。住所必须在您的辖区内。",
    "身份号码、手机号码、代码和日期列已设为文本格式，请勿改为数字格式，否则 18 位号码的末几位会丢失。"
    "日期写作 2026-10-01。",
    "已在您辖区登记的人员不能重复导入；已在本市其他社区登记的人员请通过单个登记发起转移申请；曾经离开又返回的人员在原记录上重新登记。",
    "校验位错误的身份号码默认拒绝；督导或管理员可在“身份号码未核验”列填“是”，将其登记为“身份未核验”。",
]


def build_template(session: Session, actor: Actor) -> bytes:
    """The workbook: 居民信息 (headers only, text-formatted columns, drop-down lists), 说明 (the rules, one
    line per column) and 住所清单 (dwellings in the caller's area, with their 住所编号)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    _entry_sheet(sheet)
    _notes_sheet(book.create_sheet("说明"))
    _dwellings_sheet(book.create_sheet("住所清单"), session, actor)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _header_fill() -> Any:
    from openpyxl.styles import PatternFill

    return PatternFill("solid", fgColor="DDEBF7")


def _entry_sheet(sheet: Any) -> None:
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    sheet.title = "居民信息"
    letters = {}
    for index, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index, value=column.header)
        cell.font = Font(bold=True, color="C00000" if column.required == "是" else "000000")
        cell.fill = _header_fill()
        cell.comment = Comment(f"必填：{column.required}。{column.note}", "模板")
        letter = letters[column.key] = get_column_letter(index)
        sheet.column_dimensions[letter].width = column.width
        if column.as_text:
            sheet.column_dimensions[letter].number_format = "@"
    sheet.freeze_panes = "A2"
    for key, choices in (("sex", "男,女"), ("marital_status", "未婚,已婚,初婚,再婚,离婚,丧偶,不详"),
                         ("accept_unverified_id", "是,否")):
        rule = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=True)
        rule.add(f"{letters[key]}2:{letters[key]}{TEMPLATE_ROWS}")
        sheet.add_data_validation(rule)


def _notes_sheet(notes: Any) -> None:
    from openpyxl.styles import Alignment, Font

    notes["A1"] = "流动人口批量导入说明"
    notes["A1"].font = Font(bold=True, size=14)
    for offset, line in enumerate(NOTES, start=2):
        notes.cell(row=offset, column=1, value=f"{offset - 1}. {line}")
    top = len(NOTES) + 3
    for index, title in enumerate(("列名", "必填", "填写说明", "示例"), start=1):
        cell = notes.cell(row=top, column=index, value=title)
        cell.font, cell.fill = Font(bold=True), _header_fill()
    for offset, column in enumerate(COLUMNS, start=top + 1):
        notes.cell(row=offset, column=1, value=column.header)
        notes.cell(row=offset, column=2, value=column.required)
        notes.cell(row=offset, column=3, value=column.note).alignment = Alignment(wrap_text=True)
        notes.cell(row=offset, column=4, value=column.example or None).number_format = "@"
    for letter, width in (("A", 16), ("B", 8), ("C", 70), ("D", 28)):
        notes.column_dimensions[letter].width = width


def _dwellings_sheet(homes: Any, session: Session, actor: Actor) -> None:
    from openpyxl.styles import Font

    for index, title in enumerate(("住所编号", "社区代码", "社区名称", "住所地址", "类型"), start=1):
        cell = homes.cell(row=1, column=index, value=title)
        cell.font, cell.fill = Font(bold=True), _header_fill()
    stmt = (select(col(Dwelling.id), col(Division.code), col(Division.name), col(Dwelling.address),
                   col(Dwelling.kind))
            .join(Division, col(Division.id) == col(Dwelling.community_id))
            .where(col(Dwelling.active), actor.area_filter(Dwelling.area_path))
            .order_by(col(Division.code), col(Dwelling.address)).limit(DWELLING_LIST_MAX + 1))
    listed = session.execute(stmt).all()
    for offset, values in enumerate(listed[:DWELLING_LIST_MAX], start=2):
        for index, value in enumerate(values, start=1):
            cell = homes.cell(row=offset, column=index, value=sheet_text(value))
            cell.data_type = "s" if isinstance(value, str) else cell.data_type  # an address "=…" is no formula
    if len(listed) > DWELLING_LIST_MAX:
        homes.cell(row=DWELLING_LIST_MAX + 2, column=1,
                   value=f"仅列出前 {DWELLING_LIST_MAX:,} 个住所；其余可在系统中按社区查询住所编号，"
                         "或用社区代码+住所地址。")
    for letter, width in (("A", 34), ("B", 14), ("C", 16), ("D", 30), ("E", 10)):
        homes.column_dimensions[letter].width = width
        homes.column_dimensions[letter].number_format = "@"


@router.get("/residents/import/template", summary="Download the import template (.xlsx, Chinese headers)",
            response_class=Response,
            responses={200: {"content": {XLSX_TYPE: {}}, "description": "Sheets 居民信息 (fill in), 说明 (rules), "
                                                                         "住所清单 (dwellings in your area)"}})
def import_template(session: SessionDep, actor: StaffActor) -> Response:
    data = build_template(session, actor)
    disposition = f"attachment; filename=\"residents-import-template.xlsx\"; filename*=UTF-8''{quote(TEMPLATE_NAME)}"
    return Response(data, media_type=XLSX_TYPE, headers={"Content-Disposition": disposition})


@router.post("/residents/import", response_model=ResidentImportReport,
             summary="Import residents from the template (XLSX or CSV): dry run, or all rows or none",
             max_body_size=importer.IMPORT_MAX_BYTES + 64 * 1024,
             responses={201: {"model": ResidentImportReport, "description": "Committed: every row written"},
                        413: {"description": "body_too_large / import_too_large"},
                        415: {"description": "import_unsupported_type"},
                        422: {"description": "import_invalid (details is the report with every row's errors), "
                                             "import_columns, import_encoding, import_empty, import_too_many_rows"}})
def import_residents(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: StaffActor,
    file: Annotated[UploadFile, File(description="The filled-in template (.xlsx) or a CSV with the same headers")],
    dry_run: Annotated[bool, Query(description="Check every row and write nothing (the default)")] = True,
) -> ResidentImportReport:
    data = file.file.read(importer.IMPORT_MAX_BYTES + 1)
    report = importer.import_residents(session, actor, data, dry_run=dry_run, lang=language(request))
    if not dry_run:
        response.status_code = 201
    return report
