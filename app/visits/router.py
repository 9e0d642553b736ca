"""Visits: record (with check-in), read, review, correct; a resident's visits and service history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlmodel import Session

from app.auth.deps import Hop, StaffActor, allow, hop, model_response
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.inputs import IsoDate
from app.core.pagination import Page, PageDep, paginate
from app.people.records.schemas import HealthPurpose
from app.people.register import service as people
from app.visits import recording, service
from app.visits.models import ReviewState, VisitMode, VisitPurpose
from app.visits.schemas import CorrectionCreate, ReviewIn, ServiceHistoryItem, VisitCreate, VisitListItem, VisitOut

router = APIRouter(tags=["visits"])

# Those who visit residents: workers and supervisors (admins and auditors do not record field work).
VisitorActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
VisitorHop = Annotated[Hop, hop(Role.worker, Role.supervisor)]
ReviewerActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the visit is read (audited)")
HEALTH_PURPOSE = Query(description="Why the service history is read (required; audited)")
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "A retry of a stored visit (same id and content): the stored visit, unchanged"}}


@router.post("/visits", response_model=VisitOut, status_code=201,
             summary="Record a visit (check-in, services, follow-up; retry-safe with a client id)",
             responses={**REPLAY, 409: {"description": "visit_id_taken or delivery_id_taken (an id held by a record "
                                                       "outside your area is 404 not_found instead)"}})
async def record_visit(body: VisitCreate, hop: VisitorHop) -> Response:
    def work(session: Session, actor: Actor) -> Response:
        out, created = recording.record_visit(session, actor, body)
        return model_response(out, 201 if created else 200)

    return await hop.run(work, batched=True)


@router.get("/visits", response_model=Page[VisitListItem], summary="Visits in your area, newest first")
def list_visits(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    resident_id: Annotated[str | None, Query(max_length=32)] = None,
    worker_id: Annotated[str | None, Query(max_length=32)] = None,
    community_id: Annotated[str | None, Query(max_length=32)] = None,
    start: Annotated[IsoDate | None, Query(alias="from", description="Started on or after (city date)")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Started on or before (city date)")] = None,
    review_state: ReviewState | None = None,
    flagged: Annotated[bool | None, Query(description="With (true) or without (false) check-in flags")] = None,
    mode: VisitMode | None = None,
    purpose: VisitPurpose | None = None,
) -> Page[VisitListItem]:
    stmt = service.list_visits(
        actor, resident_id=resident_id, worker_id=worker_id, community_id=community_id, start=start, end=end,
        review_state=review_state.value if review_state else None, flagged=flagged,
        mode=mode.value if mode else None, purpose=purpose.value if purpose else None)
    rows, total = paginate(session, stmt, page)
    return Page(items=service.list_items(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/visits/{visit_id}", response_model=VisitOut,
            summary="One visit with check-in, services, reviews and tasks (audited)")
def get_visit(visit_id: str, session: SessionDep, actor: StaffActor,
              purpose: Annotated[str | None, PURPOSE] = None) -> VisitOut:
    visit = service.get_visit(session, actor, visit_id, via_resident=True)
    service.audit_visit_read(session, visit, purpose)
    return service.visit_out(session, visit)


@router.post("/visits/{visit_id}/review", response_model=VisitOut,
             summary="Approve or flag a visit (supervisors, not their own; send the version you read)")
def review_visit(visit_id: str, body: ReviewIn, session: SessionDep, actor: ReviewerActor) -> VisitOut:
    return service.visit_out(session, recording.review_visit(session, actor, visit_id, body))


@router.post("/visits/{visit_id}/corrections", response_model=VisitOut, status_code=201,
             summary="Correct a visit: a new visit that supersedes it (author or supervisor)",
             responses={**REPLAY, 409: {"description": "already_corrected, visit_id_taken or delivery_id_taken (an id "
                                                       "held by a record outside your area is 404 not_found)"}})
def correct_visit(visit_id: str, body: CorrectionCreate, session: SessionDep, actor: VisitorActor,
                  response: Response) -> VisitOut:
    out, created = recording.correct_visit(session, actor, visit_id, body)
    if not created:
        response.status_code = 200
    return out


@router.get("/residents/{resident_id}/visits", response_model=Page[VisitListItem],
            summary="A resident's visits, newest first")
def resident_visits(resident_id: str, session: SessionDep, actor: StaffActor, page: PageDep) -> Page[VisitListItem]:
    resident = people.get_resident(session, actor, resident_id)
    rows, total = paginate(session, service.resident_visits(resident), page)
    return Page(items=service.list_items(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/residents/{resident_id}/services", response_model=Page[ServiceHistoryItem],
            summary="A resident's service history, newest first (PIPL sensitive: purpose required, audited)")
def resident_services(resident_id: str, session: SessionDep, actor: StaffActor, page: PageDep,
                      purpose: Annotated[HealthPurpose, HEALTH_PURPOSE]) -> Page[ServiceHistoryItem]:
    resident = people.get_resident(session, actor, resident_id)
    rows, total = paginate(session, service.service_history(resident), page)
    people.audit_read(session, resident, "services", purpose.value)
    return Page(items=service.history_items(session, rows), total=total, limit=page.limit, offset=page.offset)
