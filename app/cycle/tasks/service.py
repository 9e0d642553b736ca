"""The task list: the visits a worker owes, how they are created, completed, moved and cancelled.

Kinds (docs/visits.md, Tasks): `new_arrival_visit` (a resident registered through the API), the monthly
`key_person_monthly`, `follow_up` (from a visit or created by staff) and `verification` (left to the
monthly cycle). (resident, kind, period) is unique, so every generator is idempotent.

A visit with outcome `met` completes the matching open tasks of its resident (`on_visit_recorded`); a task
generated *after* a matching visit already arrived (a late or early visit from an offline phone) is created
already done. The register's events (app.people.events) keep open tasks with the resident: a move takes them
along, a departure or a merge cancels them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlmodel import Session, col

from app.core import context, events
from app.core.actor import Actor, Role
from app.core.config import get_settings
from app.core.errors import Conflict, Forbidden, NotFound, StaleVersion, Unprocessable
from app.core.types import city_today, new_id, utcnow
from app.cycle.models import Task, TaskKind, TaskState
from app.cycle.periods import month_bounds, month_of, monthly_due_date
from app.cycle.tasks.completion import complete, find_completing_visit
from app.cycle.tasks.schemas import (
    DerivedState,
    ResidentSummary,
    TaskCancel,
    TaskCreate,
    TaskOut,
)
from app.people import rules
from app.people.events import (
    BecameKeyPerson,
    ResidentLeft,
    ResidentMerged,
    ResidentMoved,
    ResidentRegistered,
    TransferAccepted,
)
from app.people.models import Resident, ResidentStatus
from app.visits.models import Visit, VisitOutcome
from app.visits.service import not_superseded

# Cancel reasons set by the system (staff give their own reason codes, see task_schemas.CancelReason).
CANCEL_RESIDENT_LEFT = "resident_left"
CANCEL_MERGED = "merged"


# --- creation ---------------------------------------------------------------------------------------------


def _existing(session: Session, resident_id: str, kind: TaskKind, period: str) -> Task | None:
    return session.execute(
        select(Task).where(col(Task.resident_id) == resident_id, col(Task.kind) == kind.value,
                           col(Task.period) == period)
    ).scalar_one_or_none()


def _new_task(session: Session, resident: Resident, kind: TaskKind, period: str, due: date, *,
              created_by: str | None = None, reason: str | None = None, note: str | None = None,
              source_visit_id: str | None = None, task_id: str | None = None, fresh: bool = False) -> Task | None:
    """Create a task unless (resident, kind, period) exists; complete it at once if a visit already did
    (`fresh`: the resident's record was created just now, so there is no such visit to look for)."""
    if _existing(session, resident.id, kind, period) is not None:
        return None
    task = Task(resident_id=resident.id, community_id=resident.community_id, area_path=resident.area_path,
                district_code=resident.district_code, kind=kind.value, period=period, due_date=due,
                created_by=created_by, reason=reason, note=note, source_visit_id=source_visit_id)
    if task_id is not None:  # a client-generated id (sync push)
        task.id = task_id
    session.add(task)
    session.flush()
    visit = None if fresh else find_completing_visit(session, task)
    if visit is not None:
        complete(session, task, visit)
        session.flush()
    return task


def _registered(resident: Resident) -> bool:
    return (resident.status == ResidentStatus.registered.value and resident.merged_into_id is None
            and resident.anonymised_at is None)


def _open_tasks(session: Session, resident_id: str) -> Sequence[Task]:
    return session.execute(
        select(Task).where(col(Task.resident_id) == resident_id, col(Task.state) == TaskState.open.value)
    ).scalars().all()


# --- what the register tells the task list (app.people.events, subscribed in `subscribe`) ----------------


def on_resident_registered(session: Session, event: ResidentRegistered) -> None:
    """A resident registered through the API (also a returning one) owes a new-arrival visit.

    Bulk import does not emit it: an imported register is existing stock, not new arrivals.
    """
    new_arrival_task(session, event.resident, fresh=event.fresh, registered_on=event.registered_on)


def new_arrival_task(session: Session, resident: Resident, *, fresh: bool = False,
                     registered_on: date | None = None) -> Task | None:
    """The new-arrival visit, owed from the registration's city date: today, or the day a phone registered them
    offline (`registered_on`), trusted as far back as the phone's visits are (VISIT_MAX_AGE_DAYS). Its period is
    that date, and a visit counts from then on (`completion.visit_completes`): the one the worker made right after
    registering someone offline, synced after midnight, too."""
    if not _registered(resident):
        return None
    settings = get_settings()
    today = city_today()
    day = today if registered_on is None else min(today, max(registered_on,
                                                              today - timedelta(days=settings.visit_max_age_days)))
    return _new_task(session, resident, TaskKind.new_arrival_visit, day.isoformat(),
                     day + timedelta(days=settings.new_arrival_visit_days), fresh=fresh)


def on_transfer_accepted(session: Session, event: TransferAccepted) -> None:
    """The receiving community owes the transferred resident a new-arrival visit (the move itself has
    already taken the open tasks along, through `on_resident_moved`)."""
    new_arrival_task(session, event.resident)


def on_resident_moved(session: Session, event: ResidentMoved) -> None:
    """Open tasks follow the resident to their new community (and shard)."""
    resident = event.resident
    for task in _open_tasks(session, resident.id):
        if (task.area_path, task.community_id, task.district_code) == (
                resident.area_path, resident.community_id, resident.district_code):
            continue
        task.area_path, task.community_id = resident.area_path, resident.community_id
        task.district_code = resident.district_code
        task.updated_at = utcnow()
        task.version += 1
        session.add(task)
    session.flush()


def cancel_open_tasks(session: Session, resident_id: str, reason: str) -> int:
    """Cancel a resident's open tasks, by whoever made the request (None: the system)."""
    tasks = _open_tasks(session, resident_id)
    for task in tasks:
        cancel(task, reason, context.current().actor_id)
        session.add(task)
    session.flush()
    return len(tasks)


def on_resident_left(session: Session, event: ResidentLeft) -> None:
    cancel_open_tasks(session, event.resident.id, CANCEL_RESIDENT_LEFT)


def on_resident_merged(session: Session, event: ResidentMerged) -> None:
    cancel_open_tasks(session, event.merged.id, CANCEL_MERGED)


def on_key_person(session: Session, event: BecameKeyPerson) -> None:
    """A resident who has just become a key person gets this month's visit task, if none exists."""
    resident = event.resident
    if not resident.key_person or not _registered(resident):
        return
    today = city_today()
    period = month_of(today)
    due = monthly_due_date(period)
    if due < today:
        # Past this month's due day: due by the month's end rather than overdue from the start.
        due = (datetime(today.year + today.month // 12, today.month % 12 + 1, 1) - timedelta(days=1)).date()
    _new_task(session, resident, TaskKind.key_person_monthly, period, due)


def subscribe() -> None:
    """Follow the register (called once when the application is wired)."""
    events.subscribe(ResidentRegistered, on_resident_registered)
    events.subscribe(TransferAccepted, on_transfer_accepted)
    events.subscribe(ResidentMoved, on_resident_moved)
    events.subscribe(ResidentLeft, on_resident_left)
    events.subscribe(ResidentMerged, on_resident_merged)
    events.subscribe(BecameKeyPerson, on_key_person)


def cancel(task: Task, reason: str, actor_id: str | None) -> None:
    task.state, task.cancel_reason, task.cancelled_by = TaskState.cancelled.value, reason, actor_id
    task.updated_at = utcnow()
    task.version += 1


# --- monthly generation -----------------------------------------------------------------------------------


@dataclass
class GenerateCounts:
    created: int = 0
    existing: int = 0
    completed_by_visits: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "existing": self.existing, "completed_by_visits": self.completed_by_visits}


class MonthOutOfRange(Unprocessable):
    code = "month_out_of_range"
    en = "Tasks can be generated for the past 12 months and the next month only."
    zh = "只能为过去 12 个月和下个月生成任务。"


def check_month(month: str, today: date) -> None:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1
    current = today.year * 12 + today.month - 1
    if not current - 12 <= index <= current + 1:
        raise MonthOutOfRange()


def generate_monthly(session: Session, month: str, actor: Actor | None) -> GenerateCounts:
    """One `key_person_monthly` task per registered key person (in the actor's scope) for `month`.

    Idempotent: a resident who has the month's task already is counted as `existing`. A task whose visit
    already arrived (a late or early visit) is created done and counted in `completed_by_visits` too.
    """
    check_month(month, city_today())
    residents = select(Resident).where(
        col(Resident.status) == ResidentStatus.registered.value, col(Resident.key_person).is_(True),
        col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))
    if actor is not None:
        residents = residents.where(actor.area_filter(col(Resident.area_path), col(Resident.district_code)))
    people = session.execute(residents.order_by(col(Resident.id))).scalars().all()
    kind = TaskKind.key_person_monthly.value
    have: set[str] = set()
    for chunk in _chunks([r.id for r in people]):
        have.update(session.execute(select(col(Task.resident_id)).where(
            col(Task.kind) == kind, col(Task.period) == month, col(Task.resident_id).in_(chunk))).scalars())
    visited = _first_visits_in_month(session, [r.id for r in people if r.id not in have], month)
    counts = GenerateCounts(existing=len(have))
    due = monthly_due_date(month)
    for resident in people:
        if resident.id in have:
            continue
        task = Task(resident_id=resident.id, community_id=resident.community_id, area_path=resident.area_path,
                    district_code=resident.district_code, kind=kind, period=month, due_date=due)
        visit = visited.get(resident.id)
        if visit is not None:
            task.state, task.completed_by_visit_id, task.completed_at = TaskState.done.value, visit, utcnow()
            counts.completed_by_visits += 1
        session.add(task)
        counts.created += 1
    session.flush()
    return counts


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _first_visits_in_month(session: Session, resident_ids: list[str], month: str) -> dict[str, str]:
    """resident id → the first stored visit that completes their monthly task for `month`."""
    start, end = month_bounds(month)
    found: dict[str, str] = {}
    for chunk in _chunks(resident_ids):
        rows = session.execute(
            select(col(Visit.resident_id), col(Visit.id)).where(
                col(Visit.resident_id).in_(chunk), col(Visit.outcome) == VisitOutcome.met.value,
                col(Visit.started_at) >= start, col(Visit.started_at) < end, not_superseded(col(Visit.id)))
            .order_by(col(Visit.started_at).desc(), col(Visit.id).desc())
        ).all()
        for resident_id, visit_id in rows:
            found[resident_id] = visit_id  # the earliest wins (rows come latest first)
    return found


# --- reading ----------------------------------------------------------------------------------------------


class TaskNotFound(NotFound):
    pass


class TaskCancelForbidden(Forbidden):
    code = "task_cancel_forbidden"
    en = "Workers may cancel only the follow-ups they created; ask a supervisor."
    zh = "社区专干只能取消自己创建的随访任务，请联系主管。"


class TaskClosed(Conflict):
    code = "task_closed"
    en = "The task is already done or cancelled."
    zh = "该任务已完成或已取消。"


class ResidentNotRegistered(Conflict):
    code = "resident_not_registered"
    en = "Tasks are only for residents who are currently registered."
    zh = "只能为当前在册的人员创建任务。"


def derived_state(task: Task, on: date) -> DerivedState:
    return state_on(task.state, task.due_date, on)


def state_on(state: str, due_date: date, on: date) -> DerivedState:
    """A task's state as the API shows it: an open task is open, due or overdue by the date."""
    if state != TaskState.open.value:
        return DerivedState(state)
    if due_date < on:
        return DerivedState.overdue
    return DerivedState.due if due_date == on else DerivedState.open


def state_condition(state: DerivedState, on: date) -> ColumnElement[bool]:
    if state in (DerivedState.done, DerivedState.cancelled):
        return col(Task.state) == state.value
    is_open = col(Task.state) == TaskState.open.value
    if state is DerivedState.overdue:
        return and_(is_open, col(Task.due_date) < on)
    if state is DerivedState.due:
        return and_(is_open, col(Task.due_date) == on)
    return and_(is_open, col(Task.due_date) > on)


def scoped(actor: Actor) -> Select[Any]:
    return select(Task).where(actor.area_filter(col(Task.area_path), col(Task.district_code)))


def list_tasks(actor: Actor, *, on: date, states: Sequence[DerivedState] = (), kind: TaskKind | None = None,
               community_id: str | None = None, resident_id: str | None = None, due_from: date | None = None,
               due_to: date | None = None) -> Select[Any]:
    stmt = scoped(actor)
    if states:
        stmt = stmt.where(or_(*(state_condition(s, on) for s in set(states))))
    if kind is not None:
        stmt = stmt.where(col(Task.kind) == kind.value)
    if community_id:
        stmt = stmt.where(col(Task.community_id) == community_id)
    if resident_id:
        stmt = stmt.where(col(Task.resident_id) == resident_id)
    if due_from is not None:
        stmt = stmt.where(col(Task.due_date) >= due_from)
    if due_to is not None:
        stmt = stmt.where(col(Task.due_date) <= due_to)
    return stmt.order_by(col(Task.due_date), col(Task.id))


def get_task(session: Session, actor: Actor, task_id: str, *, for_update: bool = False) -> Task:
    stmt = scoped(actor).where(col(Task.id) == task_id)
    if for_update:
        stmt = stmt.with_for_update()
    task = session.execute(stmt).scalar_one_or_none()
    if task is None:
        raise TaskNotFound()
    return task


def summary(resident: Resident, on: date) -> ResidentSummary:
    return resident_summary(resident.id, resident.name, resident.sex, resident.birth_date, resident.key_person,
                            resident.phone, on)


def resident_summary(resident_id: str, name: str, sex: str, birth_date: date, key_person: bool, phone: str | None,
                     on: date) -> ResidentSummary:
    """What a task shows of its resident: age on the date, the phone masked."""
    return ResidentSummary.model_validate(
        resident_summary_values(resident_id, name, sex, birth_date, key_person, phone, on))


def resident_summary_values(resident_id: str, name: str, sex: str, birth_date: date, key_person: bool,
                            phone: str | None, on: date) -> dict[str, Any]:
    """`resident_summary`'s fields (a long list validates them all at once: `GET /me/tasks`)."""
    return {"id": resident_id, "name": name, "sex": sex, "age": rules.age_on(birth_date, on),
            "key_person": key_person, "phone_masked": rules.mask_phone(phone)}


def task_out(task: Task, on: date, resident: Resident | None = None) -> TaskOut:
    return TaskOut.model_validate({**task.model_dump(), "state": derived_state(task, on),
                                   "resident": summary(resident, on) if resident is not None else None})


def tasks_out(session: Session, tasks: Sequence[Task], on: date) -> list[TaskOut]:
    ids = sorted({t.resident_id for t in tasks if t.resident_id is not None})
    residents = {r.id: r for r in session.execute(select(Resident).where(col(Resident.id).in_(ids))).scalars()}
    return [task_out(t, on, residents.get(t.resident_id) if t.resident_id else None) for t in tasks]


# --- staff actions ----------------------------------------------------------------------------------------


def create_follow_up(session: Session, actor: Actor, body: TaskCreate, *, task_id: str | None = None) -> Task:
    """A follow-up task; `task_id`: a client-generated id (sync push), also the task's period."""
    resident = session.execute(
        select(Resident).where(col(Resident.id) == body.resident_id,
                               actor.area_filter(col(Resident.area_path), col(Resident.district_code)))
    ).scalar_one_or_none()
    if resident is None:
        raise NotFound()
    if not _registered(resident):
        raise ResidentNotRegistered()
    task = _new_task(session, resident, TaskKind.follow_up, task_id or new_id(), body.due_date,
                     created_by=actor.user_id, reason=body.reason.value, note=body.note, task_id=task_id)
    assert task is not None  # a fresh period never exists
    return task


def cancel_task(session: Session, actor: Actor, task_id: str, body: TaskCancel) -> Task:
    task = get_task(session, actor, task_id, for_update=True)
    if actor.role == Role.worker and (task.kind != TaskKind.follow_up.value or task.created_by != actor.user_id):
        raise TaskCancelForbidden()
    if task.state != TaskState.open.value:
        raise TaskClosed()
    if task.version != body.version:
        raise StaleVersion({"current_version": task.version})
    cancel(task, body.reason.value, actor.user_id)
    session.add(task)
    session.flush()
    return task
