"""Pictures for supervisors, as SVG or PNG: a worker's day on a map, a community's coverage by grid, a
division's trend over 12 months. Drawn from coordinates and figures; nothing is fetched from elsewhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.audit.pictures import draw, scene, service
from app.auth.deps import allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.inputs import IsoDate
from app.core.types import city_today

router = APIRouter(prefix="/audit/pictures", tags=["audit"])

SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "The picture"}}


class Format(StrEnum):
    svg = "svg"
    png = "png"


FormatQuery = Annotated[Format, Query(description="svg (default) or png")]


def picture(drawn: scene.Scene, fmt: Format) -> Response:
    if fmt is Format.png:
        return Response(scene.png(drawn), media_type="image/png")
    return Response(scene.svg(drawn), media_type="image/svg+xml; charset=utf-8")


@router.get("/worker-day", response_class=Response, responses=PICTURE,
            summary="A worker's day: check-ins, dwellings, the track, flagged points (supervisors; audited)")
def worker_day(session: SessionDep, actor: SupervisorActor,
               worker_id: Annotated[str, Query(min_length=1, max_length=32)],
               day: Annotated[IsoDate | None, Query(description="City date (default: today)")] = None,
               format: FormatQuery = Format.svg) -> Response:
    on = day or city_today()
    name, visits = service.worker_day(session, actor, worker_id, on)
    return picture(draw.worker_day(name, on, visits), format)


@router.get("/coverage", response_class=Response, responses=PICTURE,
            summary="A community's month by grid: registered, visited, overdue now (supervisors)")
def coverage(session: SessionDep, actor: SupervisorActor,
             community_id: Annotated[str, Query(min_length=1, max_length=32)],
             month: Annotated[str | None, Query(max_length=7, description="YYYY-MM (default: this month)",
                                                json_schema_extra={"pattern": "^[0-9]{4}-(?:0[1-9]|1[0-2])$"})] = None,
             format: FormatQuery = Format.svg) -> Response:
    period = service.parse_month(month)
    community, grids = service.coverage(session, actor, community_id, period)
    return picture(draw.coverage(community.name, period, grids), format)


@router.get("/trend", response_class=Response, responses=PICTURE,
            summary="A division's visits over the last months, in person and by phone, flagged (supervisors)")
def trend(session: SessionDep, actor: SupervisorActor,
          division_id: Annotated[str, Query(min_length=1, max_length=32)],
          months: Annotated[int, Query(ge=2, le=24)] = 12,
          format: FormatQuery = Format.svg) -> Response:
    division, figures = service.trend(session, actor, division_id, months)
    return picture(draw.trend(division.name, figures), format)
