"""Worker activity for supervisors: per worker (or rolled up by community, street, district) and period —
visits by mode, tasks on time and overdue, the flagged share, and each worker's devices' sync health.

- Visits: started in the period, in scope (and the division asked for); a visit superseded by a correction
  is not counted (its correction is). A visit is *flagged* when the quality rules found anything on it
  (score > 0, app/audit/quality).
- Tasks: due in the period, not cancelled. `on_time`: done on or before the due date (city date of
  completion); `late`: done after it; `overdue`: still open past it; `open`: open and not yet due. Tasks
  belong to places, not people: a worker's are those in the divisions assigned to them (two workers sharing a
  community both show its tasks); a community's, street's or district's those lying there.
- Sync health: every device the worker synced from (sync_devices): last sync, cursor lag, pushes rejected,
  clock skew, app version.

- Verification coverage (the monthly cycle): the share of the period's months' verifications recorded in the
  group's area; None where no month was opened.

- Report timeliness (the monthly reports): of the communities in the group's area, for the period's months that
  have ended, the reports due, submitted (or approved) and first submitted by their due day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from app.audit.deps import Period
from app.audit.quality import rules
from app.audit.quality import service as quality
from app.auth.models import User, UserScope
from app.core.actor import Actor, Role
from app.core.queries import among, starts_with
from app.core.types import city_date, city_today
from app.cycle.models import Task, TaskState
from app.cycle.reports.models import FROZEN, ReportSubmission
from app.cycle.verification.models import Verification
from app.places.models import Division
from app.sync.models import SyncDevice
from app.visits.models import Visit

CHUNK = 5000


@dataclass
class Figures:
    in_person: int = 0
    phone: int = 0
    flagged: int = 0
    tasks_due: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    open: int = 0

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Group:
    id: str
    level: str  # worker, community, street, district
    code: str | None
    name: str
    figures: Figures = field(default_factory=Figures)
    devices: list[dict[str, Any]] | None = None


def _superseded(session: Session, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(session.execute(select(col(Visit.corrects_visit_id)).where(
            among(col(Visit.corrects_visit_id), ids[start:start + CHUNK]))).scalars())
    return found


def _tasks(session: Session, actor: Actor, period: Period, area: str | None) -> list[tuple[str, str, Figures]]:
    """(community id, area path, the task's figures) for every task due in the period."""
    stmt = select(col(Task.community_id), col(Task.area_path), col(Task.state), col(Task.due_date),
                  col(Task.completed_at)).where(
        actor.area_filter(col(Task.area_path), col(Task.district_code)), col(Task.due_date) >= period.start,
        col(Task.due_date) <= period.end, col(Task.state) != TaskState.cancelled.value)
    if area is not None:
        stmt = stmt.where(starts_with(col(Task.area_path), area))
    today = city_today()
    out = []
    for community_id, area_path, state, due, completed_at in session.execute(stmt):
        f = Figures(tasks_due=1)
        if state == TaskState.done.value:
            done_on: date = city_date(completed_at) if completed_at is not None else due
            f.on_time, f.late = (1, 0) if done_on <= due else (0, 1)
        elif due < today:
            f.overdue = 1
        else:
            f.open = 1
        out.append((community_id, area_path, f))
    return out


def _visits(session: Session, actor: Actor, period: Period, area: str | None) -> list[tuple[str, str, Figures]]:
    """(worker id, community id, the visit's figures) for every counted visit."""
    items = quality.scored_visits(session, actor, period, quality.Filters(area=area), worst_first=False)
    superseded = _superseded(session, [i.id for i in items])
    out = []
    for item in items:
        if item.id in superseded:
            continue
        mode = item.row[rules.MODE]
        f = Figures(in_person=int(mode == "in_person"), phone=int(mode == "phone"), flagged=int(item.score > 0))
        out.append((item.worker_id, item.community_id, f))
    return out


def activity(session: Session, actor: Actor, period: Period, area: str | None,
             level: str) -> tuple[list[Group], Figures]:
    """The groups, and the figures of the whole area (tasks counted once, however many workers share them)."""
    visits = _visits(session, actor, period, area)
    tasks = _tasks(session, actor, period, area)
    totals = Figures()
    for _, _, f in visits + tasks:
        totals.add(f)
    if level == "worker":
        return _by_worker(session, actor, area, visits, tasks), totals
    return _by_place(session, actor, area, level, visits, tasks), totals


def _by_place(session: Session, actor: Actor, area: str | None, level: str, visits: list[tuple[str, str, Figures]],
              tasks: list[tuple[str, str, Figures]]) -> list[Group]:
    stmt = select(Division).where(col(Division.level) == "community", actor.area_filter(col(Division.path)))
    if area is not None:
        stmt = stmt.where(starts_with(col(Division.path), area))
    communities = {d.id: d for d in session.execute(stmt).scalars()}
    seen = {c for _, c, _ in visits} | {c for c, _, _ in tasks}
    missing = sorted(seen - set(communities))
    if missing:  # visits recorded in a community now outside the listed ones (relocated divisions)
        communities.update((d.id, d) for d in session.execute(select(Division).where(
            among(col(Division.id), missing))).scalars())
    parents = _divisions(session, {d.parent_id for d in communities.values() if d.parent_id})
    grand = _divisions(session, {d.parent_id for d in parents.values() if d.parent_id})

    def owner(community_id: str) -> Division | None:
        community = communities.get(community_id)
        if community is None or level == "community":
            return community
        street = parents.get(community.parent_id or "")
        return street if level == "street" or street is None else grand.get(street.parent_id or "")

    groups: dict[str, Group] = {}
    for community_id in communities:
        d = owner(community_id)
        if d is not None:
            groups.setdefault(d.id, Group(d.id, level, d.code, d.name))
    for _, community_id, f in visits + [(None, c, f) for c, _, f in tasks]:
        d = owner(community_id)
        if d is not None:
            groups.setdefault(d.id, Group(d.id, level, d.code, d.name)).figures.add(f)
    return sorted(groups.values(), key=lambda g: (g.code or "", g.id))


def _divisions(session: Session, ids: set[str]) -> dict[str, Division]:
    if not ids:
        return {}
    return {d.id: d for d in session.execute(select(Division).where(among(col(Division.id), sorted(ids)))).scalars()}


def _by_worker(session: Session, actor: Actor, area: str | None, visits: list[tuple[str, str, Figures]],
               tasks: list[tuple[str, str, Figures]]) -> list[Group]:
    scopes = select(col(UserScope.user_id), col(UserScope.area_path)).join(
        User, col(User.id) == col(UserScope.user_id)).where(
        col(User.role) == Role.worker.value, col(User.active), actor.area_filter(col(UserScope.area_path)))
    if area is not None:
        scopes = scopes.where(starts_with(col(UserScope.area_path), area))
    paths: dict[str, list[str]] = defaultdict(list)  # area path -> workers assigned there
    assigned: set[str] = set()
    for user_id, path in session.execute(scopes):
        paths[path].append(user_id)
        assigned.add(user_id)
    ids = assigned | {w for w, _, _ in visits}
    users = {u.id: u for u in session.execute(select(User).where(among(col(User.id), sorted(ids)))).scalars()} \
        if ids else {}
    groups = {uid: Group(uid, "worker", u.username, u.display_name, devices=[]) for uid, u in users.items()}
    for worker_id, _, f in visits:
        if worker_id in groups:
            groups[worker_id].figures.add(f)
    for _, area_path, f in tasks:
        owners: set[str] = set()
        for end in range(1, len(area_path)):
            if area_path[end] == "/":
                owners.update(paths.get(area_path[:end + 1], ()))
        for worker_id in owners:
            groups[worker_id].figures.add(f)
    for device in session.execute(select(SyncDevice).where(among(col(SyncDevice.user_id), sorted(groups))).order_by(
            col(SyncDevice.first_seen_at))).scalars() if groups else ():
        groups[device.user_id].devices.append(device_health(device))  # type: ignore[union-attr]
    return sorted(groups.values(), key=lambda g: (g.code or "", g.id))


def device_health(device: SyncDevice) -> dict[str, Any]:
    moments = [m for m in (device.last_pull_at, device.last_push_at) if m is not None]
    return {"id": device.id, "device_id": device.device_id, "app_version": device.app_version,
            "last_sync_at": max(moments) if moments else None, "last_pull_at": device.last_pull_at,
            "last_push_at": device.last_push_at, "cursor_lag": device.cursor_lag, "pulls": device.pulls,
            "pushes": device.pushes, "rejected_total": device.rejected_total, "last_rejected": device.last_rejected,
            "clock_skew_ms": device.clock_skew_ms, "revoked": device.revoked_at is not None}


# --- from the monthly cycle ---------------------------------------------------------------------------------


def verification_coverage(session: Session, groups: list[Group], period: Period) -> dict[str, float | None]:
    """The share of the verifications of the period's months recorded, per group (the monthly cycle): over the
    group's area — a place's path, or the areas assigned to a worker. None where no month was opened there."""
    months = _months(period)
    paths = _group_paths(session, groups)
    prefixes = sorted({p for ps in paths.values() for p in ps})
    if not prefixes:
        return {}
    per_path: list[tuple[str, int, int]] = []
    for start in range(0, len(prefixes), 100):
        chunk = prefixes[start:start + 100]
        per_path += [(str(a), int(n), int(done)) for a, n, done in session.execute(
            select(col(Verification.area_path), func.count(), func.count(col(Verification.outcome))).where(
                col(Verification.month).in_(months), or_(*(starts_with(col(Verification.area_path), p)
                                                           for p in chunk)))
            .group_by(col(Verification.area_path)))]
    out: dict[str, float | None] = {}
    for group_id, group_paths in paths.items():
        total = done = 0
        for area, n, recorded in per_path:
            if any(area.startswith(p) for p in group_paths):
                total, done = total + n, done + recorded
        out[group_id] = round(done / total, 4) if total else None
    return out


def _months(period: Period) -> list[str]:
    first, last = period.start.year * 12 + period.start.month - 1, period.end.year * 12 + period.end.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(first, last + 1)]


def _group_paths(session: Session, groups: list[Group]) -> dict[str, list[str]]:
    """group id → the area paths it covers (a worker's assigned areas; a place's own path)."""
    workers = [g.id for g in groups if g.level == "worker"]
    places = [g.id for g in groups if g.level != "worker"]
    paths: dict[str, list[str]] = defaultdict(list)
    if workers:
        for user_id, path in session.execute(select(col(UserScope.user_id), col(UserScope.area_path)).where(
                among(col(UserScope.user_id), workers))):
            paths[user_id].append(path)
    if places:
        for division_id, path in session.execute(select(col(Division.id), col(Division.path)).where(
                among(col(Division.id), places))):
            paths[division_id].append(path)
    return paths


def report_timeliness(session: Session, groups: list[Group], period: Period) -> dict[str, dict[str, Any] | None]:
    """The monthly reports (月报告, docs/reports.md) of the communities in each group's area for the period's
    months that have ended: how many were due, submitted (or approved), and first submitted by their due day.
    None where the period holds no ended month or the area no community."""
    current = city_today().strftime("%Y-%m")
    months = [m for m in _months(period) if m < current]
    paths = _group_paths(session, groups)
    if not months or not paths:
        return {}
    prefixes = sorted({p for ps in paths.values() for p in ps})
    communities: list[str] = []
    sent: dict[str, tuple[int, int]] = {}  # community path → (submitted, on time)
    counted = col(ReportSubmission.state).in_(FROZEN)
    for start in range(0, len(prefixes), 100):
        inside = [starts_with(col(Division.path), p) for p in prefixes[start:start + 100]]
        communities += session.execute(select(col(Division.path)).where(
            col(Division.level) == "community", or_(*inside))).scalars().all()
        for path, n, on_time in session.execute(
                select(col(Division.path), func.count(col(ReportSubmission.id)),
                       func.count(col(ReportSubmission.id)).filter(col(ReportSubmission.late).is_(False)))
                .join(ReportSubmission, col(ReportSubmission.community_id) == col(Division.id))
                .where(col(ReportSubmission.month).in_(months), counted, or_(*inside))
                .group_by(col(Division.path))):
            sent[str(path)] = (int(n), int(on_time))
    out: dict[str, dict[str, Any] | None] = {}
    for group_id, group_paths in paths.items():
        mine = {c for c in communities if any(c.startswith(p) for p in group_paths)}
        due = len(mine) * len(months)
        submitted = sum(sent.get(c, (0, 0))[0] for c in mine)
        on_time = sum(sent.get(c, (0, 0))[1] for c in mine)
        out[group_id] = None if not due else {
            "months": months, "due": due, "submitted": submitted, "on_time": on_time,
            "completeness": round(submitted / due, 4), "timeliness": round(on_time / due, 4)}
    return out
