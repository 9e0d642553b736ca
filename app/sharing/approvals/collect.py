"""Collecting an approved request: the answer is made now, by the route's own service function with the
parameters stored when it was asked, so the disclosure (its ledger entries and audit events) is exactly the one
the route makes when no approval is required, under the caller's scope as it is now."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from app.core.actor import Actor, Role
from app.core.config import Settings
from app.core.pagination import Page, PageParams
from app.sharing.approvals import service
from app.sharing.approvals.models import RequestRoute
from app.sharing.approvals.schemas import CollectedOut
from app.sharing.landlords.service import paginate_rows
from app.sharing.landlords.tenants import service as tenants
from app.sharing.outflow import service as outflow
from app.sharing.partners.deps import SCOPE_CLAIM, InsufficientScope
from app.sharing.police import service as police

# The OAuth scope a machine client's token needs to collect, as it needs it to ask (landlords have none).
SCOPES = {RequestRoute.police_lookup: "police:lookup", RequestRoute.police_feed: "police:feed",
          RequestRoute.outflow_roster: "outflow:feed", RequestRoute.outflow_feed: "outflow:changes"}


def collect(session: Session, settings: Settings, actor: Actor, claims: dict[str, Any],
            request_id: str) -> CollectedOut:
    row = service.collectable(session, actor, request_id)
    route = RequestRoute(row.route)
    needed = SCOPES.get(route)
    if actor.role is not Role.landlord and (needed is None or needed not in str(claims.get(SCOPE_CLAIM, "")).split()):
        raise InsufficientScope()
    asked = json.loads(row.params)
    try:
        answer = _answer(session, settings, actor, route, asked)
    except police.NotInJurisdiction:
        service.collected(session, row)  # answered: nobody of that ID number in the jurisdiction (now)
        raise
    service.collected(session, row)
    return CollectedOut(request_id=row.id, route=route, answer=answer)


def _answer(session: Session, settings: Settings, actor: Actor, route: RequestRoute, asked: dict[str, Any]) -> Any:
    if route is RequestRoute.police_lookup:
        return police.lookup(session, settings, actor, asked["id_number"], approved=True)
    if route is RequestRoute.police_feed:
        return police.feed(session, actor, asked.get("cursor"), asked["limit"], approved=True)
    if route is RequestRoute.outflow_roster:
        return outflow.roster(session, actor, asked.get("cursor"), asked["limit"], approved=True)
    if route is RequestRoute.outflow_feed:
        return outflow.changes(session, actor, asked.get("cursor"), asked["limit"], approved=True)
    page = PageParams(limit=asked["limit"], offset=asked["offset"])
    rows, total = paginate_rows(session, tenants.tenants_query(actor), page)
    return Page(items=tenants.tenants_out(session, actor, rows, approved=True), total=total, limit=page.limit,
                offset=page.offset)
