"""Helpers for the task tests: months, task rows, residents who get tasks, monthly generation."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.config import get_settings
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.visits import API

TASKS = f"{API}/tasks"
ME = f"{API}/me/tasks"
RESIDENTS = f"{API}/residents"


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(day: date) -> str:
    return month_of(day.replace(day=1) - timedelta(days=1))


def month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def key_person_due(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), get_settings().key_person_visit_due_day)


def tasks_of(engine: Engine, resident_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM tasks WHERE resident_id = :r AND (CAST(:k AS VARCHAR(20)) IS NULL "
                        "OR kind = :k) ORDER BY kind, period", r=resident_id, k=kind)


def task_row(engine: Engine, task_id: str) -> dict[str, Any]:
    return rows(engine, "SELECT * FROM tasks WHERE id = :t", t=task_id)[0]


def register_man(api: Api, world: World, seq: str = "011", community: str = "c1", user: str = "worker1",
                 **over: Any) -> dict[str, Any]:
    """A man is never a key person: registering him creates only the new-arrival task."""
    return register_resident(api, user, dwelling_id(world, community), **{
        "id_number": id_number(birth="19880101", seq=seq), "name": "李强", "phone": None, **over})


def register_woman(api: Api, world: World, seq: str = "012", community: str = "c1", user: str = "worker1",
                   **over: Any) -> dict[str, Any]:
    """A woman of 15–49 with nothing recorded yet is a key person from the start."""
    return register_resident(api, user, dwelling_id(world, community), **{
        "id_number": id_number(birth="19920202", seq=seq), "name": "王芳", "phone": None, **over})


def key_persons(engine: Engine, path_prefix: str = "") -> set[str]:
    return {r["id"] for r in rows(engine, "SELECT id FROM residents WHERE status = 'REGISTERED' AND key_person "
                                          "AND merged_into_id IS NULL AND area_path LIKE :p", p=path_prefix + "%")}


def detail(event: dict[str, Any]) -> Any:
    value = event["detail"]
    return json.loads(value) if isinstance(value, str) else value


def generate(api: Api, month: str, user: str = "sup_district", status: int = 200) -> dict[str, Any]:
    response = api.as_(user, "POST", f"{TASKS}/generate", json={"month": month})
    assert response.status_code == status, response.text
    return dict(response.json())
