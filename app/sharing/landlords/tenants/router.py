"""Tenant reports: the landlord's move-in and move-out reports and current tenants under /partner/landlord,
and the staff queue of reports waiting for a worker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.auth.deps import StaffActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.sharing.approvals import service as approvals
from app.sharing.approvals.models import RequestRoute
from app.sharing.approvals.schemas import HeldOut
from app.sharing.landlords.models import ReportKind, ReportState
from app.sharing.landlords.router import NOT_CONFIRMED, PARTNER_TAG, LandlordActor
from app.sharing.landlords.service import paginate_rows
from app.sharing.landlords.tenants import service
from app.sharing.landlords.tenants.schemas import (
    DismissIn,
    MoveInIn,
    MoveOutIn,
    MyReport,
    RegisterFromReport,
    ReportOut,
    Tenant,
)
from app.sharing.partners.quotas import QUOTA_RESPONSES, landlord_quota

partner_router = APIRouter(prefix="/partner/landlord", tags=[PARTNER_TAG], dependencies=[landlord_quota()],
                        responses=QUOTA_RESPONSES)
router = APIRouter(tags=["landlord-partners"])

RETRIED: dict[int | str, dict[str, Any]] = {
    200: {"description": "The same report was made before (same dwelling, person or tenancy, and date): that report",
          "model": MyReport}}


@partner_router.post("/move-ins", response_model=MyReport, status_code=201, responses={**RETRIED, **NOT_CONFIRMED},
                     summary="Report a tenant moving into one of my confirmed dwellings")
def move_in(body: MoveInIn, response: Response, session: SessionDep, actor: LandlordActor) -> MyReport:
    """`applied` when the register already holds the person in the dwelling's community (the tenancy is open,
    `tenancy_id`), else `pending` until a worker registers them. `late`: more than 3 working days after."""
    report, created = service.move_in(session, actor, body)
    if not created:
        response.status_code = 200
    return service.my_report(report)


@partner_router.post("/move-outs", response_model=MyReport, status_code=201,
                     responses={**RETRIED, **NOT_CONFIRMED,
                                409: {"description": "`tenancy_closed`: it ended on another date"}},
                     summary="Report a tenant moving out (closes the tenancy; a worker verifies)")
def move_out(body: MoveOutIn, response: Response, session: SessionDep, actor: LandlordActor) -> MyReport:
    report, created = service.move_out(session, actor, body)
    if not created:
        response.status_code = 200
    return service.my_report(report)


@partner_router.get("/reports", response_model=Page[MyReport], responses=NOT_CONFIRMED,
                    summary="My reports, newest first")
def my_reports(session: SessionDep, actor: LandlordActor, page: PageDep) -> Page[MyReport]:
    rows, total = paginate(session, service.my_reports(actor), page)
    return Page(items=[service.my_report(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@partner_router.get("/tenants", response_model=Page[Tenant], responses={**NOT_CONFIRMED, 202: {
    "model": HeldOut, "description": "The landlord profile requires a supervisor's approval of each "
    "disclosure: the request is held (nothing disclosed); collect it at /partner/disclosure-requests/{id}"}},
                    summary="My current tenants (ID and phone masked; each read is on the tenant's disclosure record)")
def tenants(session: SessionDep, actor: LandlordActor, page: PageDep) -> Any:
    profile = approvals.gate(session, service.PARTNER_KIND)
    if profile is not None:
        account = service.confirmed(actor)
        area = service.account_area(session, account.account_id)
        return approvals.accepted(approvals.hold(session, actor, profile, RequestRoute.landlord_tenants,
                                                 page.model_dump(), area))
    rows, total = paginate_rows(session, service.tenants_query(actor), page)
    return Page(items=service.tenants_out(session, actor, rows), total=total, limit=page.limit, offset=page.offset)


# --- staff ----------------------------------------------------------------------------------------------


@router.get("/landlord-reports", response_model=Page[ReportOut],
            summary="Tenant reports from landlords in your area (state=pending: the people to register)")
def list_reports(session: SessionDep, actor: StaffActor, page: PageDep,
                 state: ReportState | None = None,
                 kind: Annotated[ReportKind | None, Query()] = None) -> Page[ReportOut]:
    rows, total = paginate(session, service.reports_query(actor, state, kind), page)
    return Page(items=[service.report_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/landlord-reports/{report_id}/register", response_model=ReportOut,
             summary="Register the person of a pending move-in (the register's rules apply)",
             responses={409: {"description": "`report_not_pending`, and the register's `resident_exists`, "
                                             "`resident_registered_elsewhere` (a transfer request is open), "
                                             "`resident_identity_mismatch`"}})
def register_from_report(report_id: str, body: RegisterFromReport, session: SessionDep,
                         actor: StaffActor) -> ReportOut:
    return service.report_out(service.register_from_report(session, actor, report_id, body))


@router.post("/landlord-reports/{report_id}/dismiss", response_model=ReportOut, summary="Dismiss with a reason code",
             responses={409: {"description": "`report_not_pending`"}})
def dismiss(report_id: str, body: DismissIn, session: SessionDep, actor: StaffActor) -> ReportOut:
    return service.report_out(service.dismiss(session, actor, report_id, body))
