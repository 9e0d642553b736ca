"""Query helpers shared by every domain."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Boolean, ColumnElement, any_, bindparam, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.visitors import InternalTraversal

from app.core.lean import Lean

T = TypeVar("T")
S = TypeVar("S")


def starts_with(column: Any, value: str) -> ColumnElement[bool]:
    """`column LIKE 'value%'` with the whole pattern bound as one value.

    SQLAlchemy's `startswith()` renders `LIKE :v || '%'`, which SQLite cannot match against an index; a
    single bound pattern uses the index on both databases (SQLite runs with case_sensitive_like=ON,
    PostgreSQL's prefix indexes use varchar_pattern_ops).
    """
    result: ColumnElement[bool] = column.like(prefix_pattern(value), escape="/")
    return result


def prefix_pattern(value: str) -> str:
    """The LIKE pattern of `starts_with` (escaped with "/"), for a statement that binds it (`LIKE :p ESCAPE '/'`)."""
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


# Up to this many values, `among` is SQLAlchemy's own `IN`: a cached statement (one "expanding" parameter),
# where `_Among` is compiled anew on every call. A single visit's lookups compiled from scratch were a fifth of a
# `POST /visits` (py-spy, 2026-12-05).
SHORT_LIST = 32


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`: one value as `=`, a short list as a cached `IN`, a long one (a batch's ids) as
    `_Among`."""
    values = list(values)
    # One value (a single visit's lookups) as `=`: built faster than IN and not re-rendered per execution. None
    # stays IN: `= NULL` would turn into IS NULL and match.
    if len(values) == 1 and values[0] is not None:
        single: ColumnElement[bool] = column == values[0]
        return single
    if len(values) <= SHORT_LIST:
        result: ColumnElement[bool] = column.in_(values)
        return result
    return _Among(column, values)


def one_of(column: Any, constants: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (constants)` for a fixed set of constants (states, kinds) in a statement built once: each value
    its own bound parameter, so nothing is rendered again per execution, as SQLAlchemy's expanding `IN` is (0.1 ms
    of a `/me/tasks` for two short lists)."""
    result: ColumnElement[bool] = column.in_([literal(value, column.type) for value in constants])
    return result


class _Among(ColumnElement[bool]):
    """`column IN (values)` for a long list of values (a batch's ids).

    SQLite: the usual `IN (?, ?, …)`. PostgreSQL: `column = ANY(%s)` with the values as one array parameter —
    the same index scan, but one parameter instead of hundreds, so neither SQLAlchemy nor psycopg renders and
    parses a statement of 500 placeholders per query (the sync pull's lookups by resident; `ByKey` has its own).
    Not cached (the statement text depends on the dialect); that costs less than the rendering it saves.
    """

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True  # a condition, not a boolean column: no `= 1` on SQLite

    def __init__(self, column: Any, values: Iterable[Any]) -> None:
        self.column = column
        self.values = list(values)


@compiles(_Among)
def _among_default(element: _Among, compiler: Any, **kw: Any) -> str:
    result: str = compiler.process(element.column.in_(element.values), **kw)
    return result


@compiles(_Among, "postgresql")
def _among_postgresql(element: _Among, compiler: Any, **kw: Any) -> str:
    values = bindparam(None, element.values, type_=ARRAY(element.column.type))
    result: str = compiler.process(element.column == any_(values), **kw)
    return result


def not_indexed(column: Any) -> ColumnElement[Any]:
    """`column` that SQLite will not look up by an index (`+column`, SQLite's own idiom), elsewhere itself.

    For a condition that is there for PostgreSQL (the district a Citus deployment routes by) where SQLite, which
    plans without statistics, would pick that condition's index over a narrower one: a worker's open tasks by
    their `district_code` scanned the whole district's (375 rows for 6 on the bench city; thousands in a real
    one) where `ix_tasks_area_due` finds the community's own.
    """
    return _NotIndexed(column)


class _NotIndexed(ColumnElement[Any]):
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 (SQLAlchemy's own form)

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_NotIndexed)
def _not_indexed_default(element: _NotIndexed, compiler: Any, **kw: Any) -> str:
    result: str = compiler.process(element.column, **kw)
    return result


@compiles(_NotIndexed, "sqlite")
def _not_indexed_sqlite(element: _NotIndexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


# Ids per `among` list: one query per lookup for a push of thousands (SQLite allows 32,766 parameters).
CHUNK = 5000


def chunks(values: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    """The distinct values, sorted, in lists of at most `size` (for `among`)."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


class Statements:
    """Statements built once per key — an actor's scope, an order — with every per-request value a bound
    parameter. Building a statement of a few joins costs 0.1–0.5 ms of Python, more than running it on an index;
    the routes every phone calls build theirs once (docs/CONVENTIONS.md, hot paths). Bounded: past `size` keys
    it starts again (a city has a few thousand distinct scopes)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._made: dict[Any, Any] = {}

    def get(self, key: Any, build: Callable[[], T]) -> T:
        found = self._made.get(key)
        if found is None:
            if len(self._made) >= self.size:
                self._made.clear()
            found = self._made[key] = build()
        return found


class ByKey(Generic[S]):
    """A statement over a list of keys (one column's values), built once per form, with the keys bound.

    `build(key)` makes the statement, with `key(column)` as the condition on the key column. Called with a chunk
    of keys, it answers the statement and its parameters: one key as `column = :among_key`, more as `_Keys` (an
    `IN` list on SQLite, one array on PostgreSQL) bound as `among_keys`. Both are built once: a lookup neither
    builds a statement nor derives a cache key, and with `lean=True` neither compiles it (app.core.lean writes an
    `IN` list's placeholders itself). A push's lookups of a thousand ids each were built and compiled on every
    call before: 1.3 ms of SQLAlchemy's over the driver's 0.7 (docs/performance.md).
    """

    def __init__(self, build: Callable[[Callable[[Any], ColumnElement[bool]]], S], *, lean: bool = False) -> None:
        one = build(lambda column: column == bindparam("among_key"))
        many = build(_Keys)
        # `lean`: Core statements only, run on the driver (app.core.lean) with `lean.run`
        self._one: Any = Lean(cast(Executable, one)) if lean else one
        self._many: Any = Lean(cast(Executable, many)) if lean else many

    def __call__(self, keys: Sequence[Any], **params: Any) -> tuple[Any, dict[str, Any]]:
        if len(keys) == 1 and keys[0] is not None:  # None stays in a list, as in `among`
            return self._one, {**params, "among_key": keys[0]}
        return self._many, {**params, KEYS: list(keys)}


KEYS = "among_keys"


class _Keys(ColumnElement[bool]):
    """`column` among the list bound as `among_keys`: SQLite `column IN (?, …)` (one expanding parameter),
    PostgreSQL `column = ANY(%(among_keys)s)` (one array parameter: no statement of a thousand placeholders to
    render and parse). The same statement whatever the list: built and compiled once."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition, not a boolean column: no `= 1` on SQLite
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 (SQLAlchemy's own form)

    def __init__(self, column: Any) -> None:
        self.column = column


@compiles(_Keys)
def _keys_default(element: _Keys, compiler: Any, **kw: Any) -> str:
    result: str = compiler.process(element.column.in_(bindparam(KEYS, expanding=True)), **kw)
    return result


@compiles(_Keys, "postgresql")
def _keys_postgresql(element: _Keys, compiler: Any, **kw: Any) -> str:
    result: str = compiler.process(element.column == any_(bindparam(KEYS, type_=ARRAY(element.column.type))), **kw)
    return result
