"""Bulk rows into a table inside the session's transaction, at the speed of the database driver.

For the writers that handle many rows at once (a sync push's visits, the audit seal, the demo city): no ORM objects
and none of SQLAlchemy's per-row parameter handling, which costs more than the insert itself. The caller
records the audit events and sync-log rows that the ORM listeners would have (bulk statements bypass them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, ClassVar, cast

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core.lean import run_driver
from app.core.types import UTCDateTime


def sqlite_utc_text(value: Any) -> str:
    """A `UTCDateTime` as SQLite stores it (`UTCDateTime`'s bind processing, then SQLAlchemy's SQLite DATETIME
    format `YYYY-MM-DD HH:MM:SS.ffffff`), for the bulk writer: a push converts thousands."""
    if value.__class__ is datetime and value.tzinfo is UTC:  # the common case: one C call, its offset cut off
        return value.isoformat(" ", "microseconds")[:26]
    if not isinstance(value, datetime):
        raise TypeError("UTCDateTime needs a datetime")
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def table_of(model: Any) -> Table:
    return cast(Table, model.__table__)


# PostgreSQL: up to this many rows as INSERT, more by COPY (COPY's setup costs more than a few rows' INSERT: a
# single visit's audit event and deliveries).
COPY_FROM = 8


class BulkWriter:
    """Append rows (tuples in a fixed column order) to a table in the session's transaction.

    SQLite: executemany of one prepared INSERT, values converted by the columns' own SQLAlchemy bind
    processors (so dates and timestamps are stored exactly as the ORM stores them). PostgreSQL: COPY FROM
    STDIN through psycopg, several times faster than multi-row INSERTs; a few rows (`COPY_FROM`) by one
    multi-row INSERT.
    """

    # (dialect, table, columns) → the bind processors by column position; shared: every audit seal writes
    _processors: ClassVar[dict[tuple[str, str, tuple[str, ...]], list[tuple[int, Callable[[Any], Any]]]]] = {}

    def __init__(self, target: Session | Connection) -> None:
        """On a session's connection (its transaction), or on a connection in a transaction of its own."""
        self.connection = target if isinstance(target, Connection) else target.connection()
        self.dialect = self.connection.dialect
        self.postgres = self.dialect.name == "postgresql"
        self.counts: dict[str, int] = {}

    def write(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
        if self.postgres and len(rows) > COPY_FROM:
            self._copy(table, columns, rows)
        else:
            self._insert(table, columns, rows)

    def write_dicts(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Rows given as dicts (all with the same keys)."""
        if rows:
            columns = list(rows[0])
            values = itemgetter(*columns)  # a row's values in one C call (a push writes thousands)
            self.write(table, columns, [values(row) for row in rows] if len(columns) > 1 else
                       [(values(row),) for row in rows])

    def _insert(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        key = (self.dialect.name, table.name, tuple(columns))
        processors = self._processors.get(key)
        if processors is None:
            processors = []
            for index, name in enumerate(columns):
                processor: Any = table.c[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
                if isinstance(table.c[name].type, UTCDateTime) and not self.postgres:
                    processor = sqlite_utc_text  # the same text, in one C call instead of two processors
                if processor is not None:
                    processors.append((index, processor))
            self._processors[key] = processors
        converted: list[Any] = rows
        if processors:
            converted = []
            for row in rows:
                values = list(row)  # the driver takes any sequence of values
                for index, processor in processors:
                    if values[index] is not None:
                        values[index] = processor(values[index])
                converted.append(values)
        # Table and column names come from our own metadata, never from input.
        head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "  # noqa: S608
        if self.postgres:
            # One statement with a row of values each: psycopg's executemany runs in pipeline mode, whose
            # setup and sync cost more than these few rows (a visit and its deliveries).
            row_marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
            sql = head + ", ".join([row_marks] * len(converted))
            run_driver(self.connection, sql, [value for row in converted for value in row])
        else:
            run_driver(self.connection, head + "(" + ", ".join(["?"] * len(columns)) + ")", converted, many=True)

    def _copy(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        import psycopg

        raw: Any = self.connection.connection.driver_connection
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.IntegrityError as exc:  # as SQLAlchemy reports it for INSERT: a 409, never a 500
            raise IntegrityError(statement, None, exc) from None
