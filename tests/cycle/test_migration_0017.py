"""Migration 0017 on a database holding tasks: existing tasks keep their resident, a reported arrival may be stored
without one (any other kind may not), and the downgrade drops only the tasks the old schema cannot hold; the
partner feeds' indexes are replaced and restored (varchar_pattern_ops on PostgreSQL only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.cli import alembic_config
from app.core.db import create_db_engine
from tests.conftest import Databases

REVISION = "0017"
NOW = "2026-12-01 00:00:00"


@pytest.fixture()
def migrated(databases: Databases) -> Iterator[tuple[str, Engine]]:
    """An empty database migrated to the revision before 0017."""
    name = f"{databases.run}_m17_{uuid.uuid4().hex[:8]}"
    url = databases.create_empty(name)
    engine = create_db_engine(url)
    try:
        command.upgrade(alembic_config(url), f"{REVISION}-1")
        yield url, engine
    finally:
        engine.dispose()
        databases.drop(name)


def _seed(engine: Engine) -> None:
    """A community and a resident, written as the old schema allows."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO divisions (id, code, name, level, path, district_code, active, vintage, "
                          "created_at, updated_at, version) VALUES ('div1', '410102001001', 'c', 'community', "
                          "'/410100/410102/', '410102', true, 2026, :n, :n, 1)"), {"n": NOW})
        conn.execute(text("INSERT INTO residents (id, community_id, area_path, district_code, name, sex, birth_date, "
                          "id_verified, hukou_code, arrival_date, marital_status, status, key_person, created_at, "
                          "updated_at, version) VALUES ('res1', 'div1', '/410100/410102/', '410102', 'n', 'F', "
                          "'1990-01-01', true, '411602', '2026-11-01', 'married', 'REGISTERED', false, :n, :n, 1)"),
                     {"n": NOW})


def _task(conn: object, task_id: str, resident: str | None, kind: str) -> None:
    conn.execute(text(  # type: ignore[attr-defined]
        "INSERT INTO tasks (id, resident_id, community_id, area_path, district_code, kind, period, due_date, "
        "state, created_at, updated_at, version) VALUES (:id, :r, 'div1', '/410100/410102/', '410102', :k, :id, "
        "'2026-12-08', 'open', :n, :n, 1)"), {"id": task_id, "r": resident, "k": kind, "n": NOW})


def test_0017_keeps_tasks_and_allows_only_reported_arrivals_without_a_resident(
        migrated: tuple[str, Engine]) -> None:
    url, engine = migrated
    columns = {c["name"]: c for c in inspect(engine).get_columns("tasks")}
    assert "dwelling_id" not in columns and columns["resident_id"]["nullable"] is False
    _seed(engine)
    with engine.begin() as conn:
        _task(conn, "follow-up-kept-0001", "res1", "follow_up")
    command.upgrade(alembic_config(url), REVISION)
    with engine.connect() as conn:  # a fresh inspector: the columns changed
        columns = {c["name"]: c for c in inspect(conn).get_columns("tasks")}
    assert columns["resident_id"]["nullable"] is True and columns["dwelling_id"]["nullable"] is True
    fks = {(tuple(fk["constrained_columns"]), fk["referred_table"]) for fk in inspect(engine).get_foreign_keys("tasks")}
    assert {(("resident_id",), "residents"), (("dwelling_id",), "dwellings")} <= fks
    with engine.begin() as conn:
        assert conn.execute(text("SELECT resident_id FROM tasks")).scalars().all() == ["res1"]
        _task(conn, "reported-arrival-01", None, "reported_arrival")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _task(conn, "follow-up-no-res-01", None, "follow_up")
    assert _feed_indexes(engine) == {"ix_sync_log_seq_id": ("seq", "id"),
                                     "ix_sync_log_district_seq_id": ("district_code", "seq", "id"),
                                     "ix_residents_hukou_code": ("hukou_code", engine.dialect.name == "postgresql")}
    command.downgrade(alembic_config(url), f"{REVISION}-1")
    assert _feed_indexes(engine) == {"ix_sync_log_seq": ("seq",), "ix_sync_log_district_seq": ("district_code", "seq"),
                                     "ix_residents_hukou_code": ("hukou_code", False)}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM tasks")).scalars().all() == ["follow-up-kept-0001"]
        columns = {c["name"]: c for c in inspect(conn).get_columns("tasks")}
    assert "dwelling_id" not in columns and columns["resident_id"]["nullable"] is False


def _feed_indexes(engine: Engine) -> dict[str, tuple[object, ...]]:
    """The change log's seq indexes (name: columns) and the 户籍地 code's (name: column, varchar_pattern_ops?)."""
    with engine.connect() as conn:
        insp = inspect(conn)
        found: dict[str, tuple[object, ...]] = {
            i["name"]: tuple(i["column_names"]) for i in insp.get_indexes("sync_log")
            if i["name"] and i["name"].startswith(("ix_sync_log_seq", "ix_sync_log_district"))}
        pattern = False
        if engine.dialect.name == "postgresql":
            pattern = "varchar_pattern_ops" in conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_residents_hukou_code'")).scalar_one()
        [hukou] = [i for i in insp.get_indexes("residents") if i["name"] == "ix_residents_hukou_code"]
        found[hukou["name"]] = (*hukou["column_names"], pattern)
    return found
