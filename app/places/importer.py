"""Import a division table (行政区划代码表) from CSV or XLSX: all or nothing, upsert by path.

File handling (decided by content, never by file name or declared type) is app/core/tabular.py's: XLSX
(first worksheet, zip-bomb check) or CSV in UTF-8 or GB18030/GBK; anything else is 415
`import_unsupported_type`; over `IMPORT_MAX_BYTES` (5 MiB) 413 `import_too_large`; over `IMPORT_MAX_ROWS` data
rows 422 `import_too_many_rows`. Numeric cells are turned back into digit strings (Excel stores 410105001001
as a number); leading zeros Excel already dropped cannot be recovered.

Columns (a header row, possibly below a title row; English or Chinese names, case and full-width characters
ignored, unknown columns ignored and listed in the report): code 代码, name 名称, level 级别, parent_code 上级代码 (all
required), community_type 社区类型 and vintage 年份 (optional; a missing or empty vintage falls back to the
`vintage` query parameter). Levels and community types accept the enum values and their Chinese names.

Semantics: every row is checked with the same rules as the API (app.places.service), parents are found
in the file first and then in the database (by level and code, which the code rules make unique), and the
row's path decides between create and update. Existing divisions get name, community type and vintage
from the file and keep their `active` flag; new ones are active. Nothing is written unless every row is
valid: errors come back as 422 `import_invalid` with each row's number (as the spreadsheet or a text editor
shows it: the first line is row 1), error code and field. A dry run checks everything and writes nothing.
Renumbering is not an import: a changed code is a new path, so use PATCH or move for that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlmodel import Session, col

from app.core.errors import Unprocessable
from app.core.tabular import ImportEmpty, Limits, read_table, text_of
from app.core.types import new_id, utcnow
from app.ledger import audit
from app.places import errors, service
from app.places.models import LEVEL_ORDER, CommunityType, Division, Level
from app.places.schemas import ImportReport, ImportRowError, collapse_spaces

IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 50_000
LIMITS = Limits(max_bytes=IMPORT_MAX_BYTES, max_rows=IMPORT_MAX_ROWS, max_unpacked=100 * 1024 * 1024, max_columns=50)
MAX_REPORTED_ERRORS = 5_000
HEADER_SEARCH_ROWS = 10
NAME_MAX = 100
CHUNK = 500


# --- errors ---------------------------------------------------------------------------------------------











class ImportColumns(Unprocessable):
    code = "import_columns"
    en = "The header row lacks required columns or repeats one (code, name, level, parent_code)."
    zh = "表头缺少必需列或有重复列（代码、名称、级别、上级代码）。"




class ImportInvalid(Unprocessable):
    code = "import_invalid"
    en = "Some rows are not valid; nothing was imported. See details.errors."
    zh = "部分行无效，未导入任何数据，详见 details.errors。"


# Row-level codes without an AppError of their own.
ROW_MESSAGES: dict[str, tuple[str, str]] = {
    "code_required": ("The code is empty.", "代码为空。"),
    "name_required": ("The name is empty.", "名称为空。"),
    "name_too_long": ("The name is longer than 100 characters.", "名称超过100个字符。"),
    "level_invalid": ("Unknown level (city, district, street, community, grid or 市/区/街道/社区/网格).",
                      "级别无效（市、区县、街道、社区、网格）。"),
    "community_type_invalid": ("Unknown community type.", "社区类型无效。"),
    "vintage_required": ("The year is empty and no default year was given.", "年份为空且未指定默认年份。"),
    "vintage_invalid": ("The year must be between 1980 and 2200.", "年份必须在1980至2200之间。"),
    "parent_not_found": ("No division of the level above has this parent code.", "找不到该上级代码对应的上级区划。"),
    "parent_invalid": ("The parent row has errors.", "上级区划所在行有错误。"),
    "duplicate_row": ("The same division appears on an earlier row.", "与前面的行重复。"),
    "nul_byte": ("NUL bytes are not allowed.", "不允许包含空字符。"),
}

# --- header and value vocabularies ----------------------------------------------------------------------

COLUMNS: dict[str, set[str]] = {
    "code": {"code", "代码", "区划代码", "编码", "统计用区划代码"},
    "name": {"name", "名称", "区划名称", "名字"},
    "level": {"level", "级别", "层级", "区划级别"},
    "parent_code": {"parent_code", "parent", "上级代码", "上级区划代码", "父级代码"},
    "community_type": {"community_type", "type", "社区类型", "类型", "示范类型"},
    "vintage": {"vintage", "year", "年份", "年度", "代码年份"},
}
REQUIRED = ("code", "name", "level", "parent_code")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


def _key(value: str) -> str:
    """Header/vocabulary key: NFKC, lower case, no spaces or invisible characters."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value).translate(_INVISIBLE)).lower()


def _vocabulary(groups: dict[Any, tuple[str, ...]]) -> dict[str, Any]:
    return {_key(word): value for value, words in groups.items() for word in (*words, str(value))}


LEVELS: dict[str, Level] = _vocabulary({
    Level.city: ("市", "城市", "地级市"),
    Level.district: ("county", "区", "县", "区县", "县区", "县级市", "区(县)", "县(市、区)"),
    Level.street: ("township", "town", "街道", "乡镇", "镇", "乡", "街道(乡镇)"),
    Level.community: ("village", "社区", "村", "居委会", "村委会", "社区(村)"),
    Level.grid: ("网格",),
})
COMMUNITY_TYPES: dict[str, CommunityType] = _vocabulary({
    CommunityType.gated: ("封闭小区", "封闭式小区"),
    CommunityType.mixed: ("杂居小区", "混居小区"),
    CommunityType.market: ("商(市)场", "商市场", "商场", "市场"),
    CommunityType.urban_village: ("城中村",),
    CommunityType.fringe: ("城乡接合部", "城乡结合部"),
})
_VINTAGE = re.compile(r"([0-9]{4})(?:年)?")


# --- checking rows --------------------------------------------------------------------------------------

@dataclass
class Row:
    number: int
    values: dict[str, str]
    level: Level | None = None
    code: str = ""
    name: str = ""
    parent_code: str = ""
    community_type: CommunityType | None = None
    vintage: int | None = None
    path: str | None = None
    errors: list[tuple[str, str | None]] = field(default_factory=list)
    existing: Division | None = None
    parent: Division | None = None
    parent_row: Row | None = None
    action: str = ""

    def error(self, code: str, column: str | None) -> None:
        self.errors.append((code, column))


def _header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    aliases = {_key(alias): column for column, names in COLUMNS.items() for alias in names}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    duplicates: list[str] = []
    for index, raw in enumerate(cells):
        column = aliases.get(_key(raw))
        if column is None:
            if raw.strip():
                ignored.append(raw.strip()[:50])
        elif column in positions:
            duplicates.append(column)
        else:
            positions[column] = index
    missing = [c for c in REQUIRED if c not in positions]
    if missing or duplicates:
        raise ImportColumns({"missing": missing, "duplicate": duplicates})
    return positions, ignored


def _find_header(rows: list[tuple[int, list[str]]]) -> tuple[int, dict[str, int], list[str]]:
    """The header is the first row naming the required columns (a title row above it is common)."""
    if not rows:
        raise ImportEmpty()
    for index, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        try:
            positions, ignored = _header(cells)
        except ImportColumns:
            continue
        return index, positions, ignored
    _header(rows[0][1])  # report what the first row lacks
    raise ImportColumns()  # pragma: no cover - _header raised already


def _parse(number: int, cells: list[str], positions: dict[str, int], default_vintage: int | None) -> Row:
    values = {c: (cells[i] if i < len(cells) else "").strip() for c, i in positions.items()}
    row = Row(number, values)
    for column, text in values.items():
        if "\x00" in text:
            row.error("nul_byte", column)
            values[column] = text.replace("\x00", "")
    level_text = values["level"]
    row.level = LEVELS.get(_key(level_text)) if level_text else None
    if row.level is None:
        row.error("level_invalid", "level")
    raw_code = unicodedata.normalize("NFKC", values["code"]).strip()
    if not raw_code:
        row.error("code_required", "code")
    elif row.level is not None:
        row.code = service.normalise_code(row.level, raw_code)
        if service.code_problem(row.level, row.code, None):
            row.error(errors.DivisionCodeInvalid.code, "code")
    row.name = collapse_spaces(values["name"])
    if not row.name:
        row.error("name_required", "name")
    elif len(row.name) > NAME_MAX:
        row.error("name_too_long", "name")
    row.parent_code = unicodedata.normalize("NFKC", values["parent_code"]).strip()
    if row.level is not None and (row.level == Level.city) == bool(row.parent_code):
        row.error(errors.DivisionParentLevel.code, "parent_code")
    type_text = values.get("community_type", "")
    if type_text:
        row.community_type = COMMUNITY_TYPES.get(_key(type_text))
        if row.community_type is None:
            row.error("community_type_invalid", "community_type")
    if row.level is not None and (type_text == "" or row.community_type is not None):
        problem = service.type_problem(row.level, row.community_type)
        if problem is not None:
            row.error(problem.code, "community_type")
    vintage_text = unicodedata.normalize("NFKC", values.get("vintage", ""))
    if vintage_text:
        match = _VINTAGE.fullmatch(vintage_text)
        row.vintage = int(match.group(1)) if match else None
        if row.vintage is None or not 1980 <= row.vintage <= 2200:
            row.error("vintage_invalid", "vintage")
    elif default_vintage is not None:
        row.vintage = default_vintage
    else:
        row.error("vintage_required", "vintage")
    return row


def _db_parents(session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Division]:
    found: dict[tuple[str, str], Division] = {}
    keys = sorted(wanted)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        stmt = (select(Division).where(tuple_(col(Division.level), col(Division.code)).in_(chunk))
                .order_by(col(Division.path)))
        for division in session.execute(stmt).scalars():
            found.setdefault((division.level, division.code), division)
    return found


def _db_by_path(session: Session, paths: list[str]) -> dict[str, Division]:
    found: dict[str, Division] = {}
    for start in range(0, len(paths), CHUNK):
        stmt = select(Division).where(col(Division.path).in_(paths[start:start + CHUNK]))
        found.update((d.path, d) for d in session.execute(stmt).scalars())
    return found


def _resolve(session: Session, rows: list[Row]) -> None:
    """Parents (file first, then database), paths, duplicates, create/update/unchanged."""
    order = {level: i for i, level in enumerate(LEVEL_ORDER)}
    rows.sort(key=lambda r: (order[r.level] if r.level else 99, r.number))
    in_file: dict[tuple[str, str], Row] = {}
    for row in rows:
        if row.level is not None and row.level != Level.grid and row.code:
            in_file.setdefault((row.level.value, row.code), row)
    wanted: set[tuple[str, str]] = set()
    for row in rows:
        above = service.parent_level(row.level) if row.level else None
        if above is not None and row.parent_code and (above.value, row.parent_code) not in in_file:
            wanted.add((above.value, row.parent_code))
    db_parents = _db_parents(session, wanted)
    seen: dict[str, int] = {}
    for row in rows:
        if row.level is None or not row.code or any(c == errors.DivisionCodeInvalid.code for c, _ in row.errors):
            continue
        above = service.parent_level(row.level)
        parent_path = "/"
        if above is not None and row.parent_code:
            parent_row = in_file.get((above.value, row.parent_code))
            if parent_row is not None:
                row.parent_row = parent_row
                if parent_row.errors or parent_row.path is None:
                    row.error("parent_invalid", "parent_code")
                    continue
                parent_path = parent_row.path
            else:
                row.parent = db_parents.get((above.value, row.parent_code))
                if row.parent is None:
                    row.error("parent_not_found", "parent_code")
                    continue
                parent_path = row.parent.path
            problem = service.code_problem(row.level, row.code, row.parent_code)
            if problem is not None:
                row.error(problem.code, "code")
                continue
        elif above is not None:
            continue  # no parent code: already reported
        path = parent_path + row.code + "/"
        if path in seen:
            row.error("duplicate_row", "code")
            continue
        seen[path] = row.number
        row.path = path
    existing = _db_by_path(session, [r.path for r in rows if r.path])
    for row in rows:
        if row.path is None or row.errors:
            continue
        row.existing = existing.get(row.path)
        if row.existing is None:
            row.action = "create"
        elif (row.existing.name, row.existing.community_type, row.existing.vintage) == (
                row.name, row.community_type.value if row.community_type else None, row.vintage):
            row.action = "unchanged"
        else:
            row.action = "update"
        if row.action == "create" and not _parent_active(row):
            row.error(errors.DivisionParentInactive.code, "parent_code")


def _parent_active(row: Row) -> bool:
    if row.parent_row is not None:
        existing = row.parent_row.existing
        return existing is None or existing.active
    return row.parent is None or row.parent.active


# --- the import -----------------------------------------------------------------------------------------

def _message(code: str, lang: str) -> str:
    for error in (errors.DivisionCodeInvalid, errors.DivisionCodeMismatch, errors.DivisionParentLevel,
                  errors.CommunityTypeRequired, errors.CommunityTypeForbidden, errors.DivisionParentInactive):
        if error.code == code:
            return error.zh if lang == "zh" else error.en
    en, zh = ROW_MESSAGES[code]
    return zh if lang == "zh" else en


def import_divisions(session: Session, data: bytes, *, dry_run: bool, default_vintage: int | None = None,
                     lang: str = "en") -> ImportReport:
    table = read_table(data, LIMITS)
    lines = [(n, [text_of(v) for v in cells]) for n, cells in table.rows]
    start, positions, ignored = _find_header(lines)
    if start + 1 >= len(lines):
        raise ImportEmpty()
    rows = [_parse(n, cells, positions, default_vintage) for n, cells in lines[start + 1:]]
    _resolve(session, rows)
    errors = sorted(
        ((row.number, code, column) for row in rows for code, column in row.errors), key=lambda e: e[0]
    )
    report = ImportReport(
        dry_run=dry_run, format=table.format, rows=len(rows),
        created=sum(r.action == "create" for r in rows), updated=sum(r.action == "update" for r in rows),
        unchanged=sum(r.action == "unchanged" for r in rows), ignored_columns=ignored, error_count=len(errors),
        errors=[ImportRowError(row=n, code=c, field=f, message=_message(c, lang))
                for n, c, f in errors[:MAX_REPORTED_ERRORS]],
    )
    if errors:
        raise ImportInvalid(report.model_dump())
    if not dry_run:
        _apply(session, rows)
        audit.record(session, "divisions.import", target_type="divisions",
                     detail={"format": table.format, "rows": report.rows, "created": report.created,
                             "updated": report.updated, "unchanged": report.unchanged})
    return report


def _apply(session: Session, rows: list[Row]) -> None:
    """Write level by level, parents before children. New divisions go in as one bulk INSERT per level (a
    city's table is thousands of rows) with a `divisions.create` audit event each, the same record the ORM
    listener would write; updates go through the ORM, which audits them itself."""
    now = utcnow()
    table = Division.__table__  # type: ignore[attr-defined]
    created: dict[str, tuple[str, str | None]] = {}  # path -> (id, district code)
    for level in LEVEL_ORDER:
        inserts: list[dict[str, Any]] = []
        for row in rows:
            if row.level != level or row.action not in ("create", "update"):
                continue
            assert row.path is not None and row.vintage is not None
            ctype = row.community_type.value if row.community_type else None
            if row.action == "update" and row.existing is not None:
                division = row.existing
                division.name, division.community_type, division.vintage = row.name, ctype, row.vintage
                division.version += 1
                division.updated_at = now
                session.add(division)
                continue
            parent_id, parent_district = _parent_ids(row, created)
            district = row.code if level == Level.district else (None if level == Level.city else parent_district)
            division_id = new_id()
            values = {"id": division_id, "code": row.code, "name": row.name, "level": level.value,
                      "parent_id": parent_id, "path": row.path, "district_code": district, "community_type": ctype,
                      "vintage": row.vintage, "active": True, "created_at": now, "updated_at": now, "version": 1}
            inserts.append(values)
            created[row.path] = (division_id, district)
        with service.db_conflicts(errors.ConcurrentUpdate):
            session.flush()
            if inserts:
                session.execute(insert(table), inserts)
        for values in inserts:
            audit.record(session, "divisions.create", target_type="divisions", target_id=str(values["id"]),
                         fields=[k for k, v in values.items() if v is not None])


def _parent_ids(row: Row, created: dict[str, tuple[str, str | None]]) -> tuple[str | None, str | None]:
    if row.parent_row is not None:
        parent = row.parent_row.existing
        if parent is None:
            return created[row.parent_row.path or ""]
        return parent.id, parent.district_code
    if row.parent is not None:
        return row.parent.id, row.parent.district_code
    return None, None
