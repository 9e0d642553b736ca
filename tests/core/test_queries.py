"""The query helpers of app/core/queries.py that hot statements are built with (docs/CONVENTIONS.md, hot paths)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.core.actor import Actor, AreaScope, Role
from app.core.queries import not_indexed, one_of
from app.cycle.assistance import service as assistance
from app.cycle.tasks import mine
from app.cycle.tasks.schemas import MyTasksOrder
from app.people.models import Resident
from tests.conftest import World


def test_one_of_finds_exactly_the_rows_with_those_values_and_renders_nothing_per_call(engine: Engine,
                                                                                      world: World) -> None:
    codes = sorted({world.community("c1")["district_code"], world.community("c3")["district_code"]})
    stmt = select(col(Resident.district_code)).where(one_of(col(Resident.district_code), codes)).distinct()
    with Session(engine) as session:
        assert sorted(session.execute(stmt).scalars()) == codes
        only = select(col(Resident.district_code)).where(one_of(col(Resident.district_code), codes[:1])).distinct()
        assert list(session.execute(only).scalars()) == codes[:1]
        nobody = select(col(Resident.id)).where(one_of(col(Resident.district_code), ["none"]))
        assert session.execute(nobody).all() == []
    # Each value its own parameter: no "expanding" one, which SQLAlchemy would render into the text on every call.
    compiled = stmt.compile(engine)
    assert sorted(compiled.params.values()) == codes
    assert not any(b.expanding for b in compiled.binds.values())
    # The contrast: SQLAlchemy's own IN binds the list as one expanding value.
    plain = select(col(Resident.id)).where(col(Resident.district_code).in_(codes)).compile(engine)
    assert any(b.expanding for b in plain.binds.values())


def test_not_indexed_matches_as_the_column_does(engine: Engine, world: World) -> None:
    code = world.community("c1")["district_code"]
    with Session(engine) as session:
        plain = sorted(session.execute(select(col(Resident.id)).where(col(Resident.district_code) == code)).scalars())
        hinted = sorted(session.execute(select(col(Resident.id))
                                        .where(not_indexed(col(Resident.district_code)) == code)).scalars())
        assert plain and hinted == plain
    text = str(select(col(Resident.id)).where(not_indexed(col(Resident.district_code)) == code).compile(engine))
    assert ("+residents.district_code" in text) == (engine.dialect.name == "sqlite")


def _plan(engine: Engine, stmt: Any, values: dict[str, Any]) -> str:
    compiled = stmt.compile(engine)
    params = compiled.construct_params(values)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                    tuple(params[k] for k in compiled.positiontup or ()))
        return " ".join(row[3] for row in rows)


def test_a_workers_open_tasks_are_found_by_the_areas_index_not_the_districts(engine: Engine, world: World) -> None:
    """SQLite plans without statistics and took `ix_tasks_district_state_due`, scanning the whole district's open
    tasks for one community's; PostgreSQL's planner has statistics and chooses for itself."""
    community = world.community("c1")
    actor = Actor("u", "worker", Role.worker, "s", AreaScope((community["path"],)), False)
    tasks = mine._ordered(actor, MyTasksOrder.due, mine.MY_TASKS_LIMIT)
    requests = assistance._tasks_statement(actor)
    # Either way the district stays in the condition (PostgreSQL, and a Citus deployment's routing, use it).
    assert "tasks.district_code" in str(tasks.compile(engine))
    assert "assistance_requests.district_code" in str(requests.compile(engine))
    if engine.dialect.name == "sqlite":
        day = date(2026, 12, 6).isoformat()
        plan = _plan(engine, tasks, {"due_by": day})
        assert "SEARCH tasks USING INDEX ix_tasks_area_due (area_path>? AND area_path<?)" in plan, plan
        plan = _plan(engine, requests, {"due_by": day, "on": day})
        assert "USING INDEX ix_assistance_area_state_due (area_path>? AND area_path<?)" in plan, plan
