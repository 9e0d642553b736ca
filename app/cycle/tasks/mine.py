"""The worker's day (`GET /me/tasks`): open tasks in the caller's area due by a date, with what the phone needs
to go — the resident's summary, the dwelling's point, the distance from where the worker stands.

Every phone asks this at the start of a shift, so it reads plain columns (no ORM entities) through a statement
built once per scope and order (`Statements`), the date and the position bound as parameters
(docs/performance.md, issue 12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Date, Float, Select, bindparam, case, func, or_, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import Unprocessable
from app.core.lean import Lean
from app.core.queries import Statements, not_indexed
from app.cycle.assistance import service as assistance
from app.cycle.models import Task, TaskState
from app.cycle.tasks.schemas import CoordSystem, MyTask, MyTasks, MyTasksOrder
from app.cycle.tasks.service import resident_summary_values, state_on
from app.people.models import Resident
from app.places.models import Dwelling
from app.visits import geo

MY_TASKS_LIMIT = 500


class PointRequired(Unprocessable):
    code = "point_required"
    en = "Ordering by distance needs your position: give lat and lng."
    zh = "按距离排序需要提供当前位置（lat 和 lng）。"


class PointIncomplete(Unprocessable):
    code = "coordinates_incomplete"
    en = "Give both lat and lng, or neither."
    zh = "请同时提供纬度和经度，或都不提供。"


@dataclass(frozen=True)
class Point:
    lat: float  # WGS-84
    lng: float


def point_of(lat: float | None, lng: float | None, coord_system: CoordSystem) -> Point | None:
    """The caller's position in WGS-84 (a GCJ-02 point, as Chinese map SDKs give it, is converted)."""
    if lat is None and lng is None:
        return None
    if lat is None or lng is None:
        raise PointIncomplete()
    if coord_system is CoordSystem.gcj02:
        lat, lng = geo.gcj02_to_wgs84(lat, lng)
    return Point(lat, lng)


_COLUMNS: tuple[Any, ...] = (
    col(Task.id), col(Task.kind), col(Task.period), col(Task.state), col(Task.due_date), col(Task.reason),
    col(Task.note),
    col(Task.community_id), col(Task.version),
    col(Resident.id), col(Resident.name), col(Resident.sex), col(Resident.birth_date), col(Resident.key_person),
    col(Resident.phone),
    col(Dwelling.id), col(Dwelling.address), col(Dwelling.lat), col(Dwelling.lng),
)
_statements = Statements()


def _base(actor: Actor) -> Select[Any]:
    stmt: Select[Any] = (
        select(*_COLUMNS)
        .select_from(Task)
        # A reported arrival has no resident yet: its place is the dwelling the station reported.
        .outerjoin(Resident, col(Resident.id) == col(Task.resident_id))
        .outerjoin(Dwelling, col(Dwelling.id) == func.coalesce(col(Resident.dwelling_id), col(Task.dwelling_id)))
        # The area's own index (`ix_tasks_area_due`), not the district's, on SQLite too (`not_indexed`).
        .where(actor.area_filter(col(Task.area_path), not_indexed(col(Task.district_code))),
               col(Task.state) == TaskState.open.value,
               col(Task.due_date) <= bindparam("due_by", type_=Date))
    )
    return stmt


def _ordered(actor: Actor, order: MyTasksOrder, limit: int) -> Select[Any]:
    base = _base(actor).limit(limit)
    unlocated = case((or_(col(Dwelling.lat).is_(None), col(Dwelling.lng).is_(None)), 1), else_=0)
    if order is MyTasksOrder.distance:
        # Equirectangular ranking, exact enough within a city and plain arithmetic on both databases.
        d_lat = col(Dwelling.lat) - bindparam("lat", type_=Float)
        d_lng = col(Dwelling.lng) - bindparam("lng", type_=Float)
        return base.order_by(unlocated, d_lat * d_lat + d_lng * d_lng * bindparam("squeeze", type_=Float),
                             col(Task.due_date), col(Task.id))
    return base.order_by(col(Task.due_date), unlocated, col(Dwelling.address), col(Task.id))


def my_tasks(session: Session, actor: Actor, *, on: date, upcoming_days: int, point: Point | None,
             order: MyTasksOrder, coord_system: CoordSystem) -> MyTasks:
    """Open tasks in the caller's area due by `on` (+ `upcoming_days`), with what the phone needs to go."""
    if order is MyTasksOrder.distance and point is None:
        raise PointRequired()
    params: dict[str, Any] = {"due_by": on + timedelta(days=upcoming_days)}
    if order is MyTasksOrder.distance and point is not None:
        params.update(lat=point.lat, lng=point.lng, squeeze=math.cos(math.radians(point.lat)) ** 2)
    # Keyed by the scope itself (frozen, compared by value): the statement's area condition is the scope's. The
    # very same statement object each time: SQLAlchemy then reuses its cache key and result map as well.
    limit = MY_TASKS_LIMIT
    stmt = _statements.get((actor.scope, order, limit), lambda: Lean(_ordered(actor, order, limit)))
    conn = session.connection()
    # One validation of the whole list (pydantic's core, once) rather than three models built per task.
    items = _ITEMS.validate_python([_item(row, on, point, coord_system) for row in stmt.rows(conn, params)])
    # Counted only when the list is cut: a worker's day is well under the limit.
    total = len(items) if len(items) < limit else conn.execute(
        select(func.count()).select_from(_base(actor).subquery()), params).scalar_one()
    return MyTasks(on=on, coord_system=coord_system, items=items, total=total, limit=limit,
                   truncated=total > len(items),
                   assistance=assistance.open_for_tasks(session, actor, on, upcoming_days))


_ITEMS = TypeAdapter(list[MyTask])


def _item(row: Any, on: date, point: Point | None, coord_system: CoordSystem) -> dict[str, Any]:
    """A task's fields, validated with the others (`_ITEMS`)."""
    (task_id, kind, period, state, due, reason, note, community_id, version,
     resident_id, name, sex, birth_date, key_person, phone, dwelling_id, address, lat, lng) = row
    resident = None if resident_id is None else resident_summary_values(resident_id, name, sex, birth_date,
                                                                        key_person, phone, on)
    dwelling = None
    distance = None
    if dwelling_id is not None:
        shown_lat, shown_lng = lat, lng
        if lat is not None and lng is not None:
            if coord_system is CoordSystem.gcj02:
                shown_lat, shown_lng = geo.wgs84_to_gcj02(lat, lng)
            if point is not None:
                distance = round(geo.haversine_m(point.lat, point.lng, lat, lng), 1)
        dwelling = {"id": dwelling_id, "address": address, "lat": shown_lat, "lng": shown_lng}
    return {"id": task_id, "kind": kind, "period": period, "due_date": due, "state": state_on(state, due, on),
            "reason": reason, "note": note, "community_id": community_id, "version": version, "resident": resident,
            "dwelling": dwelling, "distance_m": distance}
