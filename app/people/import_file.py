"""Reading an uploaded register (XLSX or CSV) into rows of cells, with the file-level errors.

- XLSX: a zip holding `xl/workbook.xml`, read with openpyxl in read-only mode from the first worksheet;
  the unpacked size is checked first (zip bombs).
- CSV: UTF-8 (with or without BOM); when that fails, GB18030 (a superset of GBK, what Chinese Excel writes
  for "CSV (逗号分隔)"). Comma-separated; tab or semicolon when the header line has no comma.
- Old .xls, PDF, images, anything with NUL bytes: 415. Over `IMPORT_MAX_BYTES`: 413. Blank rows are skipped;
  row numbers are kept as the spreadsheet shows them (header = row 1).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.core.errors import AppError, Unprocessable

IMPORT_MAX_BYTES = 8 * 1024 * 1024
XLSX_MAX_UNCOMPRESSED = 150 * 1024 * 1024


class ImportTooLarge(AppError):
    status = 413
    code = "import_too_large"
    en = "The file is too large to import (at most 8 MiB, 150 MiB unpacked)."
    zh = "导入文件过大（最大 8 MiB，解压后不超过 150 MiB）。"


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
    en = "The file has too many rows (at most 20,000 per import); split it."
    zh = "文件行数过多（每次最多 20,000 行），请拆分后导入。"


@dataclass
class FileTable:
    format: str
    encoding: str | None
    rows: list[tuple[int, list[Any]]]  # (row number as shown, cells), header first


def read_table(data: bytes, max_rows: int) -> FileTable:
    if not data:
        raise ImportEmpty()
    if len(data) > IMPORT_MAX_BYTES:
        raise ImportTooLarge()
    if data.startswith(b"PK\x03\x04"):
        return FileTable("xlsx", None, _read_xlsx(data, max_rows))
    if b"\x00" in data[:65536] or data.startswith((b"\xd0\xcf\x11\xe0", b"%PDF", b"\x89PNG", b"\x1f\x8b",
                                                   b"\xff\xd8\xff", b"GIF8")):
        raise ImportUnsupportedType()
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            raise ImportEncoding() from None
    return FileTable("csv", encoding, _read_csv(text, max_rows))


def _limited(rows: Iterable[tuple[int, list[Any]]], max_rows: int) -> list[tuple[int, list[Any]]]:
    out = []
    for number, cells in rows:
        if not any(text_of(c) for c in cells):
            continue
        out.append((number, cells))
        if len(out) > max_rows + 1:
            raise ImportTooManyRows({"max_rows": max_rows})
    return out


def _read_csv(text: str, max_rows: int) -> list[tuple[int, list[Any]]]:
    first = text.split("\n", 1)[0]
    delimiter = "," if "," in first else ("\t" if "\t" in first else (";" if ";" in first else ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _limited(((n, list(row)) for n, row in enumerate(reader, start=1)), max_rows)
    except csv.Error:
        raise ImportUnreadable() from None


def _read_xlsx(data: bytes, max_rows: int) -> list[tuple[int, list[Any]]]:
    import openpyxl  # only imports need it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportUnreadable() from None
    if "xl/workbook.xml" not in names:
        raise ImportUnsupportedType()
    if unpacked > XLSX_MAX_UNCOMPRESSED:
        raise ImportTooLarge()
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds of errors for damaged files
        raise ImportUnreadable() from None
    try:
        if not workbook.worksheets:
            raise ImportEmpty()
        sheet = workbook.worksheets[0]

        def rows() -> Iterator[tuple[int, list[Any]]]:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, list(values)

        try:
            return _limited(rows(), max_rows)
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


