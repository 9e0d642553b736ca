"""Outflow cities (区域协作): their registered people living here, with monthly verification and 婚育证明 status:
a roster and a change feed. Their assistance requests: app/sharing/outflow/assistance.

POST: a disclosure is a write (its ledger entry is made in the answer's own transaction)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.sharing.approvals import service as approvals
from app.sharing.approvals.models import RequestRoute
from app.sharing.approvals.schemas import HeldOut
from app.sharing.outflow import service
from app.sharing.outflow.schemas import ChangesOut, RosterIn, RosterOut
from app.sharing.partners.deps import partner
from app.sharing.partners.quotas import FEED, QUOTA_RESPONSES, quota
from app.sharing.police.schemas import FeedIn

router = APIRouter(prefix="/partner/outflow", tags=["partner"], dependencies=[quota(FEED)],
                   responses=QUOTA_RESPONSES)
OutflowActor = Annotated[Actor, partner(Role.outflow_city, "outflow:feed")]
ChangesActor = Annotated[Actor, partner(Role.outflow_city, "outflow:changes")]
HELD: dict[int | str, dict[str, Any]] = {202: {
    "model": HeldOut, "description": "The outflow-city profile requires a supervisor's approval of each "
    "disclosure: the request is held (nothing disclosed); collect it at /partner/disclosure-requests/{id}"}}


@router.post("/residents", response_model=RosterOut, response_model_exclude_unset=True,
             summary="The city's registered people living here (户籍地 prefix), with monthly verification and "
                     "婚育证明 status, a page after a cursor",
             responses={422: {"description": "`invalid_cursor`"},
                        403: {"description": "`insufficient_scope`"}, **HELD})
def residents(body: RosterIn, session: SessionDep, actor: OutflowActor) -> Any:
    held = approvals.held_for_client(session, actor, service.KIND, RequestRoute.outflow_roster, body.model_dump())
    if held is not None:
        return held
    return service.roster(session, actor, body.cursor, body.limit)


@router.post("/feed", response_model=ChangesOut, response_model_exclude_unset=True,
             summary="Changes to the city's registered people here since a cursor: arrivals, departures, monthly "
                     "verification results, 婚育证明 status",
             responses={422: {"description": "`invalid_cursor`"},
                        403: {"description": "`insufficient_scope`"}, **HELD})
def feed(body: FeedIn, session: SessionDep, actor: ChangesActor) -> Any:
    held = approvals.held_for_client(session, actor, service.KIND, RequestRoute.outflow_feed, body.model_dump())
    if held is not None:
        return held
    return service.changes(session, actor, body.cursor, body.limit)
