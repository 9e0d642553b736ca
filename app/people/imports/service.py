"""Bulk import of residents from an office's register (XLSX or CSV): a dry run reports every row's errors,
a commit writes every row or none. Reading files (formats, encodings, size limits) is in app/core/tabular.py.

Rows: the header row names the columns (Chinese as in the template, or the API's English field names;
spaces, full-width forms and a trailing "*" are ignored; unknown columns are ignored and listed by letter).
The dwelling is named either by 住所编号 (the dwelling id shown in the app and in the template's 住所清单
sheet) or by 社区代码 (12-digit community code) + 住所地址 (the address as registered in that community,
spaces and full-width forms ignored); when both are given they must agree.

Every row is checked with the rules of POST /residents (ResidentCreate's limits; ID format, birth date,
check character, sex and birth-date agreement; mobile number; dates; the dwelling within the caller's
scope; one person, one record) plus duplicates within the file, and every failure of every row is
reported as {row, column, field, code, message}. Unlike POST, an ID held by another community (registered
there, or left from there) is only reported (`resident_registered_elsewhere`): an import never opens
transfer requests. A person who left the caller's own area and is listed again is registered again on the
old record, as POST does (`to_reregister`), when the name matches the record (else
`resident_identity_mismatch`).

Commit: new people get the rows `service.create_resident` writes (resident + tenancy, key-person flag,
likely-duplicate flags), inserted 1,000 at a time with bulk statements, which record the same per-row
audit events the ORM listener would (`residents.create`, `tenancies.create`: ids and field names);
returning people go through `service.create_resident` itself. One `resident.import` event carries the
counts. A dry run writes no data, only its own
`resident.import.dry_run` audit event (it looks ID numbers up city-wide, as POST does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any, cast

from pydantic import Field, ValidationError
from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.core.bulk import table_of
from app.core.errors import AppError, Conflict, Unprocessable
from app.core.schemas import OutputModel
from app.core.tabular import FileTable, ImportEmpty, Limits, read_table, text_of
from app.core.types import city_today, new_id, utcnow
from app.ledger import audit, changes
from app.people import rules
from app.people.models import MaritalStatus, Resident, ResidentStatus, Tenancy
from app.people.register import service
from app.people.register.schemas import ResidentCreate
from app.places.models import Division, Dwelling, Level

IMPORT_MAX_ROWS = 20_000
IMPORT_MAX_BYTES = 8 * 1024 * 1024
LIMITS = Limits(max_bytes=IMPORT_MAX_BYTES, max_rows=IMPORT_MAX_ROWS)
MAX_LISTED_ERRORS = 50_000
CHUNK = 500
FLUSH_EVERY = 1000


# --- errors -----------------------------------------------------------------------------------------------

class ImportColumns(Unprocessable):
    code = "import_columns"
    en = "The header row lacks required columns or repeats one; use the template's headers."
    zh = "表头缺少必填列或有重复列，请使用模板的表头。"


class ImportInvalid(Unprocessable):
    code = "import_invalid"
    en = "Some rows are not valid; nothing was imported. details.errors lists every row's errors."
    zh = "部分行无效，未导入任何数据。details.errors 列出了每一行的错误。"
    audit_outcome = "invalid"


class ImportConflict(Conflict):
    code = "import_conflict"
    en = "Someone registered one of these people while the import ran; nothing was imported. Try again."
    zh = "导入期间有人登记了其中的人员，未导入任何数据，请重试。"


# --- columns ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str  # ResidentCreate field (or an import-only key)
    header: str  # the template's Chinese header
    required: str  # "是", "否" or a condition, for the 说明 sheet
    note: str
    example: str
    aliases: tuple[str, ...] = ()
    width: int = 14
    as_text: bool = False  # formatted as text in the template (IDs, codes, phone numbers)


COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", "是", "最多 50 个字符", "张丽", ("名字",), 10),
    Column("id_number", "公民身份号码", "是", "18 位（末位可为 X；15 位旧号码自动升位），须通过校验位检查",
           "411602199003150025", ("身份证号", "身份证号码", "身份号码", "证件号码"), 22, True),
    Column("sex", "性别", "否", "男/女；填写时须与身份号码一致，不填则按身份号码", "女", (), 6),
    Column("birth_date", "出生日期", "否", "如 1990-03-15；填写时须与身份号码一致", "1990-03-15", ("出生年月日",), 12,
           True),
    Column("phone", "手机号码", "否", "11 位手机号，可带 +86、空格或短横线", "13800138000",
           ("手机号", "联系电话", "电话"), 14, True),
    Column("ethnicity", "民族", "否", "如 汉族", "汉族", (), 8),
    Column("hukou_code", "户籍地代码", "是", "户籍地 6 位行政区划代码", "411602", ("户籍地区划代码", "户籍代码"), 12,
           True),
    Column("hukou_address", "户籍地址", "否", "最多 200 个字符", "河南省周口市川汇区某某路1号",
           ("户籍地详址", "户籍详细地址"), 30),
    Column("arrival_date", "到达日期", "是", "来本地居住的日期，如 2026-10-01，不能晚于今天",
           "2026-10-01", ("来本地日期", "到达本地日期"), 12, True),
    Column("marital_status", "婚姻状况", "否", "未婚/已婚/初婚/再婚/离婚/丧偶/不详（或 GB/T 2261.2 代码）", "已婚",
           (), 10),
    Column("employer", "工作单位", "否", "最多 100 个字符", "某某物流有限公司", ("服务处所",), 20),
    Column("occupation", "职业", "否", "最多 50 个字符", "快递员", (), 10),
    Column("residence_permit_no", "居住证号码", "否", "最多 30 个字符", "", ("居住证号",), 16, True),
    Column("dwelling_id", "住所编号", "二选一", "系统中的住所编号（见“住所清单”）；填写后可不填社区代码和住所地址",
           "", ("房屋编号",), 34, True),
    Column("community_code", "社区代码", "二选一", "12 位社区（村）代码，与“住所地址”一起确定住所", "410105001001",
           ("社区（村）代码", "所属社区代码"), 16, True),
    Column("dwelling_address", "住所地址", "二选一", "该社区登记的住所地址，须与系统中一致（忽略空格与全角）",
           "经三路12号1号楼01室", ("现住址", "居住地址", "房屋地址"), 28),
    Column("accept_unverified_id", "身份号码未核验", "否",
           "填“是”：督导确认将校验位错误的身份号码登记为“身份未核验”（仅督导、管理员导入时有效）", "", (), 14),
)
BY_KEY = {c.key: c for c in COLUMNS}
REQUIRED = ("name", "id_number", "hukou_code", "arrival_date")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


def _norm(value: str) -> str:
    """Header / vocabulary / address key: NFKC, no spaces or invisible characters, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value).translate(_INVISIBLE)).lower()


_HEADER_KEYS = {_norm(name): c.key for c in COLUMNS for name in (c.header, c.key, *c.aliases)}
SEXES = {_norm(k): v for k, v in {"男": "M", "女": "F", "男性": "M", "女性": "F", "m": "M", "f": "F", "1": "M",
                                   "2": "F", "male": "M", "female": "F"}.items()}
MARITAL = {_norm(k): v.value for k, v in {
    "未婚": MaritalStatus.unmarried, "10": MaritalStatus.unmarried, "已婚": MaritalStatus.married,
    "20": MaritalStatus.married, "初婚": MaritalStatus.married, "21": MaritalStatus.married,
    "再婚": MaritalStatus.married, "22": MaritalStatus.married, "复婚": MaritalStatus.married,
    "23": MaritalStatus.married, "有配偶": MaritalStatus.married, "丧偶": MaritalStatus.widowed,
    "30": MaritalStatus.widowed, "离婚": MaritalStatus.divorced, "40": MaritalStatus.divorced,
    "不详": MaritalStatus.unknown, "未说明": MaritalStatus.unknown, "90": MaritalStatus.unknown,
    **{m.value: m for m in MaritalStatus},
}.items()}
YES = {_norm(v) for v in ("是", "y", "yes", "true", "1", "✓")}
NO = {_norm(v) for v in ("否", "n", "no", "false", "0", "")}
_DATE = re.compile(r"^([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?(?:[T ]00:00(?::00)?)?$")
_DATE8 = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")

# Row error codes without an AppError of their own: (en, zh).
ROW_MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("This column must be filled.", "此列必填。"),
    "too_long": ("The value is too long.", "内容过长。"),
    "invalid": ("The value is not valid.", "内容无效。"),
    "nul_byte": ("NUL bytes are not allowed.", "不允许包含空字符。"),
    "date_format": ("Write dates as YYYY-MM-DD.", "日期格式应为 YYYY-MM-DD。"),
    "sex_format": ("Write 男 or 女.", "请填写“男”或“女”。"),
    "marital_status_format": ("Unknown marital status.", "婚姻状况无法识别。"),
    "yes_no_format": ("Write 是 or 否.", "请填写“是”或“否”。"),
    "hukou_code_format": ("The 户籍地 code has 6 digits.", "户籍地代码应为 6 位数字。"),
    "hukou_code_province": ("The 户籍地 code's first two digits name no province (GB/T 2260).",
                            "户籍地代码前两位不是有效的省级行政区划代码（GB/T 2260）。"),
    "supervisor_only": ("Only a supervisor or admin can register an unverified ID.",
                        "只有督导或管理员可以登记未核验的身份号码。"),
    "id_number_as_number": ("Excel stored this ID as a number and dropped its last digits; format the column as "
                            "text and type the ID again.",
                            "Excel 将身份号码存成了数字，末几位已丢失；请把该列设为文本格式后重新输入。"),
    "duplicate_in_file": ("The same ID number is on an earlier row.", "与前面某行的身份号码重复。"),
    "dwelling_not_found": ("No such dwelling in your area.", "您的辖区内没有该住所。"),
    "dwelling_ambiguous": ("Several dwellings of the community have this address; use 住所编号.",
                           "该社区有多个住所使用此地址，请填写住所编号。"),
    "dwelling_mismatch": ("住所编号 and 社区代码/住所地址 name different dwellings.",
                          "住所编号与社区代码/住所地址不一致。"),
    "resident_exists": (service.ResidentExists.en, service.ResidentExists.zh),
    "resident_registered_elsewhere": (
        "This person has a record in another community of the city; ask for a transfer (register them "
        "through the form, which sends the request).",
        "此人在本市其他社区已有档案，请通过单个登记发起转移申请。"),
    "resident_identity_mismatch": (
        "The name (or sex and birth date) does not match the record held for this ID number; check the ID card.",
        "姓名（或性别、出生日期）与该身份号码的已有档案不符，请核对身份证。"),
}


def row_message(code: str, lang: str) -> str:
    known = ROW_MESSAGES.get(code)
    if known is None:
        cls = next((c for c in (service.IdFormat, service.IdBirthDate, service.IdCheckDigit, service.IdProvinceUnknown,
                                service.IdSexMismatch,
                                service.IdBirthDateMismatch, service.PhoneFormat, service.DateOutOfRange)
                    if c.code == code), None)
        known = (cls.en, cls.zh) if cls else ROW_MESSAGES["invalid"]
    return known[1] if lang == "zh" else known[0]


# --- report shapes ----------------------------------------------------------------------------------------

class ImportRowError(OutputModel):
    row: int = Field(description="Row number as the spreadsheet shows it (the header is row 1)")
    column: str | None = Field(description="The template's column header")
    field: str | None = Field(description="The API field name")
    code: str
    message: str


class ImportReport(OutputModel):
    dry_run: bool
    format: str = Field(description="xlsx or csv")
    encoding: str | None = Field(description="CSV only: utf-8 or gb18030")
    rows: int = Field(description="Data rows read (blank rows skipped)")
    valid_rows: int
    error_rows: int
    error_count: int = Field(description=f"All errors found (the list is capped at {MAX_LISTED_ERRORS:,})")
    to_create: int = Field(description="New people (dry run: would be created)")
    to_reregister: int = Field(description="People who had left and are registered again")
    created: int
    reregistered: int
    ignored_columns: list[str]
    errors: list[ImportRowError]


def _header(cells: list[Any]) -> tuple[dict[str, int], list[str]]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    duplicates: list[str] = []
    for index, raw in enumerate(cells):
        text = text_of(raw)
        key = _HEADER_KEYS.get(_norm(text).rstrip("*").removesuffix("（必填）").removesuffix("(必填)"))
        if key is None:
            if text:
                ignored.append(_column_letter(index))
        elif key in positions:
            duplicates.append(BY_KEY[key].header)
        else:
            positions[key] = index
    missing = [BY_KEY[k].header for k in REQUIRED if k not in positions]
    if "dwelling_id" not in positions and not {"community_code", "dwelling_address"} <= positions.keys():
        missing.append("住所编号 / 社区代码+住所地址")
    if missing or duplicates:
        raise ImportColumns({"missing": missing, "duplicate": duplicates})
    return positions, ignored


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# --- checking rows ----------------------------------------------------------------------------------------

@dataclass
class Row:
    number: int
    values: dict[str, str]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field key, code)
    body: ResidentCreate | None = None
    id_number: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    verified: bool = True
    phone: str | None = None
    dwelling: Dwelling | None = None
    returning: bool = False

    def error(self, key: str, code: str) -> None:
        self.errors.append((key, code))


def _date(row: Row, key: str) -> date | None:
    text = row.values.get(key, "")
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)  # full-width digits become 0-9; other scripts' digits stay refused
    match = _DATE.match(text) or _DATE8.match(text)
    try:
        if match is None:
            raise ValueError
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        row.error(key, "date_format")
        return None


PYDANTIC_CODES = {"missing": "required", "string_too_short": "required", "string_too_long": "too_long",
                  "rule.nul_byte": "nul_byte"}


def _check_row(actor: Actor, number: int, cells: list[Any], positions: dict[str, int]) -> Row:
    values = {k: text_of(cells[i]) if i < len(cells) else "" for k, i in positions.items()}
    row = Row(number, values)
    for key, text in values.items():
        if "\x00" in text:  # reported, and never sent to the database (PostgreSQL refuses NUL in text)
            row.error(key, "nul_byte")
            values[key] = text.replace("\x00", "")
    birth = _date(row, "birth_date")
    arrival = _date(row, "arrival_date")
    sex_text = values.get("sex", "")
    sex = SEXES.get(_norm(sex_text)) if sex_text else None
    if sex_text and sex is None:
        row.error("sex", "sex_format")
    marital_text = values.get("marital_status", "")
    marital = MARITAL.get(_norm(marital_text)) if marital_text else MaritalStatus.unknown.value
    if marital is None:
        row.error("marital_status", "marital_status_format")
    accept = _norm(values.get("accept_unverified_id", ""))
    if accept not in YES and accept not in NO:
        row.error("accept_unverified_id", "yes_no_format")
    fields: dict[str, Any] = {k: values.get(k) or None for k in (
        "name", "id_number", "phone", "ethnicity", "hukou_code", "hukou_address", "employer", "occupation",
        "residence_permit_no")}
    fields.update(sex=sex, birth_date=birth, arrival_date=arrival, dwelling_id="-",
                  marital_status=marital or MaritalStatus.unknown.value, accept_unverified_id=accept in YES)
    if arrival is None and "arrival_date" not in {k for k, _ in row.errors}:
        row.error("arrival_date", "required")
    try:
        row.body = ResidentCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err.get("loc") else "name"
            if key == "arrival_date" and arrival is None:
                continue  # already reported
            code = PYDANTIC_CODES.get(err["type"], "invalid")
            if key == "id_number":
                code = "required" if not values.get("id_number") else service.IdFormat.code
            elif key == "hukou_code" and err["type"] == "rule.division_province_unknown":
                code = "hukou_code_province"
            elif key == "hukou_code" and code == "invalid":
                code = "hukou_code_format"
            row.error(key, code)
    raw_id = cells[positions["id_number"]] if positions["id_number"] < len(cells) else None
    if isinstance(raw_id, float) and raw_id >= 1e15:
        # Excel keeps 15 significant digits of a number: an 18-digit ID typed as a number has lost its tail
        # (and could even pass the check by chance). Only a text cell is trusted.
        row.error("id_number", "id_number_as_number")
    elif values.get("id_number"):
        _check_identity(actor, row, sex, birth, accept in YES)
    if values.get("phone"):
        try:
            row.phone = service.normalise_phone(values["phone"])
        except AppError as exc:
            row.error("phone", exc.code)
    for key, day in (("arrival_date", arrival), ("birth_date", birth)):
        try:
            service.check_dates(day)
        except AppError as exc:
            row.error(key, exc.code)
    if not values.get("dwelling_id"):
        for key in ("community_code", "dwelling_address"):
            if not values.get(key):
                row.error(key, "required")
    return row


def _check_identity(actor: Actor, row: Row, sex: str | None, birth: date | None, accept: bool) -> None:
    """service.check_identity's rules, every failure reported (not only the first)."""
    try:
        parsed = service.parse_id_number(row.values["id_number"])
    except AppError as exc:
        row.error("id_number", exc.code)
        return
    row.id_number, row.sex, row.birth_date, row.verified = parsed.number, parsed.sex, parsed.birth_date, True
    if sex is not None and sex != parsed.sex:
        row.error("sex", service.IdSexMismatch.code)
    if birth is not None and birth != parsed.birth_date:
        row.error("birth_date", service.IdBirthDateMismatch.code)
    if not parsed.verified:
        if not accept:
            row.error("id_number", service.unverified_error(parsed).code)
        elif actor.role not in (Role.supervisor, Role.admin):
            row.error("accept_unverified_id", "supervisor_only")
        row.verified = False


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _resolve_dwellings(session: Session, actor: Actor, rows: list[Row]) -> None:
    by_id: dict[str, Dwelling] = {}
    ids = sorted({r.values["dwelling_id"] for r in rows if r.values.get("dwelling_id")})
    for chunk in _chunks(ids):
        stmt = select(Dwelling).where(col(Dwelling.id).in_(chunk), col(Dwelling.active),
                                      actor.area_filter(Dwelling.area_path))
        by_id.update((d.id, d) for d in session.execute(stmt).scalars())
    codes = sorted({_norm(r.values["community_code"]) for r in rows if r.values.get("community_code")})
    communities: dict[str, list[str]] = {}  # code -> community ids
    community_codes: dict[str, str] = {}  # community id -> code
    for chunk in _chunks(codes):
        by_code = select(col(Division.id), col(Division.code)).where(
            col(Division.code).in_(chunk), col(Division.level) == Level.community.value, col(Division.active))
        for division_id, code in session.execute(by_code).all():
            communities.setdefault(code, []).append(division_id)
            community_codes[division_id] = code
    by_address: dict[tuple[str, str], list[Dwelling]] = {}
    for chunk in _chunks(sorted(community_codes)):
        stmt = select(Dwelling).where(col(Dwelling.community_id).in_(chunk), col(Dwelling.active),
                                      actor.area_filter(Dwelling.area_path))
        for d in session.execute(stmt).scalars():
            by_address.setdefault((d.community_id, _norm(d.address)), []).append(d)
    dwelling_codes = {d.community_id for d in by_id.values()} - community_codes.keys()
    for chunk in _chunks(sorted(dwelling_codes)):
        named = select(col(Division.id), col(Division.code)).where(col(Division.id).in_(chunk))
        community_codes.update((i, c) for i, c in session.execute(named).all())
    for row in rows:
        given_id = row.values.get("dwelling_id", "")
        code = _norm(row.values.get("community_code", ""))
        address = _norm(row.values.get("dwelling_address", ""))
        if given_id:
            row.dwelling = by_id.get(given_id)
            if row.dwelling is None:
                row.error("dwelling_id", "dwelling_not_found")
            elif (code and community_codes.get(row.dwelling.community_id) != code) or (
                    address and _norm(row.dwelling.address) != address):
                row.error("dwelling_id", "dwelling_mismatch")
        elif code and address:
            found = [d for cid in communities.get(code, []) for d in by_address.get((cid, address), [])]
            if len(found) == 1:
                row.dwelling = found[0]
            else:
                row.error("dwelling_address", "dwelling_ambiguous" if found else "dwelling_not_found")


def _check_people(session: Session, actor: Actor, rows: list[Row]) -> None:
    """One person, one record: duplicates in the file, and IDs the city already holds (as POST decides)."""
    first_row: dict[str, int] = {}
    for row in rows:
        if row.id_number is None:
            continue
        if row.id_number in first_row:
            row.error("id_number", "duplicate_in_file")
        else:
            first_row[row.id_number] = row.number
    existing: dict[str, Resident] = {}
    for chunk in _chunks(sorted(first_row)):
        stmt = select(Resident).where(col(Resident.id_number).in_(chunk))
        existing.update((r.id_number, r) for r in session.execute(stmt).scalars() if r.id_number)
    for row in rows:
        found = existing.get(row.id_number or "")
        if found is None:
            continue
        holder = _survivor(session, found)
        here = actor.sees_path(holder.area_path)
        if holder.status == ResidentStatus.registered.value:
            row.error("id_number", "resident_exists" if here else "resident_registered_elsewhere")
        elif holder.merged_into_id is not None or holder.anonymised_at is not None:
            row.error("id_number", "resident_exists")
        elif not here:
            # Left from another area: only the holding community hands the record over (POST asks it).
            row.error("id_number", "resident_registered_elsewhere")
        elif row.body is not None and not rules.same_name(holder.name, row.body.name):
            row.error("name", "resident_identity_mismatch")
        elif (holder.sex, holder.birth_date) != (row.sex, row.birth_date):
            row.error("id_number", "resident_identity_mismatch")
        else:
            row.returning = True


def _survivor(session: Session, resident: Resident) -> Resident:
    """A merged record's person lives on in the record it was merged into (as service.create_resident sees it)."""
    seen = {resident.id}
    while resident.merged_into_id is not None and resident.merged_into_id not in seen:
        survivor = session.get(Resident, resident.merged_into_id)
        if survivor is None:
            break
        seen.add(survivor.id)
        resident = survivor
    return resident


# --- the import -------------------------------------------------------------------------------------------

def import_residents(session: Session, actor: Actor, data: bytes, *, dry_run: bool, lang: str) -> ImportReport:
    table = read_table(data, LIMITS)
    if len(table.rows) < 2:
        raise ImportEmpty()
    positions, ignored = _header(table.rows[0][1])
    rows = [_check_row(actor, number, cells, positions) for number, cells in table.rows[1:]]
    _resolve_dwellings(session, actor, rows)
    _check_people(session, actor, rows)
    report = _report(table, rows, ignored, dry_run, lang)
    counts = {"rows": report.rows, "errors": report.error_count, "to_create": report.to_create,
              "to_reregister": report.to_reregister, "format": table.format}
    if dry_run:
        audit.record(session, "resident.import.dry_run", target_type="residents", detail=counts,
                     purpose="bulk_import")
        return report
    if report.error_rows:
        raise ImportInvalid(report.model_dump(mode="json"))
    report.created, report.reregistered = _commit(session, actor, rows, lang, report)
    audit.record(session, "resident.import", target_type="residents",
                 detail={**counts, "created": report.created, "reregistered": report.reregistered},
                 purpose="bulk_import")
    return report


def _report(table: FileTable, rows: list[Row], ignored: list[str], dry_run: bool, lang: str) -> ImportReport:
    errors: list[ImportRowError] = []
    count = 0
    for row in sorted(rows, key=lambda r: r.number):
        seen: set[tuple[str, str]] = set()
        for key, code in row.errors:
            if (key, code) in seen:
                continue
            seen.add((key, code))
            count += 1
            if len(errors) < MAX_LISTED_ERRORS:
                column = BY_KEY.get(key)
                errors.append(ImportRowError(row=row.number, column=column.header if column else None,
                                             field=key, code=code, message=row_message(code, lang)))
    bad = sum(1 for r in rows if r.errors)
    good = [r for r in rows if not r.errors]
    return ImportReport(
        dry_run=dry_run, format=table.format, encoding=table.encoding, rows=len(rows), valid_rows=len(good),
        error_rows=bad, error_count=count, to_create=sum(1 for r in good if not r.returning),
        to_reregister=sum(1 for r in good if r.returning), created=0, reregistered=0, ignored_columns=ignored,
        errors=errors)


def _commit(session: Session, actor: Actor, rows: list[Row], lang: str, report: ImportReport) -> tuple[int, int]:
    """Write every row (the caller has checked there are no errors); any late failure undoes everything."""
    fresh = [_resident_values(actor, row) for row in rows if not row.returning]
    residents, tenancies = table_of(Resident), table_of(Tenancy)
    try:
        for start in range(0, len(fresh), FLUSH_EVERY):
            chunk = fresh[start:start + FLUSH_EVERY]
            session.execute(residents.insert(), [values for values, _ in chunk])
            session.execute(tenancies.insert(), [tenancy for _, tenancy in chunk])
            changes.mark_rows(session, residents, residents.c.id.in_([values["id"] for values, _ in chunk]))
    except IntegrityError:
        raise ImportConflict() from None
    # Bulk statements bypass the automatic write audit: record the same events it would (ids, field names).
    for values, tenancy in fresh:
        for table, row_values in (("residents", values), ("tenancies", tenancy)):
            audit.record(session, f"{table}.create", target_type=table, target_id=row_values["id"],
                         fields=[k for k, v in row_values.items() if v is not None])
    _flag_duplicates(session, [values for values, _ in fresh])
    late: list[tuple[Row, AppError]] = []
    for row in rows:
        if row.returning:
            assert row.body is not None and row.dwelling is not None
            try:
                # An imported register is existing stock, not new arrivals: no new-arrival visit tasks.
                service.create_resident(session, actor, row.body.model_copy(update={"dwelling_id": row.dwelling.id}),
                                        arrival_task=False)
            except AppError as exc:  # the record changed since the check; report it like any row error
                late.append((row, exc))
    if late:
        for row, error in late:
            row.error("id_number", error.code)
        failed = _report(FileTable(report.format, report.encoding, []), rows, report.ignored_columns, False, lang)
        raise ImportInvalid(failed.model_dump(mode="json"))
    return len(fresh), sum(1 for r in rows if r.returning)


def _resident_values(actor: Actor, row: Row) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resident and tenancy rows service.create_resident writes for a new person (its checks passed),
    with the model's defaults for every other column. Built as plain rows: constructing 20,000 ORM objects
    costs far more than the insert itself."""
    body, dwelling = row.body, row.dwelling
    assert body is not None and dwelling is not None and row.id_number and row.sex and row.birth_date
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(), "community_id": dwelling.community_id, "dwelling_id": dwelling.id,
        "area_path": dwelling.area_path, "district_code": dwelling.district_code, "name": body.name, "sex": row.sex,
        "birth_date": row.birth_date, "id_number": row.id_number, "id_verified": row.verified,
        "id_accepted_by": None if row.verified else actor.user_id, "phone": row.phone, "ethnicity": body.ethnicity,
        "hukou_code": body.hukou_code, "hukou_address": body.hukou_address, "arrival_date": body.arrival_date,
        "marital_status": body.marital_status.value, "employer": body.employer, "occupation": body.occupation,
        "residence_permit_no": body.residence_permit_no, "status": ResidentStatus.registered.value,
        "left_on": None, "left_reason": None, "key_person": False, "merged_into_id": None, "anonymised_at": None,
        "created_by": actor.user_id, "created_at": now, "updated_at": now, "version": 1,
    }
    # A new person has no health record and no 婚育证明 yet: refresh_key_person's inputs are known.
    values["key_person"] = service.is_key_person(cast(Any, SimpleNamespace(**values)), None, [], city_today())
    tenancy = {"id": new_id(), "resident_id": values["id"], "dwelling_id": dwelling.id,
               "area_path": dwelling.area_path, "district_code": dwelling.district_code,
               "move_in": body.arrival_date, "move_out": None, "source": body.source.value, "created_at": now}
    return values, tenancy


def _flag_duplicates(session: Session, fresh: list[dict[str, Any]]) -> None:
    """service.flag_likely_duplicates for every new person who could have a twin (same name, birth date and
    phone): one batched lookup finds the candidates, the service decides and writes the flags."""
    keys = sorted({(r["name"], r["birth_date"]) for r in fresh if r["phone"] is not None})
    counts: dict[tuple[str, date, str], int] = {}
    for chunk in _chunks(keys):
        stmt = select(col(Resident.name), col(Resident.birth_date), col(Resident.phone)).where(
            tuple_(col(Resident.name), col(Resident.birth_date)).in_(chunk), col(Resident.phone).is_not(None))
        for name, born, phone in session.execute(stmt).all():
            counts[(name, born, phone)] = counts.get((name, born, phone), 0) + 1
    for values in fresh:
        if values["phone"] is not None and counts.get((values["name"], values["birth_date"], values["phone"]), 0) > 1:
            resident = session.get(Resident, values["id"])
            if resident is not None:
                service.flag_likely_duplicates(session, resident)
