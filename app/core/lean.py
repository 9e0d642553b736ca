"""Statements the routes every phone calls run straight on the driver's cursor.

SQLAlchemy's Core execution costs ~0.1 ms of Python a statement under load (an execution context, the compiled
cache's lookup, the parameters' construction, a result object with its metadata) against ~5 µs for the
driver's own `cursor.execute`. A `POST /visits` runs a dozen statements, so that machinery was a fifth of its
CPU (py-spy, docs/performance.md). A `Lean` statement is compiled once per dialect — SQL text, parameter order,
the columns' bind and result processors — and each execution is the driver's call with the values converted
exactly as SQLAlchemy would convert them.

What stays as with `Connection.execute`:
- the transaction: it runs on the unit of work's connection, inside whatever that connection has begun (get the
  connection from `session.connection()`, which begins it);
- `before_cursor_execute` / `after_cursor_execute` listeners see it (tests count statements with them);
- a driver error is raised as SQLAlchemy raises it (`IntegrityError`, `OperationalError`, …), through the
  connection's own handler, which also invalidates a connection that was lost (a restarted PostgreSQL).

One expanding parameter (an `IN` list: `queries.ByKey`'s list form) is written here per execution on a driver
with positional parameters (SQLite: `IN (?, ?, …)`, the text kept per list length), as SQLAlchemy would render
it. Any other expanding or literal-execute parameter (a scope of two districts on PostgreSQL, say) cannot be
compiled once: that statement runs through `Connection.execute` as usual. Use `Lean` for statements built once
(module level, `queries.Statements`, `queries.ByKey`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable


class _Form:
    """A statement compiled for one dialect."""

    __slots__ = ("compiled", "dialect", "expanding", "names", "positional", "processors", "results", "row", "sql",
                 "texts", "types")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Any = cast(Any, statement).compile(dialect=dialect)
        self.compiled = compiled
        self.dialect = dialect
        # None: rendered anew per execution (literal parameters, or lists this module does not write), so it runs
        # through SQLAlchemy
        expanding = [name for name, bind in compiled.binds.items() if bind.expanding]
        fixed = not compiled.escaped_bind_names and not any(bind.literal_execute for bind in compiled.binds.values())
        if len(expanding) > 1 or (expanding and not compiled.positional):
            fixed = False
        self.expanding: str | None = expanding[0] if fixed and expanding else None
        self.texts: dict[int, str] = {}  # the SQL per length of the expanding list
        self.sql: str | None = compiled.string if fixed else None
        self.positional: bool = compiled.positional
        self.names: Sequence[str] = tuple(compiled.positiontup or ())
        self.processors: list[tuple[str, Callable[[Any], Any]]] = [
            (name, processor) for name, processor in compiled._bind_processors.items() if processor is not None]
        columns = compiled._result_columns or []
        self.types = [entry.type for entry in columns]
        # The columns' result processors, made at the first execution: some depend on the type the driver reports
        # (psycopg's numeric), as SQLAlchemy's own result metadata reads it from `cursor.description`.
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = None
        self.row: Any = namedtuple("Row", [entry.keyname for entry in columns], rename=True) if columns else None

    def parameters(self, params: Mapping[str, Any] | None) -> Any:
        values = self.compiled.construct_params(params)
        for name, processor in self.processors:
            if name == self.expanding:
                values[name] = [processor(value) for value in values[name]]
            else:
                values[name] = processor(values[name])
        if self.expanding is not None:  # positional: the list's values in its place
            flat: list[Any] = []
            for name in self.names:
                if name == self.expanding:
                    flat.extend(values[name])
                else:
                    flat.append(values[name])
            return tuple(flat)
        return tuple(values[name] for name in self.names) if self.positional else values

    def text(self, count: int) -> str:
        """The SQL with the expanding list's `count` placeholders (`count` > 0)."""
        found = self.texts.get(count)
        if found is None:
            if len(self.texts) >= 256:  # a push's lists come in many lengths
                self.texts.clear()
            assert self.sql is not None
            found = self.texts[count] = self.sql.replace(f"__[POSTCOMPILE_{self.expanding}]", ", ".join("?" * count))
        return found

    def shape(self, rows: list[Any], description: Any) -> list[Any]:
        if self.row is None:
            return rows
        if self.results is None:
            self.results = [
                (index, processor) for index, (type_, column) in enumerate(zip(self.types, description, strict=True))
                if (processor := type_._cached_result_processor(self.dialect, column[1])) is not None]
        make = self.row._make
        if not self.results:
            return [make(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for index, processor in self.results:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


class Lean:
    """A Core statement (select, insert, update, text) run on the driver (module docstring). Rows come back as
    named tuples (by position or by the columns' names, like SQLAlchemy's rows), their values converted by the
    columns' types."""

    __slots__ = ("_forms", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = _Form(self.statement, dialect)
        return form

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row the statement answers (none for a statement without a result)."""
        form = self._form(conn.dialect)
        sql = form.sql
        if sql is not None and form.expanding is not None:
            count = len((params or {}).get(form.expanding) or ())
            sql = form.text(count) if count else None  # an empty list: SQLAlchemy's own empty-set form
        if sql is None:
            result = conn.execute(self.statement, params)
            return list(result) if result.returns_rows else []
        return form.shape(*_run(conn, sql, form.parameters(params), many=False))

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        found = self.rows(conn, params)
        return found[0] if found else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the one row it must answer."""
        found = self.rows(conn, params)
        if len(found) != 1:
            raise LookupError(f"expected one row, got {len(found)}")
        return found[0][0]

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per set of parameters (the driver's executemany)."""
        if not rows:
            return
        form = self._form(conn.dialect)
        if form.sql is None or form.expanding is not None:
            conn.execute(self.statement, list(rows))
        else:
            _run(conn, form.sql, [form.parameters(row) for row in rows], many=True)


def _cursor(conn: Connection) -> Any:
    """The pooled connection's own cursor, made once and used by every lean statement on it: a psycopg cursor
    costs ~25 µs to make (it copies the connection's adapters), a third of a prepared statement's round trip.
    Every execution fetches all its rows, so nothing is left on it. After a driver error (whose handler closes
    it) or on a replaced driver connection (after an invalidation) a new one is made."""
    fairy: Any = conn.connection
    driver = fairy.dbapi_connection
    cursor = fairy.info.get("lean_cursor")
    if cursor is None or cursor.connection is not driver:
        cursor = fairy.info["lean_cursor"] = driver.cursor()
    return cursor


def _run(conn: Connection, sql: str, parameters: Any, *, many: bool) -> tuple[list[Any], Any]:
    """(the rows, the cursor's description)"""
    events: Any = conn._has_events or conn.engine._has_events
    cursor: Any = None
    try:
        cursor = _cursor(conn)
        if events:
            for listener in conn.dispatch.before_cursor_execute:
                sql, parameters = listener(conn, cursor, sql, parameters, None, many)
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else []
        if events:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, parameters, None, many)
    except Exception as exc:  # raised as SQLAlchemy raises it; a lost connection is invalidated
        if cursor is not None:  # the handler closes it
            cast(Any, conn.connection).info.pop("lean_cursor", None)
        conn._handle_dbapi_exception(exc, sql, parameters, cursor, None)
    return rows, description


def run(conn: Connection, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The rows of a statement that may be lean (`queries.ByKey(..., lean=True)` answers a `Lean` for one key and
    a Core statement for a list): either way, on this connection."""
    if isinstance(statement, Lean):
        return statement.rows(conn, params)
    result = conn.execute(statement, params)  # SQLAlchemy's compiled cache
    return list(result) if result.returns_rows else []


def run_driver(conn: Connection, sql: str, parameters: Any, *, many: bool = False) -> list[Any]:
    """SQL text of our own (never input) with the driver's parameters, on this connection (app.core.bulk)."""
    return _run(conn, sql, parameters, many=many)[0]
