"""The police upload's layout and its rows checked one by one (docs/sharing.md, "Police uploads").

One fixed layout for CSV, XLSX and JSON. Table files have a header row (row 1) naming the columns in English
(the keys below) or Chinese; JSON is an array of objects (or `{"rows": [...]}`) with the same keys, and its row
numbers count the objects from 1. Unknown columns are ignored and listed. Every failure of every row is reported
as (row, field, code); nothing in a refused row is stored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.core.errors import AppError, Unprocessable
from app.core.inputs import loads_json
from app.core.tabular import ImportEmpty, ImportTooManyRows, ImportUnreadable, Limits, read_table, sheet_date, text_of
from app.people.register import service as register
from app.sharing.uploads.models import RowKind

MAX_ROWS = 5_000
MAX_BYTES = 2 * 1024 * 1024
LIMITS = Limits(max_bytes=MAX_BYTES, max_rows=MAX_ROWS, max_columns=30)

# key: (Chinese header, aliases). Required: kind, id_number, name, community_code, date; address for a registration.
COLUMNS: dict[str, tuple[str, ...]] = {
    "kind": ("类型", "业务类型", "登记类型"),
    "id_number": ("公民身份号码", "身份证号", "身份证号码", "身份号码"),
    "name": ("姓名",),
    "sex": ("性别",),
    "community_code": ("社区代码", "社区（村）代码", "所属社区代码"),
    "address": ("居住地址", "现住址", "住所地址"),
    "date": ("日期", "登记日期", "注销日期", "办理日期"),
    "permit_no": ("居住证号码", "居住证号"),
    "hukou_code": ("户籍地代码", "户籍地区划代码"),
}
REQUIRED = ("kind", "id_number", "name", "community_code", "date")
MAX_LENGTHS = {"name": 50, "address": 200, "permit_no": 30}
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


def norm(value: str) -> str:
    """Header / vocabulary / address key: NFKC, no spaces or invisible characters, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value).translate(_INVISIBLE)).lower()


HEADER_KEYS = {norm(name): key for key, names in COLUMNS.items() for name in (key, *names)}
KINDS = {norm(k): v for k, v in {
    "registration": RowKind.registration, "登记": RowKind.registration, "居住登记": RowKind.registration,
    "办理": RowKind.registration, "deregistration": RowKind.deregistration, "注销": RowKind.deregistration,
    "注销登记": RowKind.deregistration}.items()}
SEXES = {norm(k): v for k, v in {"男": "M", "女": "F", "m": "M", "f": "F", "1": "M", "2": "F"}.items()}
CODE12 = re.compile(r"^[0-9]{12}$")
CODE6 = re.compile(r"^[0-9]{6}$")


class UploadColumns(Unprocessable):
    code = "police_upload_columns"
    en = "The file lacks a required column (kind, id_number, name, community_code, date) or repeats one."
    zh = "文件缺少必填列（类型、公民身份号码、姓名、社区代码、日期）或有重复列。"


@dataclass
class Row:
    number: int
    values: dict[str, str]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, code)
    kind: RowKind | None = None
    id_number: str | None = None
    sex: str | None = None
    event_date: date | None = None

    def error(self, key: str, code: str) -> None:
        if (key, code) not in self.errors:
            self.errors.append((key, code))


@dataclass
class Upload:
    format: str
    rows: list[Row]
    ignored: list[str]


def read_upload(data: bytes) -> Upload:
    """The file's rows, checked one by one (CSV/XLSX through app/core/tabular.py, JSON here, same limits)."""
    if data.lstrip()[:1] in (b"[", b"{"):
        return _read_json(data)
    table = read_table(data, LIMITS)
    if len(table.rows) < 2:
        raise ImportEmpty()
    positions, ignored = _header([text_of(c) for c in table.rows[0][1]])
    rows = [check_row(number, {k: text_of(cells[i]) if i < len(cells) else "" for k, i in positions.items()},
                      raw_id=cells[positions["id_number"]] if positions["id_number"] < len(cells) else None)
            for number, cells in table.rows[1:]]
    return Upload(table.format, rows, ignored)


def _header(names: list[str]) -> tuple[dict[str, int], list[str]]:
    positions: dict[str, int] = {}
    ignored, repeated = [], []
    for index, name in enumerate(names):
        key = HEADER_KEYS.get(norm(name).rstrip("*"))
        if key is None:
            if name:
                ignored.append(name[:40])
        elif key in positions:
            repeated.append(key)
        else:
            positions[key] = index
    missing = [k for k in REQUIRED if k not in positions]
    if missing or repeated:
        raise UploadColumns({"missing": missing, "duplicate": repeated})
    return positions, ignored


def _read_json(data: bytes) -> Upload:
    if len(data) > MAX_BYTES:
        from app.core.tabular import ImportTooLarge

        raise ImportTooLarge({"max_bytes": MAX_BYTES})
    try:
        parsed = loads_json(data)
    except ValueError:
        raise ImportUnreadable() from None
    items = parsed.get("rows") if isinstance(parsed, dict) else parsed
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ImportUnreadable()
    if not items:
        raise ImportEmpty()
    if len(items) > MAX_ROWS:
        raise ImportTooManyRows({"max_rows": MAX_ROWS})
    names = sorted({str(k) for item in items for k in item})
    _header(names)  # the required keys must appear somewhere; unknown ones are listed
    ignored = [n[:40] for n in names if norm(n) not in HEADER_KEYS]
    rows = []
    for number, item in enumerate(items, start=1):
        values: dict[str, str] = {}
        bad: list[str] = []
        for name, value in item.items():
            key = HEADER_KEYS.get(norm(str(name)))
            if key is None:
                continue
            id_not_text = key == "id_number" and value is not None and not isinstance(value, str)
            if isinstance(value, (dict, list, bool)) or id_not_text:
                bad.append(key)
            values[key] = "" if key in bad else text_of(value)
        row = check_row(number, values)
        row.errors = [(k, c) for k, c in row.errors if k not in bad]
        for key in bad:
            row.error(key, "invalid")
        rows.append(row)
    return Upload("json", rows, ignored)


def _date(row: Row, key: str) -> date | None:
    text = unicodedata.normalize("NFKC", row.values.get(key, ""))
    if not text:
        return None
    try:
        return sheet_date(text)
    except ValueError:
        row.error(key, "date_format")
        return None


def check_row(number: int, values: dict[str, str], raw_id: Any = None) -> Row:
    """One row's own rules; the register and the jurisdiction are checked in reconcile.py."""
    row = Row(number, values)
    for key, text in values.items():
        if "\x00" in text:  # reported, and never sent to the database
            row.error(key, "nul_byte")
            values[key] = text.replace("\x00", "")
    for key in REQUIRED:
        if not values.get(key):
            row.error(key, "required")
    for key, limit in MAX_LENGTHS.items():
        if len(values.get(key, "")) > limit:
            row.error(key, "too_long")
    if values.get("kind"):
        row.kind = KINDS.get(norm(values["kind"]))
        if row.kind is None:
            row.error("kind", "kind_format")
    if row.kind is RowKind.registration and not values.get("address"):
        row.error("address", "required")
    if values.get("community_code") and not CODE12.match(unicodedata.normalize("NFKC", values["community_code"])):
        row.error("community_code", "community_code_format")
    if values.get("hukou_code") and not CODE6.match(unicodedata.normalize("NFKC", values["hukou_code"])):
        row.error("hukou_code", "hukou_code_format")
    row.event_date = _date(row, "date")
    try:
        register.check_dates(row.event_date)
    except AppError as exc:
        row.error("date", exc.code)
    _identity(row, raw_id)
    return row


def _identity(row: Row, raw_id: Any) -> None:
    sex_text = row.values.get("sex", "")
    sex = SEXES.get(norm(sex_text)) if sex_text else None
    if sex_text and sex is None:
        row.error("sex", "sex_format")
    if isinstance(raw_id, float):  # Excel kept only 15 significant digits of an ID typed as a number
        row.error("id_number", "id_number_as_number")
        return
    if not row.values.get("id_number"):
        return
    try:
        parsed = register.parse_id_number(row.values["id_number"])
    except AppError as exc:
        row.error("id_number", exc.code)
        return
    if not parsed.verified:  # a bad check character or province: a station's data must be exact
        row.error("id_number", register.unverified_error(parsed).code)
        return
    row.id_number, row.sex = parsed.number, parsed.sex
    if sex is not None and sex != parsed.sex:
        row.error("sex", "id_sex_mismatch")


def mark_duplicates(rows: list[Row]) -> None:
    """The same person twice in one file: the later rows are refused."""
    seen: set[str] = set()
    for row in rows:
        if row.id_number is None:
            continue
        if row.id_number in seen:
            row.error("id_number", "duplicate_in_file")
        seen.add(row.id_number)
