"""Reading numbers, dates and JSON out of what clients send, strictly.

- Numbers: ASCII digits only. `str.isdigit()` is true for "²" (which `int()` then refuses: a 500) and `int()`
  reads Arabic-Indic "١٢" or full-width "１２" as 12; Python's and pydantic's `\\d` match those too. A cursor,
  an ID number or a month is written with 0-9, so every pattern in the code spells `[0-9]`.
- Dates: `YYYY-MM-DD` only (`IsoDate`), times ISO 8601 (`IsoDateTime`). Pydantic, left to itself, reads the
  number 0 as 1970-01-01 and a date-time string as a date.
- JSON: nesting is bounded *before* parsing (`check_json_depth`, `loads_json`). The standard library's
  parser recurses, so about a thousand brackets raise RecursionError (a 500); orjson stops at 1024 levels,
  deeper than Python code that walks the result (`json.dumps`, validators) can follow. Nothing we accept
  nests more than a few levels.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from itertools import accumulate
from typing import Annotated, Any

import orjson
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from app.core.errors import Unprocessable

# --- numbers ----------------------------------------------------------------------------------------------

DIGITS = re.compile(r"[0-9]+")


def ascii_int(raw: str, *, max_digits: int = 18) -> int | None:
    """The number written in `raw` with 1 to `max_digits` ASCII digits (no sign, space or underscore);
    None for anything else."""
    if not 0 < len(raw) <= max_digits or not DIGITS.fullmatch(raw):
        return None
    return int(raw)


# --- dates ------------------------------------------------------------------------------------------------

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?")


def iso_date_input(value: Any) -> Any:
    """A date as a client writes it: the text YYYY-MM-DD (a `date` from Python code passes)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("rule.date_format", "Write the date as YYYY-MM-DD, e.g. 2026-05-01")


def iso_datetime_input(value: Any) -> Any:
    """A time as a client writes it: ISO 8601 text, YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM] (a `datetime`
    from Python code passes)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and ISO_DATETIME.fullmatch(value):
        return value
    raise PydanticCustomError("rule.datetime_format",
                              "Write the time in ISO 8601, e.g. 2026-05-01T09:30:00+08:00")


# Query parameters (and any field) typed with these take text only: `?on=0` is a 422, not 1970-01-01.
IsoDate = Annotated[date, BeforeValidator(iso_date_input)]
IsoDateTime = Annotated[datetime, BeforeValidator(iso_datetime_input)]


# --- JSON -------------------------------------------------------------------------------------------------

# Deepest nesting accepted anywhere (a sync push is 5 levels deep, the deepest API body 4).
JSON_MAX_DEPTH = 32


class JsonTooDeep(Unprocessable):
    code = "json_too_deep"
    en = "The JSON is nested too deeply."
    zh = "JSON 嵌套层数过多。"

    def __init__(self) -> None:
        super().__init__({"max_depth": JSON_MAX_DEPTH})


_STEP = [0] * 256
_STEP[ord("[")] = 1
_STEP[ord("]")] = -1
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")  # depth does not depend on the kind of bracket
_PASS_BUDGET = 8  # the passes below read at most this many times the text before the count takes over


def json_depth(data: bytes | str) -> int:
    """How deep the arrays and objects in a JSON text nest (brackets inside strings do not count), read
    without parsing, at C speed (~5 ms a MB). Exact for valid JSON. For invalid JSON it is at least as deep
    as a parser gets before it fails: up to the first error, a parser reads strings and escapes as this does."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if b"\\" in raw:  # escapes first: \\ is a backslash, \" a quote inside a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # A string with no bracket in it is two quotes now: dropping a pair of adjacent quotes leaves every other
    # bracket on its side of the quotes, and leaves few strings for the split.
    structure = raw.translate(_SQUARE, _NOT_STRUCTURE).replace(b'""', b"")
    outside_strings = b"".join(structure.split(b'"')[::2]) if b'"' in structure else structure
    # Innermost pairs ("[]") removed a level a pass, in C: a pair goes in the pass of its height, so a balanced
    # text empties after as many passes as it is deep. One that does not (unbalanced, or deep in a long text) is
    # counted bracket by bracket, which is exact for any text but runs in Python: ~8 times slower than a pass.
    left, budget, passes = outside_strings, _PASS_BUDGET * len(outside_strings), 0
    while left and budget > 0:
        shorter = left.replace(b"[]", b"")
        if len(shorter) == len(left):
            break
        budget -= len(left)
        left, passes = shorter, passes + 1
    if not left:
        return passes
    return max(accumulate(map(_STEP.__getitem__, outside_strings)), default=0)


def check_json_depth(data: bytes | str, limit: int = JSON_MAX_DEPTH) -> None:
    """Raise `JsonTooDeep` (422 `json_too_deep`) when the text nests deeper than `limit`."""
    opening = data.count("[") + data.count("{") if isinstance(data, str) else data.count(b"[") + data.count(b"{")
    if opening > limit and json_depth(data) > limit:  # few brackets in all: no need to look closer
        raise JsonTooDeep()


def loads_json(data: bytes | str) -> Any:
    """Parse JSON text whose depth was checked first; strict (orjson: no NaN, valid UTF-8). Raises
    `JsonTooDeep`, or `ValueError` for text that is not JSON."""
    check_json_depth(data)
    return orjson.loads(data)


__all__ = ["JSON_MAX_DEPTH", "IsoDate", "IsoDateTime", "JsonTooDeep", "ascii_int", "check_json_depth",
           "iso_date_input", "iso_datetime_input", "json_depth", "loads_json"]
