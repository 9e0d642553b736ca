"""Alembic owns the schema on both backends: migrations run up and down cleanly, one revision at a time,
and the migrated schema is exactly what the models declare (no drift)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from app import registry  # noqa: F401 - every domain's tables in the metadata
from app.cli import alembic_config
from app.core.db import create_db_engine
from tests.conftest import BACKEND, Databases


@pytest.fixture()
def empty_db(databases: Databases) -> Iterator[tuple[str, Engine]]:
    name = f"{databases.run}_mig_{uuid.uuid4().hex[:8]}"
    url = databases.create_empty(name)
    engine = create_db_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        databases.drop(name)


def revisions() -> list[str]:
    """Revision ids from base to head."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


def schema(engine: Engine) -> dict[str, Any]:
    """Everything a migration can leave behind, in comparable form."""
    insp = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        tables[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted((tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                          for fk in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"] or "", tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
            "uniques": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
            functions: list[str] = []
        else:
            triggers = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars()
            functions = list(conn.execute(text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            )).scalars())
        return {"tables": tables, "triggers": sorted(triggers), "functions": sorted(functions)}


def drift(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def test_history_is_linear() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, f"several heads {script.get_heads()}: merge or re-parent a migration"
    assert len(script.get_bases()) == 1, f"several bases {script.get_bases()}"
    for rev in script.walk_revisions():
        assert rev.module.__doc__, f"migration {rev.revision} has no docstring saying what it does"


def test_upgrade_downgrade_round_trip(empty_db: tuple[str, Engine]) -> None:
    url, engine = empty_db
    cfg = alembic_config(url)
    empty = schema(engine)
    assert empty["tables"] == {}

    command.upgrade(cfg, "head")
    at_head = schema(engine)
    assert set(at_head["tables"]) >= {"alembic_version", "audit_events", "users", "divisions"}
    assert at_head["triggers"], "the audit log's append-only triggers are missing"

    command.downgrade(cfg, "base")
    at_base = schema(engine)
    assert set(at_base["tables"]) == {"alembic_version"}, "downgrade to base left tables behind"
    assert at_base["triggers"] == [] and at_base["functions"] == [], "downgrade left triggers or functions"

    command.upgrade(cfg, "head")
    assert schema(engine) == at_head
    assert drift(engine) == []


def test_each_revision_downgrades_to_its_parent(empty_db: tuple[str, Engine]) -> None:
    """The stairway: up one step at a time, then down one step at a time, same schema at every step."""
    url, engine = empty_db
    cfg = alembic_config(url)
    snapshots = [schema(engine)]
    for rev in revisions():
        command.upgrade(cfg, rev)
        snapshots.append(schema(engine))
    for rev, expected in zip(reversed(revisions()), reversed(snapshots[:-1]), strict=True):
        command.downgrade(cfg, "-1")
        actual = schema(engine)
        if expected["tables"] == {}:  # alembic keeps its own version table once created
            actual["tables"].pop("alembic_version", None)
        assert actual == expected, f"downgrade of {rev} does not restore the schema before it"


def test_models_and_migrations_agree(empty_db: tuple[str, Engine]) -> None:
    url, engine = empty_db
    command.upgrade(alembic_config(url), "head")
    differences = drift(engine)
    assert differences == [], (
        "models and migrations differ; write a migration (alembic revision --autogenerate) and review it:\n"
        + "\n".join(map(str, differences))
    )


def test_backend_is_the_one_under_test(empty_db: tuple[str, Engine]) -> None:
    assert empty_db[1].dialect.name == BACKEND
