"""Assistance requests (协查) with partner cities: workers draft and send requests about their residents and
answer the ones partner cities send; supervisors read their area; an admin registers partner cities' requests
and records their side of ours on their behalf (partners' own API: app/sharing/outflow/assistance).
docs/assistance.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.auth.deps import AdminActor, StaffActor, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.inputs import IsoDate
from app.core.pagination import Page, PageDep, paginate
from app.cycle.assistance import service
from app.cycle.assistance.models import Direction
from app.cycle.assistance.rules import Derived
from app.cycle.assistance.schemas import (
    AnswerIn,
    AssistanceListItem,
    AssistanceOut,
    IncomingCreate,
    OutgoingCreate,
    ProgressIn,
    VersionIn,
)

router = APIRouter(prefix="/assistance-requests", tags=["assistance"])

WriterActor = Annotated[Actor, allow(Role.worker, Role.admin)]
ON = Query(description="The city date the states are computed for (default: today, UTC+8)")
PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the request is read (audited)")
TRANSITION: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not allowed from the current state (invalid_transition), or stale_version"}}


@router.get("", response_model=Page[AssistanceListItem], summary="Assistance requests in your area (ID masked)")
def list_requests(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    direction: Direction | None = None,
    state: Annotated[list[Derived] | None, Query(max_length=7, description="Derived states (repeatable)")] = None,
    resident_id: Annotated[str | None, Query(max_length=32)] = None,
    community_id: Annotated[str | None, Query(max_length=32)] = None,
    on: Annotated[IsoDate | None, ON] = None,
) -> Page[AssistanceListItem]:
    today = on or service.today()
    stmt = service.list_requests(actor, on=today, direction=direction, states=state or (),
                                 resident_id=resident_id, community_id=community_id)
    rows, total = paginate(session, stmt, page)
    return Page(items=service.list_items(session, rows, today), total=total, limit=page.limit, offset=page.offset)


@router.post("", response_model=AssistanceOut, status_code=201,
             summary="Draft an outgoing request about a resident, to their 户籍地 city",
             responses={409: {"description": "resident_not_registered, no_partner_agreement, "
                                             "assistance_request_open"}})
def create_outgoing(body: OutgoingCreate, session: SessionDep, actor: WriterActor) -> AssistanceOut:
    request = service.create_outgoing(session, actor, body)
    return service.request_out(session, request, service.today())


@router.post("/incoming", response_model=AssistanceOut, status_code=201,
             summary="Register a partner city's request (admin); matched by ID number against the register",
             responses={409: {"description": "duplicate_partner_reference"},
                        422: {"description": "partner_city_unknown, ID number rules, date_out_of_range"}})
def register_incoming(body: IncomingCreate, session: SessionDep, actor: AdminActor) -> AssistanceOut:
    request = service.register_incoming(session, actor, body)
    return service.request_out(session, request, service.today())


@router.get("/{request_id}", response_model=AssistanceOut, summary="One request, in full (a sensitive read: audited)")
def get_request(request_id: str, session: SessionDep, actor: StaffActor,
                purpose: Annotated[str | None, PURPOSE] = None,
                on: Annotated[IsoDate | None, ON] = None) -> AssistanceOut:
    request = service.get_request(session, actor, request_id)
    service.audit_read(session, request, purpose)
    return service.request_out(session, request, on or service.today())


@router.post("/{request_id}/send", response_model=AssistanceOut, summary="Send an outgoing draft (the delay starts)",
             responses=TRANSITION)
def send(request_id: str, body: VersionIn, session: SessionDep, actor: WriterActor) -> AssistanceOut:
    request = service.get_request(session, actor, request_id, for_update=True)
    return service.request_out(session, service.send(session, actor, request, body), service.today())


@router.post("/{request_id}/progress", response_model=AssistanceOut,
             summary="The receiving side's step: matched, verifying or unmatched",
             responses={**TRANSITION, 403: {"description": "A worker on an outgoing request (partner_side_only)"}})
def progress(request_id: str, body: ProgressIn, session: SessionDep, actor: WriterActor) -> AssistanceOut:
    request = service.get_request(session, actor, request_id, for_update=True)
    return service.request_out(session, service.progress(session, actor, request, body), service.today())


@router.post("/{request_id}/answer", response_model=AssistanceOut,
             summary="Record the answer (ours to an incoming request; an admin records a partner's)",
             responses={**TRANSITION, 403: {"description": "A worker on an outgoing request (partner_side_only)"},
                        422: {"description": "answer_fields, answer_date"}})
def answer(request_id: str, body: AnswerIn, session: SessionDep, actor: WriterActor) -> AssistanceOut:
    request = service.get_request(session, actor, request_id, for_update=True)
    return service.request_out(session, service.answer(session, actor, request, body), service.today())
