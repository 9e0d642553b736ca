"""A roll-up as files: one row per community and the total row, one column per figure of the monthly report
(the same figures, labels and codes as export.py), XLSX in the printed layout and CSV (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from typing import Any

from app.core.tabular import safe_cell
from app.cycle.reports.export import Line, corrections_table, frame, heading, lines, marks, period_zh
from app.cycle.reports.schemas import RollupOut

LEVELS_ZH = {"city": "市", "district": "区", "street": "街道"}
TOTAL = "合计"
NOTE = "更正说明"
CORRECTED_FILL = "FFF2CC"  # a corrected figure's cell (pale yellow), with the note in its row's last column


def header(line: Line) -> str:
    """A figure's column heading: its group and label, and its unit."""
    return f"{line.group}·{line.label}" + (f"（{line.unit}）" if line.unit else "")


Row = tuple[str, str, list[Any], dict[str, str]]  # code, name, values, the notes of its corrected figures


def table(r: RollupOut) -> tuple[list[Line], list[Row]]:
    """The columns (the totals' figures: every item any community lists) and the rows: (code, name, values,
    notes) per community, then the total. A figure a community does not list (an item neither in force nor
    delivered there) is 0. A figure corrected after the lock shows its corrected value, with a note naming the
    approved value and the corrections; the total of such a figure is the sum with the corrected values."""
    columns = lines(r.totals)
    labels = {line.key: line.label for line in columns}
    rows: list[Row] = []
    for c in r.communities:
        values = {line.key: line.value for line in lines(c)}
        fixed = marks(c)
        notes = {code: f"{labels.get(code, code)}：{m.note()}" for code, m in fixed.items()}
        rows.append((c.community_code, c.community_name,
                     [fixed[line.key].corrected if line.key in fixed else values.get(line.key, 0) for line in columns],
                     notes))
    totals = {line.key: line.value for line in columns}
    codes = {c.community_id: c.community_code for c in r.communities}
    notes = {code: f"{labels.get(code, code)}：※含更正，核定合计 {totals.get(code)}，更正后 {n}（"
                   f"{'、'.join(codes.get(i, i) for i in r.corrected_communities.get(code, []))}）"
             for code, n in r.corrected.items()}
    rows.append((r.division_code, f"{TOTAL}（{r.division_name}）",
                 [r.corrected.get(line.key, line.value) for line in columns], notes))
    return columns, rows


def to_csv(r: RollupOut) -> bytes:
    """UTF-8 with a byte-order mark; shares 0–1, empty when there is nothing to divide by."""
    columns, rows = table(r)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["月份", "单位代码", "单位", *(safe_cell(header(line)) for line in columns), NOTE])
    for code, name, values, notes in rows:
        writer.writerow([r.month, code, safe_cell(name), *("" if v is None else v for v in values),
                         "；".join(notes.values())])
    return buffer.getvalue().encode()


def to_xlsx(r: RollupOut, authors: dict[str, str] | None = None) -> bytes:
    """The printed table; with corrections after the lock, a last column `更正说明`, the corrected cells filled,
    and each corrected community's corrections listed under the table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    columns, rows = table(r)
    book = Workbook()
    sheet: Any = book.active
    sheet.title = "月报告汇总"
    width = len(columns) + 2 + (1 if r.corrected else 0)
    heading(sheet, f"{r.division_name}（{r.division_code}，{LEVELS_ZH.get(r.level, r.level)}）汇总",
            period_zh(r), width)
    sheet.append(["社区代码", "社区", *(safe_cell(header(line)) for line in columns), *([NOTE] if r.corrected else [])])
    fill = PatternFill("solid", fgColor=CORRECTED_FILL)
    for code, name, values, notes in rows:
        sheet.append([code, safe_cell(name), *("—" if v is None else v for v in values),
                      *(["；".join(notes.values()) or None] if r.corrected else [])])
        for n, line in enumerate(columns, start=3):
            if isinstance(line.value, float) or line.key.endswith(("coverage", "share")):
                sheet.cell(row=sheet.max_row, column=n).number_format = "0.0%"
            if line.key in notes:
                sheet.cell(row=sheet.max_row, column=n).fill = fill
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width = 14, 24
    for n in range(3, width + 1):
        sheet.column_dimensions[get_column_letter(n)].width = 12
    sheet.freeze_panes = "C4"
    return frame(sheet, "landscape", corrections(r, authors or {}) or None)


def corrections(r: RollupOut, authors: dict[str, str]) -> list[list[Any]]:
    """One list of the communities' corrections after the lock: title, header, a row per correction with its
    community (empty without corrections)."""
    out: list[list[Any]] = []
    for c in r.communities:
        if c.corrections:
            title, head, *fixes = corrections_table(c, authors)
            out = out or [title, ["社区代码", *head]]
            out += [[c.community_code, *fix] for fix in fixes]
    return out
