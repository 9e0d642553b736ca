"""The request's unit of work on SQLite: a write transaction takes the write lock at its first statement
(BEGIN IMMEDIATE), so a read-then-write can never fail half-way on a stale snapshot; a read begins deferred."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session

from app.core.db import writing


def _begins(engine: Engine, bind: Engine) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(bind) as session:
            session.execute(select(1))
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_write_sessions_begin_immediate_and_reads_deferred(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL takes row locks where it writes; there is no database-wide write lock to take")
    assert _begins(engine, writing(engine)) == ["BEGIN IMMEDIATE"]
    assert _begins(engine, engine) == ["BEGIN"]
