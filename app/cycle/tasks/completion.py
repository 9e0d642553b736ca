"""Tasks completed by visits, and the follow-ups visits ask for (docs/visits.md, "Tasks").

A visit with outcome `met` completes the matching open tasks of its resident; a task generated *after* a
matching visit already arrived (a late or early visit from an offline phone) is created already done
(`find_completing_visit`). The visits domain tells the task list what it wrote (`VisitsWritten`) and asks it
which tasks a visit completed or created (`VisitTasksWanted`); it never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.bulk import BulkWriter, table_of
from app.core.lean import Lean, run
from app.core.queries import ByKey, among, chunks
from app.core.types import UTCDateTime, city_date, new_id, utcnow
from app.cycle.models import Task, TaskKind, TaskState
from app.cycle.periods import day_start, month_bounds, month_of
from app.ledger import audit, changes
from app.visits.events import VisitsWritten, VisitTasksWanted, Written
from app.visits.models import Visit, VisitMode, VisitOutcome
from app.visits.service import not_superseded

# Kinds a visit can complete (verification is settled by the monthly cycle).
COMPLETED_BY_VISITS = (TaskKind.new_arrival_visit.value, TaskKind.key_person_monthly.value, TaskKind.follow_up.value)


class VisitLike(Protocol):
    """What task completion reads of a visit (a `Visit`, or the values of one being written in bulk)."""

    id: str
    resident_id: str
    mode: str
    outcome: str
    started_at: datetime


class TaskLike(Protocol):
    """What completion reads of a task (a `Task`, or an `OpenTask` of a batch)."""

    @property
    def resident_id(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def source_visit_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


def visit_completes(task: TaskLike, visit: VisitLike, source_started: datetime | None = None) -> bool:
    """Does `visit` discharge `task`? The rules of docs/visits.md."""
    if visit.outcome != VisitOutcome.met.value or visit.resident_id != task.resident_id:
        return False
    if task.kind == TaskKind.new_arrival_visit.value:
        return visit.mode == VisitMode.in_person.value and city_date(visit.started_at) >= date.fromisoformat(
            task.period)
    if task.kind == TaskKind.key_person_monthly.value:
        return month_of(city_date(visit.started_at)) == task.period
    if task.kind == TaskKind.follow_up.value:
        if visit.id == task.source_visit_id:
            return False
        if source_started is not None:
            return visit.started_at > source_started
        return visit.started_at >= task.created_at
    return False  # verification: settled by the monthly cycle


def complete(session: Session, task: Task, visit: VisitLike) -> None:
    now = utcnow()
    task.state, task.completed_by_visit_id, task.completed_at = TaskState.done.value, visit.id, now
    task.updated_at = now
    task.version += 1
    session.add(task)


def _source_started(session: Session, task: Task) -> datetime | None:
    if task.kind != TaskKind.follow_up.value or task.source_visit_id is None:
        return None
    source = session.get(Visit, task.source_visit_id)
    return source.started_at if source is not None else None


def find_completing_visit(session: Session, task: Task) -> Visit | None:
    """A visit already stored that discharges `task` (it arrived before the task was generated)."""
    conditions = [col(Visit.resident_id) == task.resident_id, col(Visit.outcome) == VisitOutcome.met.value,
                  not_superseded(col(Visit.id))]
    if task.kind == TaskKind.new_arrival_visit.value:
        conditions += [col(Visit.mode) == VisitMode.in_person.value,
                       col(Visit.started_at) >= day_start(date.fromisoformat(task.period))]
    elif task.kind == TaskKind.key_person_monthly.value:
        start, end = month_bounds(task.period)
        conditions += [col(Visit.started_at) >= start, col(Visit.started_at) < end]
    elif task.kind == TaskKind.follow_up.value:
        source = _source_started(session, task)
        if source is not None:
            conditions += [col(Visit.started_at) > source, col(Visit.id) != task.source_visit_id]
        else:
            conditions.append(col(Visit.started_at) >= task.created_at)
    else:
        return None
    return session.execute(
        select(Visit).where(and_(*conditions)).order_by(col(Visit.started_at), col(Visit.id)).limit(1)
    ).scalar_one_or_none()


@dataclass
class Facts:
    """What task completion reads of a visit being written (a VisitLike)."""

    id: str
    resident_id: str
    mode: str
    outcome: str
    started_at: datetime


# The lookups of every visit written, built once (ByKey); plain columns on the connection (lean), no entities.
def _open_tasks(what: tuple[Any, ...], key: Any) -> Any:
    return select(*what).where(key(col(Task.resident_id)), col(Task.state) == TaskState.open.value,
                               or_(*(col(Task.kind) == kind for kind in COMPLETED_BY_VISITS)))


_TASK = (col(Task.id), col(Task.resident_id), col(Task.kind), col(Task.period), col(Task.state),
         col(Task.source_visit_id), col(Task.created_at), col(Task.area_path), col(Task.district_code))
# Locked as read (the task a concurrent visit completes waits for this transaction), in due order.
_OPEN_TASKS = ByKey(lambda key: _open_tasks(_TASK, key).order_by(col(Task.due_date), col(Task.id)).with_for_update(),
                    lean=True)
_STARTED = ByKey(lambda key: select(col(Visit.id), col(Visit.started_at)).where(key(col(Visit.id))), lean=True)
_FOLLOW_UPS = ByKey(lambda key: select(col(Task.resident_id), col(Task.period)).where(
    col(Task.kind) == TaskKind.follow_up.value, key(col(Task.period))), lean=True)
_MET_SINCE = ByKey(lambda key: select(
    col(Visit.id), col(Visit.resident_id), col(Visit.mode), col(Visit.outcome), col(Visit.started_at))
    .where(key(col(Visit.resident_id)), col(Visit.outcome) == VisitOutcome.met.value,
           col(Visit.started_at) > bindparam("since", type_=UTCDateTime), not_superseded(col(Visit.id))), lean=True)
# What completing changes (`complete` for an entity): one executemany for a batch's stored tasks.
_DONE_FIELDS = ["completed_at", "completed_by_visit_id", "state", "updated_at", "version"]
_COMPLETE = Lean(update(Task).where(col(Task.id) == bindparam("task_id")).values(
    state=TaskState.done.value, completed_by_visit_id=bindparam("visit_id"), completed_at=bindparam("at"),
    updated_at=bindparam("at"), version=col(Task.version) + 1))


@dataclass
class OpenTask:
    """An open task a visit of the batch may complete: a stored one (read, locked) or a follow-up created by an
    earlier visit of the batch (inserted at the end). What `visit_completes` reads of a Task, and its area."""

    id: str
    resident_id: str
    kind: str
    period: str
    state: str
    source_visit_id: str | None
    created_at: datetime
    area_path: str
    district_code: str
    row: dict[str, Any] | None = None  # a follow-up created here: its row, to insert
    completed_by: str | None = None  # a stored task completed here: by this visit


def complete_and_follow_up(session: Session, actor: Actor, written: list[Written]) -> None:
    """Complete the open tasks the visits discharge and create the follow-ups asked for, in item order —
    the same outcome as recording the visits one by one. Plain rows, as the visits themselves: the stored tasks
    completed in one executemany, the follow-ups in bulk, and their change-log rows from the values in hand."""
    met = {w.visit["resident_id"] for w in written if w.visit["outcome"] == VisitOutcome.met.value}
    conn = session.connection()  # flushed (`recording._insert`): nothing ORM is pending
    open_tasks: dict[str, list[OpenTask]] = {}
    for chunk in chunks(met):
        for row in run(conn, *_OPEN_TASKS(chunk)):
            open_tasks.setdefault(row.resident_id, []).append(OpenTask(*row))
    sources = {t.source_visit_id for ts in open_tasks.values() for t in ts
               if t.kind == TaskKind.follow_up.value and t.source_visit_id is not None}
    started: dict[str, datetime] = {}
    for chunk in chunks(s for s in sources if s is not None):
        started.update((visit_id, at) for visit_id, at in run(conn, *_STARTED(chunk)))
    asks = [w for w in written if w.follow_up is not None and w.registered]
    existing, stored = _follow_up_context(session, asks, {w.visit["id"] for w in written})
    earlier: dict[str, list[Facts]] = {}  # met visits of this batch so far, by resident
    done: list[OpenTask] = []
    created: list[OpenTask] = []
    now = utcnow()
    for w in written:
        v = w.visit
        facts = Facts(v["id"], v["resident_id"], v["mode"], v["outcome"], v["started_at"])
        if v["outcome"] == VisitOutcome.met.value:
            for task in open_tasks.get(v["resident_id"], []):
                source = started.get(task.source_visit_id) if (
                    task.kind == TaskKind.follow_up.value and task.source_visit_id is not None) else None
                if task.state == TaskState.open.value and visit_completes(task, facts, source):
                    _done(task, facts.id, now, done)
                    w.tasks_completed.append(task.id)
        if w.follow_up is not None and w.registered and (v["resident_id"], v["id"]) not in existing:
            task = _follow_up(actor, w, now)
            created.append(task)
            w.tasks_created.append(task.id)
            # Done at once by a visit stored before it (earlier in time, or earlier in this batch), as
            # tasks.find_completing_visit would find it; otherwise open for the visits still to come.
            by = min((c for c in [*stored.get(v["resident_id"], []), *earlier.get(v["resident_id"], [])]
                      if c.started_at > v["started_at"] and c.id != v["id"]),
                     key=lambda c: (c.started_at, c.id), default=None)
            if by is not None:
                _done(task, by.id, now, done)
            else:
                open_tasks.setdefault(v["resident_id"], []).append(task)
                started[v["id"]] = v["started_at"]
        if v["outcome"] == VisitOutcome.met.value:
            earlier.setdefault(v["resident_id"], []).append(facts)
    _write(session, done, created, now)


def _done(task: OpenTask, visit_id: str, now: datetime, done: list[OpenTask]) -> None:
    task.state = TaskState.done.value
    if task.row is not None:  # created here: inserted done (created, then completed: version 2, as `complete`)
        task.row.update(state=TaskState.done.value, completed_by_visit_id=visit_id, completed_at=now,
                        updated_at=now, version=task.row["version"] + 1)
    else:
        task.completed_by = visit_id
        done.append(task)


def _write(session: Session, done: list[OpenTask], created: list[OpenTask], now: datetime) -> None:
    """The batch's task rows, with the audit events and change-log rows the ORM's flush listeners would make."""
    tasks = table_of(Task)
    if created:
        rows = [t.row for t in created if t.row is not None]
        BulkWriter(session).write_dicts(tasks, rows)
        for row in rows:
            audit.record(session, "tasks.create", target_type="tasks", target_id=row["id"],
                         fields=[k for k, v in row.items() if v is not None], area_path=row["area_path"],
                         district_code=row["district_code"])
        changes.mark_new(session, tasks, [(t.id, t.area_path, t.district_code) for t in created])
    if done:
        _COMPLETE.many(session.connection(), [{"task_id": t.id, "visit_id": t.completed_by, "at": now} for t in done])
        for t in done:
            audit.record(session, "tasks.update", target_type="tasks", target_id=t.id, fields=_DONE_FIELDS,
                         area_path=t.area_path, district_code=t.district_code)
        changes.mark_new(session, tasks, [(t.id, t.area_path, t.district_code) for t in done], fields=_DONE_FIELDS)
        # An entity of one of these tasks read earlier in this transaction (a resident registered in the same
        # push made its arrival task) would be stale: its next read loads the row again.
        for t in done:
            entity = session.identity_map.get(identity_key(Task, t.id))
            if entity is not None:
                session.expire(entity)


def _follow_up_context(session: Session, asks: list[Written],
                       batch_ids: set[str]) -> tuple[set[tuple[str, str]], dict[str, list[Facts]]]:
    """For the visits asking for a follow-up: those whose task exists already, and the met visits stored
    before this batch that may complete them (not superseded, started after the earliest of them)."""
    if not asks:
        return set(), {}
    conn = session.connection()  # flushed: nothing was written since the visits' insert
    existing: set[tuple[str, str]] = set()  # (resident, period): the follow-up of a visit has its id as period
    for chunk in chunks(w.visit["id"] for w in asks):
        existing.update((r, p) for r, p in run(conn, *_FOLLOW_UPS(chunk)))
    since = min(w.visit["started_at"] for w in asks)
    stored: dict[str, list[Facts]] = {}
    for chunk in chunks(w.visit["resident_id"] for w in asks):
        for visit_id, resident_id, mode, outcome, at in run(conn, *_MET_SINCE(chunk, since=since)):
            if visit_id not in batch_ids:
                stored.setdefault(resident_id, []).append(Facts(visit_id, resident_id, mode, outcome, at))
    return existing, stored


def _follow_up(actor: Actor, w: Written, now: datetime) -> OpenTask:
    """The follow-up task a visit asks for, in the resident's area (inserted at the end of the batch)."""
    assert w.follow_up is not None
    v = w.visit
    community_id, area_path, district_code = w.resident_area
    task_id = new_id()
    row = {"id": task_id, "resident_id": v["resident_id"], "dwelling_id": None, "community_id": community_id,
           "area_path": area_path, "district_code": district_code, "kind": TaskKind.follow_up.value,
           "period": v["id"], "due_date": w.follow_up[0], "state": TaskState.open.value, "reason": w.follow_up[1],
           "note": None, "created_by": actor.user_id, "source_visit_id": v["id"], "completed_by_visit_id": None,
           "completed_at": None, "cancelled_by": None, "cancel_reason": None, "created_at": now, "updated_at": now,
           "version": 1}
    return OpenTask(task_id, v["resident_id"], TaskKind.follow_up.value, v["id"], TaskState.open.value, v["id"], now,
                    area_path, district_code, row)


def on_visits_written(session: Session, event: VisitsWritten) -> None:
    complete_and_follow_up(session, event.actor, event.written)


def on_visit_tasks_wanted(session: Session, event: VisitTasksWanted) -> None:
    """The tasks each visit completed, and the follow-ups it created (for the visit's answer)."""
    for chunk in chunks(event.visit_ids):
        for task_id, done_by, source in session.execute(
            select(col(Task.id), col(Task.completed_by_visit_id), col(Task.source_visit_id))
            .where(among(col(Task.completed_by_visit_id), chunk) | among(col(Task.source_visit_id), chunk))
            .order_by(col(Task.id))
        ).all():
            if done_by in event.completed:
                event.completed[done_by].append(task_id)
            if source in event.created:
                event.created[source].append(task_id)


def subscribe() -> None:
    events.subscribe(VisitsWritten, on_visits_written)
    events.subscribe(VisitTasksWanted, on_visit_tasks_wanted)
