"""Residents: register, read, search, update, move, leave."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlmodel import Session

from app.auth.deps import StaffActor, StaffHop, model_response
from app.core.actor import Actor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.people import rules
from app.people.models import Resident, ResidentStatus
from app.people.register import search, service
from app.people.register.schemas import LeaveIn, MoveIn, ResidentCreate, ResidentListItem, ResidentOut, ResidentUpdate

router = APIRouter(prefix="/residents", tags=["residents"])

PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the record is read (audited)")


def list_item(resident: Resident | Any) -> ResidentListItem:
    """A resident (an entity, or the row of its columns a search reads) as a list shows it: IDs masked."""
    values = resident.model_dump() if isinstance(resident, Resident) else resident._asdict()
    return ResidentListItem.model_validate(
        {**values, "id_number_masked": rules.mask_id(values["id_number"]),
         "phone_masked": rules.mask_phone(values["phone"])})


@router.post("", response_model=ResidentOut, status_code=201, summary="Register a resident",
             responses={409: {"description": (
                 "resident_exists: already registered in your area (details.resident_id). "
                 "resident_registered_elsewhere: another community holds the record (registered there, or left from "
                 "there); nothing of it is shown, a transfer request is open instead (details.transfer_request_id; "
                 "one per person and community) and the record comes to you when that community accepts. "
                 "resident_identity_mismatch: the name (or sex/birth date) is not the record's (details.fields)")}})
def create_resident(body: ResidentCreate, session: SessionDep, actor: StaffActor) -> ResidentOut:
    """One person, one record (docs/residents.md). A person who left your own area and comes back is
    registered again on their old record (201, same id) when the name matches."""
    resident = service.create_resident(session, actor, body)
    return ResidentOut.model_validate(resident)


@router.get("", response_model=Page[ResidentListItem], summary="Search residents in your area (masked IDs)")
async def search_residents(
    hop: StaffHop,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=50, description="Name prefix")] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
    phone: Annotated[str | None, Query(max_length=20, json_schema_extra={"pattern": rules.MOBILE_INPUT})] = None,
    dwelling_id: Annotated[str | None, Query(max_length=32)] = None,
    community_id: Annotated[str | None, Query(max_length=32)] = None,
    status: ResidentStatus | None = None,
    key_person: bool | None = None,
) -> Response:
    def work(session: Session, actor: Actor) -> Page[ResidentListItem]:
        stmt, values = search.search(actor, q=q, id_number=id_number, phone=phone, dwelling_id=dwelling_id,
                                      community_id=community_id, status=status.value if status else None,
                                      key_person=key_person)
        rows, total = paginate(session, stmt, page, values)
        if id_number or phone:
            # A lookup by identifier is a read of sensitive data, even though results are masked.
            search.audit_search(session, [r.id for r in rows], "id_number" if id_number else "phone")
        return Page(items=[list_item(r) for r in rows], total=total, limit=page.limit, offset=page.offset)

    return await hop.run(work)


@router.get("/{resident_id}", response_model=ResidentOut, summary="One resident, full record (audited)")
async def get_resident(resident_id: str, hop: StaffHop, purpose: Annotated[str | None, PURPOSE] = None) -> Response:
    def work(session: Session, actor: Actor) -> Response:
        resident = service.read_resident(session, actor, resident_id)
        service.audit_read(session, resident, "identity", purpose)
        return model_response(ResidentOut.model_validate(resident), headers={"ETag": f'W/"{resident.version}"'})

    return await hop.run(work)


@router.patch("/{resident_id}", response_model=ResidentOut, summary="Edit (send the version you read)")
def update_resident(resident_id: str, body: ResidentUpdate, session: SessionDep, actor: StaffActor) -> ResidentOut:
    resident = service.get_resident(session, actor, resident_id, for_update=True)
    resident = service.update_resident(session, resident, body)
    return ResidentOut.model_validate(resident)


@router.post("/{resident_id}/move", response_model=ResidentOut, summary="Move to another dwelling (history kept)")
def move_resident(resident_id: str, body: MoveIn, session: SessionDep, actor: StaffActor) -> ResidentOut:
    resident = service.get_resident(session, actor, resident_id, for_update=True)
    return ResidentOut.model_validate(service.move_resident(session, actor, resident, body))


@router.post("/{resident_id}/leave", response_model=ResidentOut, summary="Mark as left")
def leave(resident_id: str, body: LeaveIn, session: SessionDep, actor: StaffActor) -> ResidentOut:
    resident = service.get_resident(session, actor, resident_id, for_update=True)
    return ResidentOut.model_validate(service.leave(session, resident, body))
