"""Police uploads: the station's bulk upload (partner tag), and the staff's review queue of its rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile

from app.auth.deps import allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.sharing.partners.deps import partner
from app.sharing.partners.quotas import QUOTA_RESPONSES, UPLOAD, quota
from app.sharing.uploads import review, rules
from app.sharing.uploads import service as uploads
from app.sharing.uploads.models import Outcome, RowState
from app.sharing.uploads.schemas import (
    REFERENCE,
    PoliceRowAccept,
    PoliceRowDismiss,
    PoliceRowOut,
    PoliceUploadReport,
)

partner_router = APIRouter(prefix="/partner/police", tags=["partner"], dependencies=[quota(UPLOAD)],
                   responses=QUOTA_RESPONSES)
router = APIRouter(prefix="/sharing/police-reports", tags=["sharing"])

PoliceActor = Annotated[Actor, partner(Role.police, "police:upload")]
FieldActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]


@partner_router.post(
    "/registrations", response_model=PoliceUploadReport, max_body_size=rules.MAX_BYTES + 64 * 1024,
    summary="Upload residence-permit registrations and deregistrations (CSV, XLSX or JSON): dry run, or commit",
    responses={201: {"model": PoliceUploadReport, "description": "Committed (the refused rows are listed)"},
               403: {"description": "`insufficient_scope` (police:upload), `disclosure_needs_approval`"},
               409: {"description": "batch_reference_reused: the reference was used for another file; "
                                    "profile_missing"},
               413: {"description": "body_too_large / import_too_large"},
               415: {"description": "import_unsupported_type"},
               422: {"description": "police_upload_columns, import_encoding, import_empty, import_unreadable, "
                                    "import_too_many_rows"}})
def upload_registrations(
    response: Response,
    session: SessionDep,
    actor: PoliceActor,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GB18030), XLSX (first sheet) or JSON array")],
    reference: Annotated[str, Query(pattern=REFERENCE, description="The station's own batch reference: the same "
                                                                   "file under it again changes nothing")],
    dry_run: Annotated[bool, Query(description="Check and classify every row, write nothing")] = False,
) -> PoliceUploadReport:
    data = file.file.read(rules.MAX_BYTES + 1)
    report = uploads.upload(session, actor, data, reference=reference, dry_run=dry_run)
    if not dry_run and not report.replayed:
        response.status_code = 201
    return report


@router.get("", response_model=Page[PoliceRowOut], summary="Police-reported rows in your area (audited read)")
def list_rows(
    session: SessionDep,
    actor: FieldActor,
    page: PageDep,
    state: Annotated[RowState | None, Query(description="pending: new or conflicting rows to resolve")] = None,
    outcome: Outcome | None = None,
) -> Page[PoliceRowOut]:
    rows, total = paginate(session, review.listing(actor, state, outcome), page)
    review.audit_read(session, rows)
    return Page(items=review.rows_out(session, actor, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/{row_id}", response_model=PoliceRowOut, summary="One police-reported row (audited read)")
def get_row(row_id: str, session: SessionDep, actor: FieldActor) -> PoliceRowOut:
    row = review.get_row(session, actor, row_id)
    review.audit_read(session, [row])
    return review.rows_out(session, actor, [row])[0]


@router.post("/{row_id}/accept", response_model=PoliceRowOut,
             summary="Accept a pending row: link it to the registered resident, or register the person")
def accept_row(row_id: str, body: PoliceRowAccept, session: SessionDep, actor: FieldActor) -> PoliceRowOut:
    row = review.accept(session, actor, row_id, body)
    return review.rows_out(session, actor, [row])[0]


@router.post("/{row_id}/dismiss", response_model=PoliceRowOut, summary="Dismiss a pending row with a reason code")
def dismiss_row(row_id: str, body: PoliceRowDismiss, session: SessionDep, actor: FieldActor) -> PoliceRowOut:
    row = review.dismiss(session, actor, row_id, body)
    return review.rows_out(session, actor, [row])[0]
