"""Workflows around a record: transfers, duplicate review and merges, correction requests.

Access: transfers and corrections are for staff (workers, supervisors, admins) in scope; duplicate
review and merges for supervisors and admins. Auditors and partners get 403. Anything outside the
caller's scope is 404. A transfer is visible to both sides, each with its own cut of the fields.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import StaffActor, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.people.models import CorrectionRequest, DuplicateFlag, RequestStatus, TransferRequest
from app.people.register import service
from app.people.register.schemas import ResidentOut
from app.people.workflows import corrections
from app.people.workflows import merge as merging
from app.people.workflows import service as workflows
from app.people.workflows.schemas import (
    CorrectionCreate,
    CorrectionDecide,
    CorrectionListItem,
    CorrectionOut,
    DuplicateDismiss,
    DuplicateOut,
    DuplicateStatus,
    MergeIn,
    MergeOut,
    TransferCancel,
    TransferDirection,
    TransferOut,
    TransferReject,
)

router = APIRouter(tags=["residents"])

SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
PURPOSE = Query(max_length=60, pattern=r"^[a-z_]+$", description="Why the record is read (audited)")


def transfer_out(actor: Actor, transfer: TransferRequest) -> TransferOut:
    seen_by = workflows.side(actor, transfer)
    holder = seen_by in ("holder", "both")
    requester = seen_by in ("requester", "both")
    accepted = transfer.status == RequestStatus.accepted.value
    return TransferOut(
        id=transfer.id,
        status=RequestStatus(transfer.status),
        side=seen_by,
        resident_id=transfer.resident_id if holder or accepted else None,
        to_community_id=transfer.to_community_id,
        to_dwelling_id=transfer.to_dwelling_id if requester else None,
        requested_by=transfer.requested_by,
        decided_by=transfer.decided_by,
        reason=transfer.reason,
        created_at=transfer.created_at,
        decided_at=transfer.decided_at,
    )


def duplicate_out(flag: DuplicateFlag, seen: set[str]) -> DuplicateOut:
    """A flag with the ids the caller may see (`seen`); the other record's id is withheld."""
    return DuplicateOut(
        id=flag.id,
        resident_a=flag.resident_a if flag.resident_a in seen else None,
        resident_b=flag.resident_b if flag.resident_b in seen else None,
        other_area=not {flag.resident_a, flag.resident_b} <= seen,
        status=DuplicateStatus(flag.status),
        decided_by=flag.decided_by,
        decided_at=flag.decided_at,
        created_at=flag.created_at,
    )


def correction_out(correction: CorrectionRequest) -> CorrectionOut:
    changes = corrections.requested_changes(correction)
    return CorrectionOut.model_validate({**correction.model_dump(), "changes": changes})


def correction_item(correction: CorrectionRequest) -> CorrectionListItem:
    return CorrectionListItem.model_validate(
        {**correction.model_dump(), "fields": sorted(corrections.requested_changes(correction))}
    )


# --- transfers ----------------------------------------------------------------------------------------------


@router.get("/transfers", response_model=Page[TransferOut], summary="Transfer requests to or from my area")
def list_transfers(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    direction: Annotated[
        TransferDirection | None,
        Query(description="incoming: addressed to my communities (I hold the record); outgoing: sent by them"),
    ] = None,
    status: RequestStatus | None = None,
) -> Page[TransferOut]:
    rows, total = paginate(session, workflows.list_transfers(actor, direction=direction, status=status), page)
    return Page(items=[transfer_out(actor, t) for t in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/transfers/{transfer_id}", response_model=TransferOut, summary="One transfer request")
def get_transfer(transfer_id: str, session: SessionDep, actor: StaffActor) -> TransferOut:
    return transfer_out(actor, workflows.get_transfer(session, actor, transfer_id))


@router.post(
    "/transfers/{transfer_id}/accept",
    response_model=TransferOut,
    summary="Holder: hand the record over (it moves to the requested dwelling today)",
)
def accept_transfer(transfer_id: str, session: SessionDep, actor: StaffActor) -> TransferOut:
    return transfer_out(actor, workflows.accept_transfer(session, actor, transfer_id))


@router.post("/transfers/{transfer_id}/reject", response_model=TransferOut, summary="Holder: keep the record")
def reject_transfer(transfer_id: str, body: TransferReject, session: SessionDep, actor: StaffActor) -> TransferOut:
    return transfer_out(actor, workflows.reject_transfer(session, actor, transfer_id, body.reason))


@router.post("/transfers/{transfer_id}/cancel", response_model=TransferOut, summary="Requester: withdraw")
def cancel_transfer(
    transfer_id: str, session: SessionDep, actor: StaffActor, body: TransferCancel | None = None
) -> TransferOut:
    reason = body.reason if body is not None else None
    return transfer_out(actor, workflows.cancel_transfer(session, actor, transfer_id, reason))


# --- duplicates and merges --------------------------------------------------------------------------------------


@router.get("/duplicates", response_model=Page[DuplicateOut], summary="Likely duplicates flagged in my area")
def list_duplicates(
    session: SessionDep, actor: SupervisorActor, page: PageDep, status: DuplicateStatus | None = None
) -> Page[DuplicateOut]:
    rows, total = paginate(session, workflows.list_duplicates(actor, status), page)
    seen = service.ids_in_scope(session, actor, {r for f in rows for r in (f.resident_a, f.resident_b)})
    return Page(items=[duplicate_out(f, seen) for f in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/duplicates/{flag_id}/dismiss", response_model=DuplicateOut, summary="Not the same person")
def dismiss_duplicate(
    flag_id: str, body: DuplicateDismiss, session: SessionDep, actor: SupervisorActor
) -> DuplicateOut:
    flag: DuplicateFlag = workflows.dismiss_duplicate(session, actor, flag_id, body.reason)
    return duplicate_out(flag, service.ids_in_scope(session, actor, {flag.resident_a, flag.resident_b}))


@router.post(
    "/residents/{keep_id}/merge",
    response_model=MergeOut,
    summary="Merge another record into this one (the other is archived with lineage)",
)
def merge_residents(keep_id: str, body: MergeIn, session: SessionDep, actor: SupervisorActor) -> MergeOut:
    result = merging.merge(session, actor, keep_id, body)
    return MergeOut(
        survivor=ResidentOut.model_validate(result.survivor),
        merged_id=result.merged.id,
        tenancies_moved=result.tenancies_moved,
        fp_documents_moved=result.fp_documents_moved,
        health_record=result.health_record,
        duplicate_flags_closed=result.duplicate_flags_closed,
        duplicate_flags_repointed=result.duplicate_flags_repointed,
        transfers_cancelled=result.transfers_cancelled,
        corrections_moved=result.corrections_moved,
    )


# --- corrections --------------------------------------------------------------------------------------------------


@router.post(
    "/residents/{resident_id}/corrections",
    response_model=CorrectionOut,
    status_code=201,
    summary="Record a resident's request to correct their data (PIPL art. 46)",
)
def create_correction(
    resident_id: str, body: CorrectionCreate, session: SessionDep, actor: StaffActor
) -> CorrectionOut:
    return correction_out(corrections.create_correction(session, actor, resident_id, body))


@router.get(
    "/residents/{resident_id}/corrections",
    response_model=Page[CorrectionOut],
    summary="A resident's correction requests, with the requested values (audited)",
)
def resident_corrections(
    resident_id: str,
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    purpose: Annotated[str | None, PURPOSE] = None,
) -> Page[CorrectionOut]:
    resident = service.get_resident(session, actor, resident_id)
    rows, total = paginate(session, corrections.corrections_of(session, actor, resident_id), page)
    service.audit_read(session, resident, "corrections", purpose)
    return Page(items=[correction_out(c) for c in rows], total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/corrections", response_model=Page[CorrectionListItem], summary="Correction requests in my area (field names only)"
)
def list_corrections(
    session: SessionDep, actor: StaffActor, page: PageDep, status: RequestStatus | None = None
) -> Page[CorrectionListItem]:
    rows, total = paginate(session, corrections.list_corrections(actor, status), page)
    return Page(items=[correction_item(c) for c in rows], total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/corrections/{correction_id}/decide",
    response_model=CorrectionOut,
    summary="Accept (applied to the record) or reject, with a reason",
)
def decide_correction(
    correction_id: str, body: CorrectionDecide, session: SessionDep, actor: StaffActor
) -> CorrectionOut:
    return correction_out(corrections.decide_correction(session, actor, correction_id, body))
