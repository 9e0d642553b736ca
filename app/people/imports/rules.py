"""The rows of a register import: its columns (Chinese headers, aliases), and every row checked with the rules of
POST /residents before anything is written (the database checks are in service.py)."""



from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from app.core.actor import Actor, Role
from app.core.errors import AppError
from app.core.tabular import sheet_date, text_of
from app.people.imports.errors import ImportColumns
from app.people.models import MaritalStatus
from app.people.register import errors as register_errors
from app.people.register import service
from app.people.register.schemas import ResidentCreate
from app.places.models import Dwelling

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


def norm(value: str) -> str:
    """Header / vocabulary / address key: NFKC, no spaces or invisible characters, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value).translate(_INVISIBLE)).lower()


_HEADER_KEYS = {norm(name): c.key for c in COLUMNS for name in (c.header, c.key, *c.aliases)}
SEXES = {norm(k): v for k, v in {"男": "M", "女": "F", "男性": "M", "女性": "F", "m": "M", "f": "F", "1": "M",
                                   "2": "F", "male": "M", "female": "F"}.items()}
MARITAL = {norm(k): v.value for k, v in {
    "未婚": MaritalStatus.unmarried, "10": MaritalStatus.unmarried, "已婚": MaritalStatus.married,
    "20": MaritalStatus.married, "初婚": MaritalStatus.married, "21": MaritalStatus.married,
    "再婚": MaritalStatus.married, "22": MaritalStatus.married, "复婚": MaritalStatus.married,
    "23": MaritalStatus.married, "有配偶": MaritalStatus.married, "丧偶": MaritalStatus.widowed,
    "30": MaritalStatus.widowed, "离婚": MaritalStatus.divorced, "40": MaritalStatus.divorced,
    "不详": MaritalStatus.unknown, "未说明": MaritalStatus.unknown, "90": MaritalStatus.unknown,
    **{m.value: m for m in MaritalStatus},
}.items()}
YES = {norm(v) for v in ("是", "y", "yes", "true", "1", "✓")}
NO = {norm(v) for v in ("否", "n", "no", "false", "0", "")}

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
    "resident_exists": (register_errors.ResidentExists.en, register_errors.ResidentExists.zh),
    "resident_registered_elsewhere": (
        "This person has a record in another community of the city; ask for a transfer (register them "
        "through the form, which sends the request).",
        "此人在本市其他社区已有档案，请通过单个登记发起转移申请。"),
    "resident_identity_mismatch": (
        "The name (or sex and birth date) does not match the record held for this ID number; check the ID card.",
        "姓名（或性别、出生日期）与该身份号码的已有档案不符，请核对身份证。"),
}


# The register's own rules, whose messages a row error reuses.
ROW_RULES = (register_errors.IdFormat, register_errors.IdBirthDate, register_errors.IdCheckDigit,
             register_errors.IdProvinceUnknown, register_errors.IdSexMismatch, register_errors.IdBirthDateMismatch,
             register_errors.PhoneFormat, register_errors.DateOutOfRange)


def row_message(code: str, lang: str) -> str:
    known = ROW_MESSAGES.get(code)
    if known is None:
        cls = next((c for c in ROW_RULES if c.code == code), None)
        known = (cls.en, cls.zh) if cls else ROW_MESSAGES["invalid"]
    return known[1] if lang == "zh" else known[0]


def header(cells: list[Any]) -> tuple[dict[str, int], list[str]]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    duplicates: list[str] = []
    for index, raw in enumerate(cells):
        text = text_of(raw)
        key = _HEADER_KEYS.get(norm(text).rstrip("*").removesuffix("（必填）").removesuffix("(必填)"))
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
    try:
        return sheet_date(text)
    except ValueError:
        row.error(key, "date_format")
        return None


PYDANTIC_CODES = {"missing": "required", "string_too_short": "required", "string_too_long": "too_long",
                  "rule.nul_byte": "nul_byte"}


def check_row(actor: Actor, number: int, cells: list[Any], positions: dict[str, int]) -> Row:
    values = {k: text_of(cells[i]) if i < len(cells) else "" for k, i in positions.items()}
    row = Row(number, values)
    for key, text in values.items():
        if "\x00" in text:  # reported, and never sent to the database (PostgreSQL refuses NUL in text)
            row.error(key, "nul_byte")
            values[key] = text.replace("\x00", "")
    birth = _date(row, "birth_date")
    arrival = _date(row, "arrival_date")
    sex_text = values.get("sex", "")
    sex = SEXES.get(norm(sex_text)) if sex_text else None
    if sex_text and sex is None:
        row.error("sex", "sex_format")
    marital_text = values.get("marital_status", "")
    marital = MARITAL.get(norm(marital_text)) if marital_text else MaritalStatus.unknown.value
    if marital is None:
        row.error("marital_status", "marital_status_format")
    accept = norm(values.get("accept_unverified_id", ""))
    if accept not in YES and accept not in NO:
        row.error("accept_unverified_id", "yes_no_format")
    fields: dict[str, Any] = {k: values.get(k) or None for k in (
        "name", "id_number", "phone", "ethnicity", "hukou_code", "hukou_address", "employer", "occupation",
        "residence_permit_no")}
    fields.update(sex=sex, birth_date=birth, arrival_date=arrival, dwelling_id="-",
                  marital_status=marital or MaritalStatus.unknown.value, accept_unverified_id=accept in YES)
    if arrival is None and "arrival_date" not in {k for k, _ in row.errors}:
        row.error("arrival_date", "required")
    _validate(row, fields, arrival)
    raw_id = cells[positions["id_number"]] if positions["id_number"] < len(cells) else None
    if isinstance(raw_id, float) and raw_id >= 1e15:
        # Excel keeps 15 significant digits of a number: an 18-digit ID typed as a number has lost its tail
        # (and could even pass the check by chance). Only a text cell is trusted.
        row.error("id_number", "id_number_as_number")
    elif values.get("id_number"):
        check_identity(actor, row, sex, birth, accept in YES)
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


def _validate(row: Row, fields: dict[str, Any], arrival: date | None) -> None:
    """The row against POST /residents' body rules: each failure reported with the import's own codes."""
    try:
        row.body = ResidentCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err.get("loc") else "name"
            if key == "arrival_date" and arrival is None:
                continue  # already reported
            code = PYDANTIC_CODES.get(err["type"], "invalid")
            if key == "id_number":
                code = "required" if not row.values.get("id_number") else register_errors.IdFormat.code
            elif key == "hukou_code" and err["type"] == "rule.division_province_unknown":
                code = "hukou_code_province"
            elif key == "hukou_code" and code == "invalid":
                code = "hukou_code_format"
            row.error(key, code)


def check_identity(actor: Actor, row: Row, sex: str | None, birth: date | None, accept: bool) -> None:
    """service.check_identity's rules, every failure reported (not only the first)."""
    try:
        parsed = service.parse_id_number(row.values["id_number"])
    except AppError as exc:
        row.error("id_number", exc.code)
        return
    row.id_number, row.sex, row.birth_date, row.verified = parsed.number, parsed.sex, parsed.birth_date, True
    if sex is not None and sex != parsed.sex:
        row.error("sex", register_errors.IdSexMismatch.code)
    if birth is not None and birth != parsed.birth_date:
        row.error("birth_date", register_errors.IdBirthDateMismatch.code)
    if not parsed.verified:
        if not accept:
            row.error("id_number", service.unverified_error(parsed).code)
        elif actor.role not in (Role.supervisor, Role.admin):
            row.error("accept_unverified_id", "supervisor_only")
        row.verified = False


