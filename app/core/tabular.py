"""Reading an uploaded table (XLSX or CSV) into rows of cells, with the file-level errors every import shares.

- XLSX: a zip holding `xl/workbook.xml`, read with openpyxl in read-only mode from the first worksheet; the
  unpacked size is checked first (zip bombs) and the declared dimensions are ignored (a file may claim
  A1:XFD1048576), reading only the rows that exist and at most `max_columns` columns.
- CSV: UTF-8 (with or without BOM); when that fails, GB18030 (a superset of GBK, what Chinese Excel writes
  for "CSV (逗号分隔)"). The delimiter is the commonest of comma, tab and semicolon in the first lines.
- Old .xls, PDF, images, archives, anything with NUL bytes in its first 64 KiB: 415 (a NUL later is left
  to the importer, which reports it as an error of its row and column). Over the byte limit: 413. Blank rows are
  skipped; row numbers are kept as the spreadsheet shows them (header = row 1).
Each import states its own `Limits`; the errors carry the limits in `details`. Exports write their text cells
through `safe_cell`, so a spreadsheet never evaluates one as a formula.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.core.errors import AppError, Unprocessable

HEADER_SEARCH_ROWS = 10
NOT_TABLES = (b"\xd0\xcf\x11\xe0", b"%PDF", b"\x89PNG", b"\x1f\x8b", b"\xff\xd8\xff", b"GIF8")


class ImportTooLarge(AppError):
    status = 413
    code = "import_too_large"
    en = "The file is too large to import (details give the limits in bytes)."
    zh = "导入文件过大（details 中给出字节数上限）。"


class ImportUnsupportedType(AppError):
    status = 415
    code = "import_unsupported_type"
    en = "Upload an Excel .xlsx file or a CSV file; old .xls and other formats cannot be read."
    zh = "请上传 Excel .xlsx 或 CSV 文件；不支持旧版 .xls 及其他格式。"


class ImportEncoding(Unprocessable):
    code = "import_encoding"
    en = "The CSV file is neither UTF-8 nor GB18030/GBK text."
    zh = "CSV 文件既不是 UTF-8 也不是 GB18030/GBK 编码。"


class ImportEmpty(Unprocessable):
    code = "import_empty"
    en = "The file has no header row or no data rows."
    zh = "文件没有表头或没有数据行。"


class ImportUnreadable(Unprocessable):
    code = "import_unreadable"
    en = "The file could not be read as a table."
    zh = "无法按表格读取该文件。"


class ImportTooManyRows(Unprocessable):
    code = "import_too_many_rows"
    en = "The file has too many rows for one import (details give the limit); split it."
    zh = "文件行数超过单次导入上限（见 details），请拆分后导入。"


# Characters an XLSX file cannot hold (C0 controls but tab, newline and carriage return): openpyxl raises on
# them. Stored text may contain them (text fields refuse only NUL), so every sheet we write drops them.
SHEET_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def sheet_text(value: Any) -> Any:
    """A value as a worksheet cell may hold it: text without the control characters XLSX forbids."""
    return SHEET_ILLEGAL.sub("", value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int
    max_unpacked: int = 150 * 1024 * 1024
    max_columns: int = 60


@dataclass
class FileTable:
    format: str
    encoding: str | None
    rows: list[tuple[int, list[Any]]]  # (row number as shown, cells), header first


def read_table(data: bytes, limits: Limits) -> FileTable:
    if not data:
        raise ImportEmpty()
    if len(data) > limits.max_bytes:
        raise ImportTooLarge({"max_bytes": limits.max_bytes})
    if data.startswith(b"PK\x03\x04"):
        return FileTable("xlsx", None, _read_xlsx(data, limits))
    if b"\x00" in data[:65536] or data.startswith(NOT_TABLES):
        raise ImportUnsupportedType()
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            raise ImportEncoding() from None
    return FileTable("csv", encoding, _read_csv(text, limits))


def _limited(rows: Iterable[tuple[int, list[Any]]], limits: Limits) -> list[tuple[int, list[Any]]]:
    out = []
    for number, cells in rows:
        if not any(text_of(c) for c in cells):
            continue
        out.append((number, cells[:limits.max_columns]))
        if len(out) > limits.max_rows + 1:
            raise ImportTooManyRows({"max_rows": limits.max_rows})
    return out


def _read_csv(text: str, limits: Limits) -> list[tuple[int, list[Any]]]:
    head = "\n".join(text.split("\n", HEADER_SEARCH_ROWS)[:HEADER_SEARCH_ROWS])
    delimiter = max((",", "\t", ";"), key=head.count)  # ties (none of them) fall back to the comma
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _limited(((n, list(row)) for n, row in enumerate(reader, start=1)), limits)
    except csv.Error:
        raise ImportUnreadable() from None


def _read_xlsx(data: bytes, limits: Limits) -> list[tuple[int, list[Any]]]:
    import openpyxl  # only imports need it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportUnreadable() from None
    if "xl/workbook.xml" not in names:
        raise ImportUnsupportedType()
    if unpacked > limits.max_unpacked:
        raise ImportTooLarge({"max_bytes": limits.max_bytes, "max_unpacked_bytes": limits.max_unpacked})
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds of errors for damaged files
        raise ImportUnreadable() from None
    try:
        if not workbook.worksheets:
            raise ImportEmpty()
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()

        def rows() -> Iterator[tuple[int, list[Any]]]:
            for number, values in enumerate(sheet.iter_rows(values_only=True, max_col=limits.max_columns), start=1):
                yield number, list(values)

        try:
            return _limited(rows(), limits)
        except AppError:
            raise
        except Exception:
            raise ImportUnreadable() from None
    finally:
        workbook.close()


def text_of(value: Any) -> str:
    """A cell as text: numbers back to digits, dates as ISO dates, strings stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """Text for a cell of an exported table: never a formula (a leading = + - @ tab or CR is quoted with ')."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# A date as offices type it into a sheet: 2026-11-20, 2026/11/20, 2026.11.20, 2026年11月20日, 20261120 (full-width
# digits are folded by the caller's NFKC; other scripts' digits stay refused).
_DATE = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?(?:[T ]00:00(?::00)?)?$")
_DATE8 = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")


def sheet_date(text: str) -> date:
    """The date in a cell's text; ValueError when it is none (the caller reports its row's `date_format`)."""
    match = _DATE.match(text) or _DATE8.match(text)
    if match is None:
        raise ValueError(text)
    return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
