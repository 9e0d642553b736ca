"""Police stations (派出所): a look-up by ID number and a feed of arrivals and departures, in their jurisdiction.

POST, both: a disclosure is a write (its ledger entry is made in the answer's own transaction), and an ID
number belongs in a body, never in a URL that access logs keep.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app.core.actor import Actor, Role
from app.core.deps import SessionDep, SettingsDep
from app.sharing.partners.deps import partner
from app.sharing.partners.quotas import FEED, LOOKUP, QUOTA_RESPONSES, quota
from app.sharing.police import service
from app.sharing.police.schemas import FeedIn, FeedOut, LookupIn, LookupOut

router = APIRouter(prefix="/partner/police", tags=["partner"])
LookupActor = Annotated[Actor, partner(Role.police, "police:lookup")]
FeedActor = Annotated[Actor, partner(Role.police, "police:feed")]


@router.post("/lookup", response_model=LookupOut, response_model_exclude_unset=True, dependencies=[quota(LOOKUP)],
             summary="Look up a person by ID number in the station's jurisdiction (identity and residence only)",
             responses={404: {"description": "No such person in the jurisdiction (`not_found`)"},
                        429: {"description": "`rate_limited`: wait for Retry-After (PARTNER_LOOKUP_LIMIT)"},
                        403: {"description": "`insufficient_scope`, `disclosure_needs_approval`"}})
def lookup(body: LookupIn, session: SessionDep, settings: SettingsDep, actor: LookupActor) -> LookupOut:
    return service.lookup(session, settings, actor, body.id_number)


@router.post("/feed", response_model=FeedOut, response_model_exclude_unset=True, dependencies=[quota(FEED)],
             summary="Arrivals and departures in the station's jurisdiction since a cursor",
             responses={**QUOTA_RESPONSES, 422: {"description": "`invalid_cursor`"},
                        403: {"description": "`insufficient_scope`, `disclosure_needs_approval`"}})
def feed(body: FeedIn, session: SessionDep, actor: FeedActor) -> FeedOut:
    return service.feed(session, actor, body.cursor, body.limit)
