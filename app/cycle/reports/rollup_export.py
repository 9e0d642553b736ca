"""A roll-up as files: one row per community and the total row, one column per figure of the monthly report
(the same figures, labels and codes as export.py), XLSX in the printed layout and CSV (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from typing import Any

from app.core.tabular import safe_cell
from app.cycle.reports.export import Line, frame, heading, lines, period_zh
from app.cycle.reports.schemas import RollupOut

LEVELS_ZH = {"city": "市", "district": "区", "street": "街道"}
TOTAL = "合计"


def header(line: Line) -> str:
    """A figure's column heading: its group and label, and its unit."""
    return f"{line.group}·{line.label}" + (f"（{line.unit}）" if line.unit else "")


def table(r: RollupOut) -> tuple[list[Line], list[tuple[str, str, list[Any]]]]:
    """The columns (the totals' figures: every item any community lists) and the rows: (code, name, values) per
    community, then the total. A figure a community does not list (an item neither in force nor delivered
    there) is 0."""
    columns = lines(r.totals)
    rows = []
    for c in r.communities:
        values = {line.key: line.value for line in lines(c)}
        rows.append((c.community_code, c.community_name, [values.get(line.key, 0) for line in columns]))
    rows.append((r.division_code, f"{TOTAL}（{r.division_name}）", [line.value for line in columns]))
    return columns, rows


def to_csv(r: RollupOut) -> bytes:
    """UTF-8 with a byte-order mark; shares 0–1, empty when there is nothing to divide by."""
    columns, rows = table(r)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["月份", "单位代码", "单位", *(safe_cell(header(line)) for line in columns)])
    for code, name, values in rows:
        writer.writerow([r.month, code, safe_cell(name), *("" if v is None else v for v in values)])
    return buffer.getvalue().encode()


def to_xlsx(r: RollupOut) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    columns, rows = table(r)
    book = Workbook()
    sheet: Any = book.active
    sheet.title = "月报告汇总"
    width = len(columns) + 2
    heading(sheet, f"{r.division_name}（{r.division_code}，{LEVELS_ZH.get(r.level, r.level)}）汇总",
            period_zh(r), width)
    sheet.append(["社区代码", "社区", *(safe_cell(header(line)) for line in columns)])
    for code, name, values in rows:
        sheet.append([code, safe_cell(name), *("—" if v is None else v for v in values)])
        for n, line in enumerate(columns, start=3):
            if isinstance(line.value, float) or line.key.endswith(("coverage", "share")):
                sheet.cell(row=sheet.max_row, column=n).number_format = "0.0%"
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width = 14, 24
    for n in range(3, width + 1):
        sheet.column_dimensions[get_column_letter(n)].width = 12
    sheet.freeze_panes = "C4"
    return frame(sheet, "landscape")
