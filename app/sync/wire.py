"""The wire shape of synced records: WatermelonDB raw records.

A raw record is a flat JSON object keyed by the model's snake_case column names, `id` being the record id.
Numbers are JSON numbers, dates and datetimes epoch milliseconds (a date is its midnight UTC:
`Date.UTC(y, m - 1, d)`), booleans JSON booleans, everything else strings, absent values null — a string in
a number column would be stored as 0 by WatermelonDB. Internal columns (area paths, district codes, who
accepted an ID) never leave; residents go in the worker's shape and no table carries health data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    Table,
    cast,
    func,
    literal_column,
)
from sqlmodel import Session, SQLModel

from app.catalog.models import ServiceItem
from app.core.types import UTCDateTime
from app.cycle.models import Task
from app.cycle.verification.models import Period, Verification
from app.people.models import FpDocument, Resident
from app.places.models import Division, Dwelling
from app.visits.geo import wgs84_to_gcj02
from app.visits.models import ServiceDelivery, Visit

EPOCH_DAY_MS = 86_400_000
# Pull order: parents before children (WatermelonDB does not care, but humans reading a dump do).
MODELS: dict[str, type[SQLModel]] = {
    "divisions": Division,
    "service_items": ServiceItem,
    "dwellings": Dwelling,
    "residents": Resident,
    "fp_documents": FpDocument,
    "visits": Visit,
    "service_deliveries": ServiceDelivery,
    "tasks": Task,
    "periods": Period,  # from schema version 2
    "verifications": Verification,
}
# The tables a phone of each schema version declares (an older app never receives a table it lacks). Version 3
# adds columns to `verifications` (check-in flags, a partner's proposal): a version-2 phone receives them too and
# WatermelonDB drops the columns its schema lacks. Version 4 adds `tasks.dwelling_id` and lets `tasks.resident_id`
# be null (a reported arrival, docs/sharing.md "Police uploads"): a phone of an older version declares the
# resident as required, so it is never sent a task without one (app/sync/pull.py).
TABLES_OF_VERSION = {1: tuple(MODELS)[:8], 2: tuple(MODELS), 3: tuple(MODELS), 4: tuple(MODELS)}
TASKS_WITHOUT_RESIDENT_SINCE = 4
# Columns that never reach a phone.
INTERNAL = frozenset({"area_path", "district_code"})
# Residents in the worker's shape: as GET /residents/{id} (ResidentOut), nothing more.
RESIDENT_INTERNAL = frozenset({"id_accepted_by", "anonymised_at", "created_by"})


def to_ms(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp() * 1000)


def date_to_ms(value: date) -> int:
    return (value.toordinal() - date(1970, 1, 1).toordinal()) * EPOCH_DAY_MS


def ms_to_date(value: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + value // EPOCH_DAY_MS)


def ms_to_datetime(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _out(column: Column[Any]) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return lambda v: None if v is None else to_ms(v)
    if isinstance(kind, Date):
        return lambda v: None if v is None else date_to_ms(v)
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else bool(v)
    return None


class WireError(ValueError):
    """A raw value of the wrong type for its column (the field is named, never the value)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _number(name: str, v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise WireError(name)
    return v


def _in(column: Column[Any]) -> Callable[[Any], Any]:
    """The converter of one column's pushed values (None passes), chosen once per column: a push converts
    tens of thousands of values."""
    kind, name = column.type, column.name

    def moment(v: Any) -> Any:
        try:
            return None if v is None else ms_to_datetime(int(_number(name, v)))
        except (OverflowError, OSError, ValueError):  # beyond the calendar (WireError is a ValueError)
            raise WireError(name) from None

    def day(v: Any) -> Any:
        try:
            return None if v is None else ms_to_date(int(_number(name, v)))
        except (OverflowError, OSError, ValueError):
            raise WireError(name) from None

    def flag(v: Any) -> Any:
        if v is not None and not isinstance(v, bool):
            raise WireError(name)
        return v

    def whole(v: Any) -> Any:
        if v is None:
            return None
        n = _number(name, v)
        if isinstance(n, float) and not n.is_integer():  # also NaN and ±inf
            raise WireError(name)
        return int(n)

    def real(v: Any) -> Any:
        if v is None:
            return None
        try:
            n = float(_number(name, v))
        except OverflowError:
            raise WireError(name) from None
        if not math.isfinite(n):
            raise WireError(name)
        return n

    def text(v: Any) -> Any:
        if v is not None and not isinstance(v, str):
            raise WireError(name)
        return v

    if isinstance(kind, UTCDateTime):
        return moment
    if isinstance(kind, Date):
        return day
    if isinstance(kind, Boolean):
        return flag
    if isinstance(kind, Integer):
        return whole
    if isinstance(kind, Float):
        return real
    return text


@dataclass(frozen=True)
class Shape:
    table: str
    columns: tuple[Column[Any], ...]
    out: tuple[Callable[[Any], Any] | None, ...]
    into: dict[str, Callable[[Any], Any]]  # column name → converter of pushed values (`from_raw`)
    names: tuple[str, ...]  # of `columns`, kept: a first pull builds a hundred thousand records with them
    flags: tuple[str, ...]  # the boolean columns (SQLite's driver gives them as 0/1)

    def raw(self, row: Sequence[Any]) -> dict[str, Any]:
        """A selected row (in `columns` order) → raw record."""
        record = {c.name: (v if f is None else f(v)) for c, f, v in zip(self.columns, self.out, row, strict=True)}
        if self.table == "visits":
            _phone_datum(record)
        return record


    def select_list(self, dialect: str) -> list[Any]:
        """The columns to SELECT for `record()`: times and dates come out of the database already as epoch
        milliseconds (a first pull converts hundreds of thousands of them; Python would parse each first)."""
        return [_epoch_ms(c, dialect).label(c.name) if isinstance(c.type, UTCDateTime | Date) else c
                for c in self.columns]

    def record(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row selected with `select_list`, as the driver returns it (`driver_rows`) → raw record (the same
        values `raw` gives)."""
        record = dict(zip(self.names, row, strict=True))
        for name in self.flags:
            if record[name] is not None:
                record[name] = bool(record[name])
        if self.table == "visits":
            _phone_datum(record)
        return record


def _epoch_ms(column: Column[Any], dialect: str) -> ColumnElement[int]:
    """Epoch milliseconds, truncated exactly like `to_ms` / `date_to_ms`.

    SQLite stores SQLAlchemy timestamps as text 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds from strftime('%s') of
    the text without its fraction, plus the fraction's first three digits. (julianday's float arithmetic would round
    some values up, and so does strftime('%s') given the fraction: it reads the time to the millisecond, rounded,
    so 10:00:00.9996 became 10:00:01 and a phone got a time one second late.)"""
    if dialect == "postgresql":
        if isinstance(column.type, Date):
            return cast(column - literal_column("DATE '1970-01-01'"), BigInteger) * EPOCH_DAY_MS
        return cast(func.floor(func.extract("epoch", column) * 1000), BigInteger)
    if isinstance(column.type, Date):
        return cast(func.round((func.julianday(column) - 2440587.5) * 86400000.0), BigInteger)
    seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
    return seconds * 1000 + cast(func.substr(column, 21, 3), BigInteger)


def _phone_datum(record: dict[str, Any]) -> None:
    """A visit goes back to the phone in the datum it was recorded in: the server keeps WGS-84, but a phone
    whose map SDK speaks GCJ-02 must get back the point it recorded, not one ~500 m away on its map."""
    if record.get("coord_system") == "gcj02" and record.get("lat") is not None and record.get("lng") is not None:
        record["lat"], record["lng"] = wgs84_to_gcj02(record["lat"], record["lng"])


@cache
def shape(table: str) -> Shape:
    sql_table: Table = MODELS[table].__table__  # type: ignore[attr-defined]
    hidden = set() if table == "divisions" else set(INTERNAL)
    if table == "residents":
        hidden |= RESIDENT_INTERNAL
    columns = tuple(c for c in sql_table.columns if c.name not in hidden)
    return Shape(table, columns, tuple(_out(c) for c in columns), {c.name: _in(c) for c in columns},
                 tuple(c.name for c in columns), tuple(c.name for c in columns if isinstance(c.type, Boolean)))


def driver_rows(session: Session, stmt: Select[Any]) -> list[Any]:
    """The rows of a `select_list` query as the driver returns them. Every value is already in wire form (times
    and dates computed by the database) but SQLite's booleans, which `Shape.record` converts: SQLAlchemy's
    per-value result processing would cost a first pull of 100,000 records about half a second."""
    result: Any = session.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def columns(table: str) -> tuple[str, ...]:
    """The wire columns of a synced table (docs/sync.md lists them)."""
    return shape(table).names


def to_raw(table: str, record: SQLModel) -> dict[str, Any]:
    """A model instance → raw record."""
    s = shape(table)
    return s.raw([getattr(record, c.name) for c in s.columns])


def from_raw(table: str, raw: dict[str, Any], *, only: Sequence[str] | None = None) -> dict[str, Any]:
    """A raw record (as pushed) → model field values, for the wire columns present (or those in `only`).

    WatermelonDB's bookkeeping keys (`_status`, `_changed`) and unknown keys are ignored; a value of the
    wrong type raises WireError naming the field.
    """
    into = shape(table).into
    names = into if only is None else only
    return {name: into[name](raw[name]) for name in names if name in raw and name in into}
