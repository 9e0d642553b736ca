"""Query helpers shared by every domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def starts_with(column: Any, value: str) -> ColumnElement[bool]:
    """`column LIKE 'value%'` with the whole pattern bound as one value.

    SQLAlchemy's `startswith()` renders `LIKE :v || '%'`, which SQLite cannot match against an index; a
    single bound pattern uses the index on both databases (SQLite runs with case_sensitive_like=ON,
    PostgreSQL's prefix indexes use varchar_pattern_ops).
    """
    escaped = value.replace("/", "//").replace("%", "/%").replace("_", "/_")
    result: ColumnElement[bool] = column.like(escaped + "%", escape="/")
    return result
