"""The monthly report as files: XLSX in the layout an office prints and files (title, unit, period, the figures,
signature lines) and CSV as one flat table a program can read and concatenate (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from app.core.tabular import safe_cell
from app.cycle.reports.schemas import ReportOut, RollupOut, Totals

TITLE = "流动人口服务管理月报告"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("类别", "指标", "数值", "单位")
CSV_HEADER = ("月份", "社区代码", "社区", "类别", "指标", "代码", "数值", "单位")
SIGNATURES = ("填报人：", "审核人：", "日期：    年  月  日")
OUTCOMES_ZH = {"PRESENT": "在住", "MOVED_WITHIN_CITY": "本市内迁移", "LEFT_CITY": "离开本市",
               "RETURNED_HOME": "返回户籍地", "NOT_FOUND": "查无此人", "SETTLED": "已落户本地", "DECEASED": "死亡"}
FP_ZH = {"valid": "有效", "temporary": "临时", "expired": "过期", "nonconforming": "不符合要求", "missing": "未提供"}
TASKS_ZH = {"new_arrival_visit": "新到人员访视", "key_person_monthly": "重点对象月访视", "follow_up": "随访",
            "verification": "核查"}


@dataclass(frozen=True)
class Line:
    group: str
    label: str
    key: str  # a stable code for programs (stock.total, services.<code>.quantity …)
    value: int | float | None  # a float is a share (0–1); None: nothing to divide by
    unit: str


def lines(r: ReportOut | Totals) -> list[Line]:
    out = [Line("在册人口", "期末在册人数", "stock.total", r.stock.total, "人"),
           Line("在册人口", "其中：男", "stock.male", r.stock.male, "人"),
           Line("在册人口", "其中：女", "stock.female", r.stock.female, "人"),
           Line("在册人口", "其中：育龄妇女（15–49岁）", "stock.women_15_49", r.stock.women_15_49, "人"),
           Line("人口变动", "本月流入", "movement.arrivals", r.movement.arrivals, "人"),
           Line("人口变动", "本月流出", "movement.departures", r.movement.departures, "人"),
           Line("月核查", "应核查", "verifications.total", r.verifications.total, "人"),
           Line("月核查", "已核查", "verifications.verified", r.verifications.verified, "人"),
           Line("月核查", "待核查", "verifications.pending", r.verifications.pending, "人"),
           Line("月核查", "核查覆盖率", "verifications.coverage", r.verifications.coverage, "")]
    out += [Line("月核查", f"核查结果：{OUTCOMES_ZH[o]}", f"verifications.{o}", n, "人")
            for o, n in r.verifications.by_outcome.items()]
    out += [Line("月访视", "入户访视", "visits.in_person", r.visits.in_person, "次"),
            Line("月访视", "其中：见到本人", "visits.in_person_met", r.visits.in_person_met, "次"),
            Line("月访视", "电话访视", "visits.phone", r.visits.phone, "次"),
            Line("月访视", "其中：联系到本人", "visits.phone_met", r.visits.phone_met, "次"),
            Line("重点对象", "重点对象人数", "key_persons.registered", r.key_persons.registered, "人"),
            Line("重点对象", "本月已访视", "key_persons.visited", r.key_persons.visited, "人"),
            Line("重点对象", "访视率", "key_persons.share", r.key_persons.share, ""),
            Line("婚育证明", "本月查验", "fp_documents.checked", r.fp_documents.checked, "份")]
    out += [Line("婚育证明", f"其中：{FP_ZH[s]}", f"fp_documents.{s}", n, "份")
            for s, n in r.fp_documents.by_status.items()]
    for item in r.services:
        key = f"services.{item.code}"
        out += [Line("免费服务", f"{item.name_zh}（人次）", f"{key}.deliveries", item.deliveries, "人次"),
                Line("免费服务", f"{item.name_zh}（数量）", f"{key}.quantity", item.quantity, item.unit)]
    out.append(Line("逾期事项", "逾期任务", "overdue.tasks", r.overdue.tasks, "件"))
    out += [Line("逾期事项", f"其中：{TASKS_ZH.get(k, k)}", f"overdue.tasks.{k}", n, "件")
            for k, n in r.overdue.tasks_by_kind.items()]
    out.append(Line("逾期事项", "逾期协查", "overdue.assistance_requests", r.overdue.assistance_requests, "件"))
    return out


def period_zh(r: ReportOut | RollupOut) -> str:
    text = f"{r.month[:4]}年{int(r.month[5:7])}月"
    return text if r.complete else f"{text}（截至{r.as_of.isoformat()}，未满月）"


def to_csv(r: ReportOut) -> bytes:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel opens UTF-8 with a byte-order mark correctly
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for line in lines(r):
        value = "" if line.value is None else line.value
        writer.writerow([r.month, r.community_code, safe_cell(r.community_name), line.group, safe_cell(line.label),
                         line.key, value, safe_cell(line.unit)])
    return buffer.getvalue().encode()


def heading(sheet: Any, unit: str, period: str, width: int) -> None:
    """Rows 1–2 of a printed form: the title across the sheet, the reporting unit and the period."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    last = get_column_letter(width)
    half = get_column_letter(width // 2)
    sheet.append([TITLE])
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font, sheet["A1"].alignment = Font(bold=True, size=16), Alignment(horizontal="center")
    sheet.append([f"填报单位：{unit}"] + [None] * (width // 2 - 1) + [f"报告期：{period}"])
    sheet.merge_cells(f"A2:{half}2")
    sheet.merge_cells(f"{get_column_letter(width // 2 + 1)}2:{last}2")


def frame(sheet: Any, orientation: str) -> bytes:
    """Borders from the header row (3) to the last row, the signature line, A4 fit to width with the header row
    repeated on every page; the workbook as bytes."""
    from openpyxl.styles import Alignment, Border, Font, Side

    thin = Side(style="thin")
    for cell in sheet[3]:
        cell.font, cell.alignment = Font(bold=True), Alignment(horizontal="center", wrap_text=True)
    for row in sheet.iter_rows(min_row=3, max_row=sheet.max_row):
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
    sheet.append([])
    sheet.append([SIGNATURES[0], SIGNATURES[1], SIGNATURES[2]])
    sheet.print_title_rows = "3:3"
    sheet.page_setup.paperSize, sheet.page_setup.orientation = sheet.PAPERSIZE_A4, orientation
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    buffer = io.BytesIO()
    sheet.parent.save(buffer)
    return buffer.getvalue()


def to_xlsx(r: ReportOut) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet: Any = book.active
    sheet.title = "月报告"
    heading(sheet, f"{r.community_name}（{r.community_code}）", period_zh(r), len(HEADER))
    sheet.append(list(HEADER))
    for line in lines(r):
        sheet.append([line.group, safe_cell(line.label), "—" if line.value is None else line.value,
                      safe_cell(line.unit)])
        if isinstance(line.value, float):
            sheet.cell(row=sheet.max_row, column=3).number_format = "0.0%"
    for column, width in zip("ABCD", (14, 36, 22, 10), strict=True):
        sheet.column_dimensions[column].width = width
    return frame(sheet, "portrait")
