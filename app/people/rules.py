"""Identity rules: resident ID numbers (GB 11643-1999), mobile numbers, masking, province codes (GB/T 2260).

Each failure names its rule with a stable code (used as the API error code).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

from app.core.types import city_today

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
ID15 = re.compile(r"^[0-9]{15}$")
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
# What `normalise_mobile` accepts, for the published schema (ASCII digits; separators anywhere; empty: no filter).
_SEP = r"[\s().-]*"
MOBILE_INPUT = (f"^$|^{_SEP}(?:(?:\\+{_SEP}8{_SEP}6|0{_SEP}0{_SEP}8{_SEP}6){_SEP})?"
                f"1{_SEP}[3-9](?:{_SEP}[0-9]){{9}}{_SEP}$")
PHONE_SEPARATORS = re.compile(r"[\s\-().]")
# Spaces and the separators written inside names (阿依古丽·买买提, 阿依古丽•买买提, 阿依古丽.买买提 are one name).
NAME_NOISE = re.compile(r"[\s\u00b7\u2022\u2027\u30fb\u2219.\-]")


class RuleError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedId:
    number: str  # 18 characters, upper-case X
    address_code: str
    birth_date: date
    sex: str  # "M" or "F"
    check_ok: bool
    province_ok: bool = True  # the first two digits name a province (GB/T 2260)

    @property
    def verified(self) -> bool:
        """Both checks a supervisor can override ("ID unverified") passed."""
        return self.check_ok and self.province_ok


@lru_cache(maxsize=1)
def provinces() -> dict[str, str]:
    """Province-level codes of GB/T 2260 (the first two digits of every division code) and their names, kept
    as data (provinces.csv). Only this level is checked: codes below it are re-issued over the years, and an
    old one on an old ID card is legitimate."""
    text = resources.files("app.people").joinpath("provinces.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return {row["code"]: row["name"] for row in rows}


def province_pattern() -> str:
    """A 6-digit division code whose first two digits name a province, as a regular expression."""
    return f"^(?:{'|'.join(sorted(provinces()))})[0-9]{{4}}$"


def province_known(code: str) -> bool:
    """Whether a division code (or an ID number) starts with a province-level code."""
    return code[:2] in provinces()


def normalise_digits(raw: str) -> str:
    """NFKC, so full-width input (an IME in full-width mode: １３８…) reads as 0-9; digits of other scripts
    (١٢, ²) stay what they are and fail the [0-9] patterns."""
    return unicodedata.normalize("NFKC", raw).strip()


def check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def upgrade_15(number: str) -> str:
    """Convert a legacy 15-digit ID (YYMMDD, issued before 2000, born 19xx) to 18 digits."""
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_char(first17)


def parse_id(raw: str) -> ParsedId:
    """Normalise and parse an ID number; raises RuleError for format and date problems.

    A wrong check character or an unknown province is *not* raised here (`check_ok`, `province_ok` False):
    the caller decides, because a supervisor may accept such a record as "ID unverified".
    """
    number = normalise_digits(raw).upper()
    if ID15.match(number):
        number = upgrade_15(number)
    if not ID18.match(number):
        raise RuleError("id_format", "An ID number has 18 characters: 17 digits and a digit or X.")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise RuleError("id_birth_date", "The birth date inside the ID number is not a real date.") from None
    if born.year < 1900 or born > city_today():
        raise RuleError("id_birth_date", "The birth date inside the ID number is out of range.")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return ParsedId(number, number[:6], born, sex, check_char(number[:17]) == number[17], province_known(number))


def normalise_mobile(raw: str) -> str:
    """Strip +86 / 0086 and separators; the rest must be a mainland mobile number."""
    digits = PHONE_SEPARATORS.sub("", normalise_digits(raw))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not MOBILE.match(digits):
        raise RuleError("phone_format", "A mobile number has 11 digits starting with 13–19.")
    return digits


def mask_id(number: str | None) -> str | None:
    """4101**********123X: first 4 and last 4 kept."""
    if not number:
        return number
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(number: str | None) -> str | None:
    """138****1234."""
    if not number:
        return number
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def name_key(name: str) -> str:
    """A name as compared with another: NFKC (full-width forms), case-folded, without spaces or separators."""
    return NAME_NOISE.sub("", unicodedata.normalize("NFKC", name)).casefold()


def same_name(a: str | None, b: str | None) -> bool:
    """The same person's name (张 三 = 张三, ＡＢ = ab); a missing name matches nothing."""
    return bool(a and b) and name_key(a or "") == name_key(b or "")


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
