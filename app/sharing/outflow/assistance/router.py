"""An outflow city's assistance requests (协查), both directions (service.py says which are theirs). Reads
disclose after the read; every step and answer is a write whose ledger entry is in its own transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.cycle.assistance import service as assistance
from app.cycle.assistance.models import Direction
from app.cycle.assistance.rules import Derived
from app.cycle.assistance.schemas import AnswerIn, PartnerAssistanceOut, ProgressIn
from app.sharing.outflow.assistance import service
from app.sharing.outflow.assistance.schemas import PartnerRequestIn
from app.sharing.partners.deps import partner
from app.sharing.partners.quotas import ASSISTANCE, QUOTA_RESPONSES, quota

router = APIRouter(prefix="/partner/outflow/assistance-requests", tags=["partner"],
                   dependencies=[quota(ASSISTANCE)],
                   responses=QUOTA_RESPONSES)
AssistanceActor = Annotated[Actor, partner(Role.outflow_city, "outflow:assistance")]
REFUSED: dict[int | str, dict[str, Any]] = {403: {"description": "`insufficient_scope`, `disclosure_needs_approval`"}}
STEP: dict[int | str, dict[str, Any]] = {
    403: {"description": "`insufficient_scope`, `disclosure_needs_approval`, `office_side_only` (a request the city "
                         "sent: the office moves it)"},
    409: {"description": "`invalid_transition`, `stale_version`"}}


@router.get("", response_model=Page[PartnerAssistanceOut], responses=REFUSED,
            summary="The assistance requests between the office and the city: `outgoing` (the office asks you) and "
                    "`incoming` (you asked the office)")
def list_requests(
    session: SessionDep,
    actor: AssistanceActor,
    page: PageDep,
    direction: Direction | None = None,
    state: Annotated[list[Derived] | None, Query(max_length=7, description="Derived states (repeatable)")] = None,
) -> Page[PartnerAssistanceOut]:
    rows, total = paginate(session, service.list_requests(actor, direction, state or ()), page)
    return Page(items=service.shown(session, actor, rows, after_read=True), total=total, limit=page.limit,
                offset=page.offset)


@router.post("", response_model=PartnerAssistanceOut, status_code=201,
             summary="Send the city's request about one of its registered people (matched by ID number); the same "
                     "reference and content again answers 200 with the same request",
             responses={200: {"description": "Sent before with this reference (the same request)",
                              "model": PartnerAssistanceOut},
                        403: {"description": "`insufficient_scope`, `disclosure_needs_approval`, "
                                             "`no_cooperation_agreement`"},
                        409: {"description": "`duplicate_partner_reference` (another content)"},
                        422: {"description": "ID number rules (`id_check_digit`, …)"}})
def send(body: PartnerRequestIn, response: Response, session: SessionDep,
         actor: AssistanceActor) -> PartnerAssistanceOut:
    request, created = service.send(session, actor, body)
    if not created:
        response.status_code = 200
    return service.shown(session, actor, [request])[0]


@router.get("/{request_id}", response_model=PartnerAssistanceOut, responses=REFUSED, summary="One request")
def get_request(request_id: str, session: SessionDep, actor: AssistanceActor) -> PartnerAssistanceOut:
    request = service.get_request(session, actor, request_id)
    return service.shown(session, actor, [request], after_read=True)[0]


@router.post("/{request_id}/progress", response_model=PartnerAssistanceOut, responses=STEP,
             summary="The city's step on a request the office sent: matched, verifying or unmatched")
def progress(request_id: str, body: ProgressIn, session: SessionDep, actor: AssistanceActor) -> PartnerAssistanceOut:
    request = service.get_request(session, actor, request_id, for_update=True)
    return service.shown(session, actor, [assistance.progress(session, actor, request, body)])[0]


@router.post("/{request_id}/answer", response_model=PartnerAssistanceOut,
             responses={**STEP, 422: {"description": "`answer_fields`, `answer_date`"}},
             summary="The city's answer to a request the office sent")
def answer(request_id: str, body: AnswerIn, session: SessionDep, actor: AssistanceActor) -> PartnerAssistanceOut:
    request = service.get_request(session, actor, request_id, for_update=True)
    return service.shown(session, actor, [assistance.answer(session, actor, request, body)])[0]
