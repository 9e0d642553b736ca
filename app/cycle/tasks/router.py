"""The task list: the worker's day (/me/tasks), task lists for supervisors, follow-ups, cancellation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import Hop, StaffActor, allow, hop
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.inputs import IsoDate
from app.core.pagination import Page, PageDep, paginate
from app.core.types import city_today
from app.cycle.models import TaskKind
from app.cycle.tasks import mine
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import (
    CoordSystem,
    DerivedState,
    GenerateIn,
    GenerateOut,
    MyTasks,
    MyTasksOrder,
    TaskCancel,
    TaskCreate,
    TaskOut,
)
from app.ledger import audit

router = APIRouter(tags=["tasks"])

FieldActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
FieldHop = Annotated[Hop, hop(Role.worker, Role.supervisor)]
SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
ON = Query(description="The city date the states are computed for (default: today, UTC+8)")


@router.get("/me/tasks", response_model=MyTasks, summary="My open tasks due today or overdue (the day's route)",
            responses={422: {"description": "order=distance without lat/lng (point_required)"}})
async def my_tasks(
    hop: FieldHop,
    on: Annotated[IsoDate | None, ON] = None,
    upcoming_days: Annotated[int, Query(ge=0, le=31, description="Also tasks due within this many days")] = 0,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="Your position (with lng)")] = None,
    lng: Annotated[float | None, Query(ge=-180, le=180)] = None,
    coord_system: Annotated[CoordSystem, Query(description="Of lat/lng and of the dwelling coordinates returned")]
    = CoordSystem.wgs84,
    order: MyTasksOrder = MyTasksOrder.due,
) -> Response:
    point = mine.point_of(lat, lng, coord_system)
    return await hop.run(lambda session, actor: mine.my_tasks(
        session, actor, on=on or city_today(), upcoming_days=upcoming_days, point=point, order=order,
        coord_system=coord_system))


@router.get("/tasks", response_model=Page[TaskOut], summary="Tasks in your area (filter by state, kind, place, due)")
def list_tasks(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    state: Annotated[list[DerivedState] | None, Query(max_length=5, description="Derived states (repeatable)")]
    = None,
    kind: TaskKind | None = None,
    community_id: Annotated[str | None, Query(max_length=32)] = None,
    resident_id: Annotated[str | None, Query(max_length=32)] = None,
    due_from: IsoDate | None = None,
    due_to: IsoDate | None = None,
    on: Annotated[IsoDate | None, ON] = None,
) -> Page[TaskOut]:
    today = on or city_today()
    stmt = tasks.list_tasks(actor, on=today, states=state or (), kind=kind, community_id=community_id,
                            resident_id=resident_id, due_from=due_from, due_to=due_to)
    rows, total = paginate(session, stmt, page)
    return Page(items=tasks.tasks_out(session, rows, today), total=total, limit=page.limit, offset=page.offset)


@router.post("/tasks", response_model=TaskOut, status_code=201, summary="Create a follow-up visit task",
             responses={409: {"description": "The resident is not registered (resident_not_registered)"}})
def create_task(body: TaskCreate, session: SessionDep, actor: FieldActor) -> TaskOut:
    task = tasks.create_follow_up(session, actor, body)
    return tasks.tasks_out(session, [task], city_today())[0]


@router.post("/tasks/generate", response_model=GenerateOut,
             summary="Generate the month's key-person visit tasks in your area (idempotent)")
def generate(body: GenerateIn, session: SessionDep, actor: SupervisorActor) -> GenerateOut:
    counts = tasks.generate_monthly(session, body.month, actor)
    audit.record(session, "tasks.generate", target_type="tasks", detail={"month": body.month, **counts.as_dict()})
    return GenerateOut(month=body.month, **counts.as_dict())


@router.get("/tasks/{task_id}", response_model=TaskOut, summary="One task")
def get_task(task_id: str, session: SessionDep, actor: StaffActor, on: Annotated[IsoDate | None, ON] = None) -> TaskOut:
    task = tasks.get_task(session, actor, task_id)
    return tasks.tasks_out(session, [task], on or city_today())[0]


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut, summary="Cancel an open task (send its version)",
             responses={403: {"description": "A worker cancelling a task that is not their own follow-up "
                                             "(task_cancel_forbidden)"},
                        409: {"description": "Done or cancelled already (task_closed), or stale_version"}})
def cancel_task(task_id: str, body: TaskCancel, session: SessionDep, actor: StaffActor) -> TaskOut:
    task = tasks.cancel_task(session, actor, task_id, body)
    return tasks.tasks_out(session, [task], city_today())[0]
