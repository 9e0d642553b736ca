"""Direct reads and writes on a test's database, for checking state and for setting up what the API cannot
reach (docs/CONVENTIONS.md, "Tests")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a query, as dicts."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def execute(engine: Engine, sql: str, **params: Any) -> None:
    """Run one statement in its own transaction."""
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def count(engine: Engine, table: str) -> int:
    """How many rows the table holds."""
    return int(rows(engine, f"SELECT count(*) AS n FROM {table}")[0]["n"])  # noqa: S608


def audit_events(engine: Engine, action: str, target_id: str | None = None) -> list[dict[str, Any]]:
    """The audit events of this action (on this target, when given), oldest first."""
    if target_id is None:
        return rows(engine, "SELECT * FROM audit_events WHERE action = :a ORDER BY id", a=action)
    return rows(engine, "SELECT * FROM audit_events WHERE action = :a AND target_id = :t ORDER BY id",
                a=action, t=target_id)


def all_audit_text(engine: Engine) -> str:
    """Everything the audit log holds, as one string, to prove no personal value leaked into it."""
    return "\n".join(" ".join(str(v) for v in row.values()) for row in rows(engine, "SELECT * FROM audit_events"))
