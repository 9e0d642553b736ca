"""Police stations (派出所): a look-up by ID number and a feed of arrivals and departures, in their jurisdiction.

POST, both: a disclosure is a write (its ledger entry is made in the answer's own transaction), and an ID
number belongs in a body, never in a URL that access logs keep.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from app.core.actor import Actor, Role
from app.core.deps import SessionDep, SettingsDep
from app.sharing.approvals import service as approvals
from app.sharing.approvals.models import RequestRoute
from app.sharing.approvals.schemas import HeldOut
from app.sharing.partners.deps import partner
from app.sharing.partners.quotas import FEED, LOOKUP, QUOTA_RESPONSES, quota
from app.sharing.police import service
from app.sharing.police.schemas import FeedIn, FeedOut, LookupIn, LookupOut

router = APIRouter(prefix="/partner/police", tags=["partner"])
LookupActor = Annotated[Actor, partner(Role.police, "police:lookup")]
FeedActor = Annotated[Actor, partner(Role.police, "police:feed")]
HELD: dict[int | str, dict[str, Any]] = {202: {
    "model": HeldOut, "description": "The police profile requires a supervisor's approval of each "
    "disclosure: the request is held (nothing disclosed); collect it at /partner/disclosure-requests/{id}"}}


@router.post("/lookup", response_model=LookupOut, response_model_exclude_unset=True, dependencies=[quota(LOOKUP)],
             summary="Look up a person by ID number in the station's jurisdiction (identity and residence only)",
             responses={404: {"description": "No such person in the jurisdiction (`not_found`)"},
                        **QUOTA_RESPONSES, 403: {"description": "`insufficient_scope`"}, **HELD})
def lookup(body: LookupIn, session: SessionDep, settings: SettingsDep, actor: LookupActor) -> Any:
    """While approval is required every look-up is held (202), found or not, and counts against the limit: that
    a person lives in the jurisdiction is itself disclosed only once approved."""
    held = approvals.held_for_client(session, actor, service.KIND, RequestRoute.police_lookup,
                                     {"id_number": body.id_number})
    if held is not None:
        return held
    return service.lookup(session, settings, actor, body.id_number)


@router.post("/feed", response_model=FeedOut, response_model_exclude_unset=True, dependencies=[quota(FEED)],
             summary="Arrivals and departures in the station's jurisdiction since a cursor",
             responses={**QUOTA_RESPONSES, 422: {"description": "`invalid_cursor`"},
                        403: {"description": "`insufficient_scope`"}, **HELD})
def feed(body: FeedIn, session: SessionDep, actor: FeedActor) -> Any:
    held = approvals.held_for_client(session, actor, service.KIND, RequestRoute.police_feed, body.model_dump())
    if held is not None:
        return held
    return service.feed(session, actor, body.cursor, body.limit)
