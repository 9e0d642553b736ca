"""Reported arrivals: a person a police station reported as registered here whom the register does not have
(docs/sharing.md, "Police uploads"). The worker owes a visit to the reported address; the task has no resident
until the worker registers the person, then it is done and names them. Dismissing the report cancels it.

The sharing domain (above this layer) creates and settles these through the two functions here; a visit never
completes one (a visit needs a resident), and the register's events do not touch it while it has none.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from app.core import context
from app.core.config import get_settings
from app.core.types import city_today, utcnow
from app.cycle.models import Task, TaskKind, TaskState
from app.cycle.tasks.service import cancel

CANCEL_REPORT_DISMISSED = "report_dismissed"  # the worker dismissed the station's report
NOTE_MAX = 200


def reported_arrival_task(session: Session, *, task_id: str, community_id: str, area_path: str, district_code: str,
                          dwelling_id: str | None, note: str) -> Task:
    """A visit to a person a police station reported as registered here and the register does not have
    (docs/sharing.md, "Police uploads"): due like a new arrival's visit, in the reported place's area, without a
    resident until the worker registers the person (`settle_reported_arrival`). `task_id` (the upload row's id) is
    also its period, so a row makes one task."""
    today = city_today()
    task = Task(id=task_id, community_id=community_id, area_path=area_path, district_code=district_code,
                dwelling_id=dwelling_id, kind=TaskKind.reported_arrival.value, period=task_id,
                due_date=today + timedelta(days=get_settings().new_arrival_visit_days), reason="police_report",
                note=note[:NOTE_MAX])
    session.add(task)
    session.flush()
    return task


def settle_reported_arrival(session: Session, task_id: str, resident_id: str | None) -> Task | None:
    """The reported person was registered (`resident_id`: the task is done and linked to them) or the report was
    dismissed (None: cancelled). A task no longer open is left as it is."""
    task = session.execute(select(Task).where(col(Task.id) == task_id,
                                              col(Task.kind) == TaskKind.reported_arrival.value)
                           .with_for_update()).scalar_one_or_none()
    if task is None or task.state != TaskState.open.value:
        return None
    if resident_id is None:
        cancel(task, CANCEL_REPORT_DISMISSED, context.current().actor_id)
    else:
        now = utcnow()
        task.resident_id, task.state, task.completed_at = resident_id, TaskState.done.value, now
        task.updated_at = now
        task.version += 1
    session.add(task)
    session.flush()
    return task
