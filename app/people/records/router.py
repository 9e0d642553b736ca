"""Landlords and dwellings, tenancies, 婚育证明, the reproductive-health record and the resident's dossier.

All staff routes (workers and supervisors in their area, admins); partners get their own feeds later, built
from the allow-lists in app/people/shapes.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import StaffActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.people import rights
from app.people.records import service as records
from app.people.records.schemas import (
    Dossier,
    FpDocumentCreate,
    FpDocumentOut,
    FpDocumentUpdate,
    HealthIn,
    HealthOut,
    HealthPurpose,
    TenancyOut,
    TenantOut,
)
from app.people.register import service
from app.people.register.router import list_item

router = APIRouter(tags=["residents"])

PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the record is read (audited)")
HEALTH_PURPOSE = Query(description="Why reproductive-health data is read or written (required; audited)")


class DossierFormat(StrEnum):
    json = "json"


# --- landlords and dwellings ---------------------------------------------------------------------------


@router.get("/dwellings/{dwelling_id}/tenants", response_model=Page[TenantOut],
            summary="Current tenants of a dwelling in your area")
def dwelling_tenants(dwelling_id: str, session: SessionDep, actor: StaffActor, page: PageDep) -> Page[TenantOut]:
    dwelling = service.get_dwelling_in_scope(session, actor, dwelling_id)
    rows, total = paginate(session, records.current_tenants_stmt(actor, dwelling), page)
    people = records.residents_by_id(session, {t.resident_id for t in rows})
    items = [TenantOut(tenancy_id=t.id, move_in=t.move_in, source=t.source,
                       resident=list_item(people[t.resident_id])) for t in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


# --- tenancies ---------------------------------------------------------------------------------------------


@router.get("/residents/{resident_id}/tenancies", response_model=Page[TenancyOut],
            summary="Residence history, newest first")
def resident_tenancies(resident_id: str, session: SessionDep, actor: StaffActor,
                       page: PageDep) -> Page[TenancyOut]:
    resident = service.get_resident(session, actor, resident_id)
    rows, total = paginate(session, records.tenancies_stmt(resident), page)
    return Page(items=records.tenancy_outs(session, rows), total=total, limit=page.limit, offset=page.offset)


# --- 婚育证明 ---------------------------------------------------------------------------------------------


@router.get("/residents/{resident_id}/fp-documents", response_model=Page[FpDocumentOut],
            summary="婚育证明 on file, newest first (a sensitive read: audited)")
def list_fp_documents(resident_id: str, session: SessionDep, actor: StaffActor, page: PageDep,
                      purpose: Annotated[str | None, PURPOSE] = None) -> Page[FpDocumentOut]:
    resident = service.get_resident(session, actor, resident_id)
    rows, total = paginate(session, records.fp_documents_stmt(resident), page)
    service.audit_read(session, resident, "fp_document", purpose)
    return Page(items=[FpDocumentOut.model_validate(d) for d in rows], total=total, limit=page.limit,
                offset=page.offset)


@router.post("/residents/{resident_id}/fp-documents", response_model=FpDocumentOut, status_code=201,
             summary="Record a checked 婚育证明 (checked at/by set by the server)")
def create_fp_document(resident_id: str, body: FpDocumentCreate, session: SessionDep,
                       actor: StaffActor) -> FpDocumentOut:
    resident = records.lock_resident(session, actor, resident_id)
    return FpDocumentOut.model_validate(records.create_fp_document(session, actor, resident, body))


@router.patch("/fp-documents/{document_id}", response_model=FpDocumentOut,
              summary="Edit a 婚育证明 (send the version you read; a status change records the check)")
def update_fp_document(document_id: str, body: FpDocumentUpdate, session: SessionDep,
                       actor: StaffActor) -> FpDocumentOut:
    doc, resident = records.get_fp_document(session, actor, document_id)
    return FpDocumentOut.model_validate(records.update_fp_document(session, actor, doc, resident, body))


# --- reproductive health ------------------------------------------------------------------------------------


@router.get("/residents/{resident_id}/health", response_model=HealthOut,
            summary="Reproductive-health record (PIPL sensitive: purpose required, audited)")
def read_health(resident_id: str, session: SessionDep, actor: StaffActor,
                purpose: Annotated[HealthPurpose, HEALTH_PURPOSE]) -> HealthOut:
    resident = service.get_resident(session, actor, resident_id)
    return records.read_health(session, resident, purpose)


@router.put("/residents/{resident_id}/health", response_model=HealthOut,
            summary="Replace the reproductive-health record (version 0 creates; purpose required, audited)")
def write_health(resident_id: str, body: HealthIn, session: SessionDep, actor: StaffActor,
                 purpose: Annotated[HealthPurpose, HEALTH_PURPOSE]) -> HealthOut:
    resident = records.lock_resident(session, actor, resident_id)
    return records.write_health(session, actor, resident, body, purpose)


# --- dossier -----------------------------------------------------------------------------------------------


@router.get("/residents/{resident_id}/dossier", response_model=Dossier,
            summary="Everything held about one resident, with the disclosure ledger (PIPL access; audited)")
def resident_dossier(resident_id: str, session: SessionDep, actor: StaffActor, response: Response,
                     fmt: Annotated[DossierFormat | None,
                                    Query(alias="format", description="json: download as a file")] = None,
                     ) -> Dossier:
    resident = service.get_resident(session, actor, resident_id)
    result = rights.dossier(session, actor, resident)
    if fmt is DossierFormat.json:
        response.headers["Content-Disposition"] = f'attachment; filename="resident-{resident.id}-dossier.json"'
    response.headers["Cache-Control"] = "no-store"
    return result
