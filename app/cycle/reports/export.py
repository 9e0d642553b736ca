"""The monthly report as files: XLSX in the layout an office prints and files (title, unit, period, the figures,
signature lines) and CSV as one flat table a program can read and concatenate (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from app.core.tabular import safe_cell
from app.core.types import CITY_TZ
from app.cycle.reports.schemas import ReportOut, RollupOut, Totals

TITLE = "流动人口服务管理月报告"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("类别", "指标", "数值", "单位")
CSV_HEADER = ("月份", "社区代码", "社区", "类别", "指标", "代码", "数值", "单位", "更正后数值", "更正记录")
CORRECTED_HEADER = ("更正后数值", "更正说明")
CORRECTIONS_TITLE = "锁定后更正记录"
CORRECTIONS_HEADER = ("更正号", "指标（代码）", "更正前", "更正后", "更正原因", "更正人、时间")
SIGNATURES = ("填报人：", "审核人：", "日期：    年  月  日")
OUTCOMES_ZH = {"PRESENT": "在住", "MOVED_WITHIN_CITY": "本市内迁移", "LEFT_CITY": "离开本市",
               "RETURNED_HOME": "返回户籍地", "NOT_FOUND": "查无此人", "SETTLED": "已落户本地", "DECEASED": "死亡"}
FP_ZH = {"valid": "有效", "temporary": "临时", "expired": "过期", "nonconforming": "不符合要求", "missing": "未提供"}
TASKS_ZH = {"new_arrival_visit": "新到人员访视", "key_person_monthly": "重点对象月访视", "follow_up": "随访",
            "verification": "核查", "reported_arrival": "公安通报新到人员走访"}


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


@dataclass
class Mark:
    """A figure corrected after the lock: the approved value, the current corrected one, the corrections."""

    approved: int | float | None
    corrected: int
    seqs: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def note(self) -> str:
        """What the printed form says next to the figure."""
        return f"※已更正：核定值 {self.approved}，见更正#{'、#'.join(str(n) for n in self.seqs)}"

    def trace(self) -> str:
        """The CSV's trace to the corrections (their numbers and ids, as in the JSON read)."""
        return ";".join(f"#{n}:{i}" for n, i in zip(self.seqs, self.ids, strict=True))


def marks(r: ReportOut) -> dict[str, Mark]:
    """The corrected figures of a report by code (none before the lock)."""
    approved = {line.key: line.value for line in lines(r)}
    out: dict[str, Mark] = {}
    for c in r.corrections:
        mark = out.setdefault(c.code, Mark(approved.get(c.code), r.corrected.get(c.code, c.corrected)))
        mark.seqs.append(c.seq)
        mark.ids.append(c.id)
    return out


def period_zh(r: ReportOut | RollupOut) -> str:
    text = f"{r.month[:4]}年{int(r.month[5:7])}月"
    return text if r.complete else f"{text}（截至{r.as_of.isoformat()}，未满月）"


def to_csv(r: ReportOut) -> bytes:
    """One row per figure; `数值` the approved value, `更正后数值` and `更正记录` (#seq:id) for a corrected one."""
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel opens UTF-8 with a byte-order mark correctly
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    fixed = marks(r)
    for line in lines(r):
        value = "" if line.value is None else line.value
        mark = fixed.get(line.key)
        writer.writerow([r.month, r.community_code, safe_cell(r.community_name), line.group, safe_cell(line.label),
                         line.key, value, safe_cell(line.unit), "" if mark is None else mark.corrected,
                         "" if mark is None else mark.trace()])
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


def frame(sheet: Any, orientation: str, tail: list[list[Any]] | None = None) -> bytes:
    """Borders from the header row (3) to the last row, then `tail` (a titled table of its own: the corrections
    after the lock), the signature line, A4 fit to width with the header row repeated on every page; the workbook
    as bytes."""
    from openpyxl.styles import Alignment, Border, Font, Side

    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    for cell in sheet[3]:
        cell.font, cell.alignment = Font(bold=True), Alignment(horizontal="center", wrap_text=True)
    for row in sheet.iter_rows(min_row=3, max_row=sheet.max_row):
        for cell in row:
            cell.border = box
    if tail:
        sheet.append([])
        start = sheet.max_row + 1
        for n, values in enumerate(tail):
            sheet.append(values)
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=n < 2)
                if n:
                    cell.border = box
        sheet.cell(row=start, column=1).font = Font(bold=True, size=12)
    sheet.append([])
    sheet.append([SIGNATURES[0], SIGNATURES[1], SIGNATURES[2]])
    sheet.print_title_rows = "3:3"
    sheet.page_setup.paperSize, sheet.page_setup.orientation = sheet.PAPERSIZE_A4, orientation
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    buffer = io.BytesIO()
    sheet.parent.save(buffer)
    return buffer.getvalue()


def corrections_table(r: ReportOut, authors: dict[str, str]) -> list[list[Any]]:
    """The printed list of the corrections after the lock, oldest first (title, header, one row each)."""
    labels = {line.key: f"{line.group}·{line.label}" for line in lines(r)}
    rows: list[list[Any]] = [[CORRECTIONS_TITLE], list(CORRECTIONS_HEADER)]
    for c in r.corrections:
        when = c.created_at.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
        rows.append([f"#{c.seq}", safe_cell(f"{labels.get(c.code, c.code)}（{c.code}）"), c.original, c.corrected,
                     safe_cell(c.reason), safe_cell(f"{authors.get(c.author, c.author)} {when}")])
    return rows


def to_xlsx(r: ReportOut, authors: dict[str, str] | None = None) -> bytes:
    """The printed form. A report corrected after the lock gets two more columns (the corrected value and a note
    that names the corrections) and the list of its corrections under the figures; `数值` stays the approved
    value. `authors`: the correction authors' display names by user id."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet: Any = book.active
    sheet.title = "月报告"
    fixed = marks(r)
    extra = list(CORRECTED_HEADER) if fixed else []
    heading(sheet, f"{r.community_name}（{r.community_code}）", period_zh(r), len(HEADER) + len(extra))
    sheet.append(list(HEADER) + extra)
    for line in lines(r):
        mark = fixed.get(line.key)
        row = [line.group, safe_cell(line.label), "—" if line.value is None else line.value, safe_cell(line.unit)]
        sheet.append(row + ([] if not fixed else [None, None] if mark is None else [mark.corrected, mark.note()]))
        if isinstance(line.value, float):
            sheet.cell(row=sheet.max_row, column=3).number_format = "0.0%"
        if mark is not None:
            sheet.cell(row=sheet.max_row, column=5).font = Font(bold=True)
    for column, width in zip("ABCDEF", (14, 36, 22, 10, 12, 34), strict=True):
        sheet.column_dimensions[column].width = width
    return frame(sheet, "portrait", corrections_table(r, authors or {}) if fixed else None)
