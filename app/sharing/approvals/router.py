"""The approval queue: supervisors decide partners' held pulls in their area (tag `sharing`); partners follow
their own requests and collect an approved one's answer, once (tag `partner`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.auth.deps import Claims, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep, SettingsDep
from app.core.pagination import Page, PageDep, paginate
from app.sharing.approvals import collect as collecting
from app.sharing.approvals import service
from app.sharing.approvals.models import RequestRoute, RequestState
from app.sharing.approvals.schemas import CollectedOut, DecisionIn, DenyIn, DisclosureRequestOut, HeldOut
from app.sharing.partners.quotas import FEED, QUOTA_RESPONSES, quota

router = APIRouter(prefix="/sharing/disclosure-requests", tags=["sharing"])
# A held request is a feed-like pull: its state and its collection count against the caller's `feed` quota.
partner_router = APIRouter(prefix="/partner/disclosure-requests", tags=["partner"], dependencies=[quota(FEED)],
                           responses=QUOTA_RESPONSES)

ReaderActor = Annotated[Actor, allow(Role.supervisor, Role.admin, Role.auditor)]
DeciderActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
PartnerActor = Annotated[Actor, allow(*service.PARTNER_ROLES)]
DECIDE: dict[int | str, dict[str, Any]] = {
    409: {"description": "`invalid_transition` (decided, collected or expired), `request_expired`, `stale_version`"}}


@router.get("", response_model=Page[DisclosureRequestOut],
            summary="Partners' requests held for approval in your area (audited read: they may name an ID number)")
def list_requests(
    session: SessionDep, actor: ReaderActor, page: PageDep,
    state: Annotated[RequestState | None, Query(description="pending: the ones to decide")] = None,
    route: RequestRoute | None = None,
) -> Page[DisclosureRequestOut]:
    rows, total = paginate(session, service.listing(actor, state, route), page)
    service.audit_read(session, rows)
    return Page(items=service.rows_out(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/{request_id}", response_model=DisclosureRequestOut, summary="One held request (audited read)")
def get_request(request_id: str, session: SessionDep, actor: ReaderActor) -> DisclosureRequestOut:
    row = service.get(session, actor, request_id)
    service.audit_read(session, [row])
    return service.rows_out(session, [row])[0]


@router.post("/{request_id}/approve", response_model=DisclosureRequestOut, responses=DECIDE,
             summary="Approve a pending request: the partner may then collect the answer, once")
def approve(request_id: str, body: DecisionIn, session: SessionDep, actor: DeciderActor) -> DisclosureRequestOut:
    return service.rows_out(session, [service.decide(session, actor, request_id, body)])[0]


@router.post("/{request_id}/deny", response_model=DisclosureRequestOut, responses=DECIDE,
             summary="Deny a pending request, with a reason (staff only); what it asked is blanked")
def deny(request_id: str, body: DenyIn, session: SessionDep, actor: DeciderActor) -> DisclosureRequestOut:
    return service.rows_out(session, [service.decide(session, actor, request_id, body)])[0]


# --- the partner's side ----------------------------------------------------------------------------------------


@partner_router.get("/{request_id}", response_model=HeldOut, summary="The state of one of my held requests")
def my_request(request_id: str, session: SessionDep, actor: PartnerActor) -> HeldOut:
    return service.held_out(service.own(session, actor, request_id))


@partner_router.post("/{request_id}/collect", response_model=CollectedOut, response_model_exclude_unset=True,
                     summary="Collect the answer of my approved request, once (the disclosure happens now)",
                     responses={409: {"description": "`already_collected`, `not_approved` (pending or denied), "
                                                     "`request_expired`, `profile_changed`, `profile_missing`"},
                                403: {"description": "`insufficient_scope` (the scope of the route it was "
                                                     "asked on), `landlord_not_confirmed`"}})
def collect(request_id: str, session: SessionDep, settings: SettingsDep, actor: PartnerActor,
            claims: Claims) -> CollectedOut:
    return collecting.collect(session, settings, actor, claims, request_id)
