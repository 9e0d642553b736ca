"""Landlords, and the landlord of a dwelling (staff: workers and supervisors in their area, admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import StaffActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.people.landlords import service as landlords
from app.people.landlords.schemas import (
    DwellingBrief,
    DwellingLandlordIn,
    LandlordCreate,
    LandlordListItem,
    LandlordOut,
    LandlordUpdate,
)

router = APIRouter(tags=["residents"])

PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the record is read (audited)")


@router.post("/landlords", response_model=LandlordOut, status_code=201, summary="Register a landlord",
             responses={200: {"description": "The landlord was registered outside your area under the same ID number "
                                             "and name: that record is attached to the dwelling given",
                              "model": LandlordOut},
                        409: {"description": "landlord_exists (in your area; details.landlord_id: attach that one "
                                             "instead), landlord_registered_elsewhere (outside your area: register "
                                             "them with your dwelling and their name as registered) or "
                                             "dwelling_has_landlord"}})
def create_landlord(body: LandlordCreate, response: Response, session: SessionDep, actor: StaffActor) -> LandlordOut:
    landlord, linked = landlords.create_landlord(session, actor, body)
    if linked:
        response.status_code = 200
    return landlords.landlord_out(session, actor, landlord)


@router.get("/landlords", response_model=Page[LandlordListItem],
            summary="Landlords with dwellings in your area (masked identifiers)")
def list_landlords(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=50, description="Name prefix")] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
) -> Page[LandlordListItem]:
    rows, total = paginate(session, landlords.search_landlords(actor, q=q, id_number=id_number), page)
    if id_number:
        landlords.audit_landlord_search(session, len(rows))
    return Page(items=[landlords.landlord_list_item(r) for r in rows], total=total, limit=page.limit,
                offset=page.offset)


@router.get("/landlords/{landlord_id}", response_model=LandlordOut, summary="One landlord, full ID (audited)")
def get_landlord(landlord_id: str, session: SessionDep, actor: StaffActor,
                 purpose: Annotated[str | None, PURPOSE] = None) -> LandlordOut:
    landlord = landlords.get_landlord(session, actor, landlord_id)
    landlords.audit_landlord_read(session, landlord.id, purpose, landlord.district_code)
    return landlords.landlord_out(session, actor, landlord)


@router.patch("/landlords/{landlord_id}", response_model=LandlordOut, summary="Edit (send the version you read)")
def update_landlord(landlord_id: str, body: LandlordUpdate, session: SessionDep, actor: StaffActor) -> LandlordOut:
    landlord = landlords.get_landlord(session, actor, landlord_id, for_update=True)
    return landlords.landlord_out(session, actor, landlords.update_landlord(session, actor, landlord, body))


@router.put("/dwellings/{dwelling_id}/landlord", response_model=DwellingBrief,
            summary="Attach a landlord to a dwelling in your area (null detaches)")
def set_dwelling_landlord(dwelling_id: str, body: DwellingLandlordIn, session: SessionDep,
                          actor: StaffActor) -> DwellingBrief:
    return DwellingBrief.model_validate(landlords.set_dwelling_landlord(session, actor, dwelling_id, body))


