"""Worker activity for supervisors: per worker, community, street or district, and period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.audit.activity import service
from app.audit.activity.schemas import ActivityOut, ActivityRow, DeviceHealth, Figures, Level, TaskCounts, VisitCounts
from app.audit.deps import DIVISION, Period, area_prefix, period
from app.auth.deps import allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep

router = APIRouter(prefix="/audit/activity", tags=["audit"])

SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]


def figures(f: service.Figures) -> dict[str, object]:
    total = f.in_person + f.phone
    return {"visits": VisitCounts(total=total, in_person=f.in_person, phone=f.phone), "flagged": f.flagged,
            "flagged_share": round(f.flagged / total, 4) if total else None,
            "tasks": TaskCounts(due=f.tasks_due, on_time=f.on_time, late=f.late, overdue=f.overdue, open=f.open)}


@router.get("", response_model=ActivityOut, response_model_by_alias=True,
            summary="Visits by mode, tasks on time and overdue, the flagged share, sync health (supervisors)")
def activity(
    session: SessionDep,
    actor: SupervisorActor,
    when: Annotated[Period, Depends(period)],
    group: Level = Level.worker,
    division_id: Annotated[str | None, DIVISION] = None,
) -> ActivityOut:
    groups, totals = service.activity(session, actor, when, area_prefix(session, actor, division_id), group.value)
    coverage = service.verification_coverage(session, groups, when)
    timeliness = service.report_timeliness(session, groups, when)
    rows = [ActivityRow(id=g.id, level=Level(g.level), code=g.code, name=g.name, **figures(g.figures),
                        verification_coverage=coverage.get(g.id), report_timeliness=timeliness.get(g.id),
                        devices=[DeviceHealth(**d) for d in g.devices] if g.devices is not None else None)
            for g in groups]
    return ActivityOut(start=when.start, end=when.end, group=group, rows=rows,
                       totals=Figures(**figures(totals)))
