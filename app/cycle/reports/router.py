"""The monthly report (月报告) of a community: its figures as JSON, and as XLSX (printed and filed) or CSV
(docs/reports.md). Workers read their communities', supervisors their area's, admins and auditors any."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from app.auth.deps import allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.cycle.reports import approval, export, rollup, rollup_export
from app.cycle.reports.schemas import ApproveIn, CorrectionIn, ReportOut, ReturnIn, RollupOut, SubmitIn
from app.ledger import audit

router = APIRouter(prefix="/cycle/reports", tags=["cycle"])

ReaderActor = Annotated[Actor, allow(Role.worker, Role.supervisor, Role.admin, Role.auditor)]
WorkerActor = Annotated[Actor, allow(Role.worker)]
SupervisorActor = Annotated[Actor, allow(Role.supervisor)]
FieldActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
COMMUNITY = Annotated[str, Path(max_length=32, description="The community (division id)")]
# The format is published (the route checks it itself, for its own code: 422 report_month_format).
MONTH = Annotated[str, Path(max_length=7, description="City month YYYY-MM (422 report_month_format, "
                                                     "report_month_future)",
                            json_schema_extra={"pattern": r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"})]
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "Not a community in your area"},
    422: {"description": "report_month_format, report_month_future"},
}
CSV_TYPE = "text/csv; charset=utf-8"


def _file(session: SessionDep, actor: Actor, community_id: str, month: str, fmt: str) -> Response:
    """The export is recorded (`cycle.report.export`, where the community lies): every file leaving the service
    is, though a report holds counts only."""
    community, report = approval.report(session, actor, community_id, month)
    audit.record(session, "cycle.report.export", target_type="divisions", target_id=community.id,
                 area_path=community.path, district_code=community.district_code,
                 detail={"month": report.month, "format": fmt})
    body = export.to_xlsx(report, approval.authors(session, [report])) if fmt == "xlsx" else export.to_csv(report)
    name = f"report-{community.code}-{report.month}.{fmt}"
    return Response(body, media_type=export.XLSX_TYPE if fmt == "xlsx" else CSV_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


DIVISION = Annotated[str, Path(max_length=32, description="A street, district or city (division id)")]
ROLLUP_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "Not a division in your area"},
    422: {"description": "report_month_format, report_month_future, rollup_level (a community or grid)"},
}


def _rollup_file(session: SessionDep, actor: Actor, division_id: str, month: str, fmt: str) -> Response:
    """Recorded like a community's export (`cycle.rollup.export`, where the division lies)."""
    division, out = rollup.rollup(session, actor, division_id, month)
    audit.record(session, "cycle.rollup.export", target_type="divisions", target_id=division.id,
                 area_path=division.path, district_code=division.district_code,
                 detail={"month": out.month, "format": fmt, "communities": len(out.communities)})
    body = (rollup_export.to_xlsx(out, approval.authors(session, out.communities)) if fmt == "xlsx"
            else rollup_export.to_csv(out))
    name = f"rollup-{division.code}-{out.month}.{fmt}"
    return Response(body, media_type=export.XLSX_TYPE if fmt == "xlsx" else CSV_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/rollup/{division_id}/{month}.xlsx", response_class=Response,
            summary="A roll-up as XLSX: one row per community and the total row (recorded)",
            responses={200: {"content": {export.XLSX_TYPE: {}}, "description": "The roll-up to print"},
                       **ROLLUP_ERRORS})
def rollup_xlsx(division_id: DIVISION, month: MONTH, session: SessionDep, actor: ReaderActor) -> Response:
    return _rollup_file(session, actor, division_id, month, "xlsx")


@router.get("/rollup/{division_id}/{month}.csv", response_class=Response,
            summary="A roll-up as CSV: one row per community and the total row (recorded)",
            responses={200: {"content": {"text/csv": {}}, "description": "One row per community"},
                       **ROLLUP_ERRORS})
def rollup_csv(division_id: DIVISION, month: MONTH, session: SessionDep, actor: ReaderActor) -> Response:
    return _rollup_file(session, actor, division_id, month, "csv")


@router.get("/rollup/{division_id}/{month}", response_model=RollupOut,
            summary="The monthly figures of a street, district or city: totals and each community's report",
            responses=ROLLUP_ERRORS)
def get_rollup(division_id: DIVISION, month: MONTH, session: SessionDep, actor: ReaderActor) -> RollupOut:
    return rollup.rollup(session, actor, division_id, month)[1]


# The files first: "{month}" alone would also match "2026-11.xlsx".
@router.get("/{community_id}/{month}.xlsx", response_class=Response,
            summary="The monthly report as XLSX: title, unit, period, figures, signature lines (recorded)",
            responses={200: {"content": {export.XLSX_TYPE: {}}, "description": "The report to print"}, **ERRORS})
def report_xlsx(community_id: COMMUNITY, month: MONTH, session: SessionDep, actor: ReaderActor) -> Response:
    return _file(session, actor, community_id, month, "xlsx")


@router.get("/{community_id}/{month}.csv", response_class=Response,
            summary="The monthly report as CSV: one row per figure, with a stable code (recorded)",
            responses={200: {"content": {"text/csv": {}}, "description": "One row per figure"}, **ERRORS})
def report_csv(community_id: COMMUNITY, month: MONTH, session: SessionDep, actor: ReaderActor) -> Response:
    return _file(session, actor, community_id, month, "csv")


@router.get("/{community_id}/{month}", response_model=ReportOut,
            summary="A community's monthly report, computed from the records (counts only)", responses=ERRORS)
def get_report(community_id: COMMUNITY, month: MONTH, session: SessionDep, actor: ReaderActor) -> ReportOut:
    return approval.report(session, actor, community_id, month)[1]


DECISION_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "Not a community in your area"},
    409: {"description": "stale_version, report_month_running, report_not_submitted, report_locked"},
    422: {"description": "report_month_format, report_month_future"},
}


@router.post("/{community_id}/{month}/submit", response_model=ReportOut,
             summary="Submit a finished month's report (version 0 the first time): its figures are frozen",
             responses={**DECISION_ERRORS, 409: {"description": "stale_version, report_month_running, "
                                                                "report_already_submitted, report_locked"}})
def submit_report(community_id: COMMUNITY, month: MONTH, body: SubmitIn, session: SessionDep,
                  actor: WorkerActor) -> ReportOut:
    return approval.submit(session, actor, community_id, month, body.version)


@router.post("/{community_id}/{month}/approve", response_model=ReportOut,
             summary="Approve a submitted report (send its version): the month is locked", responses=DECISION_ERRORS)
def approve_report(community_id: COMMUNITY, month: MONTH, body: ApproveIn, session: SessionDep,
                   actor: SupervisorActor) -> ReportOut:
    return approval.decide(session, actor, community_id, month, body.version, None)


@router.post("/{community_id}/{month}/return", response_model=ReportOut,
             summary="Return a submitted report to the worker with a reason (send its version)",
             responses=DECISION_ERRORS)
def return_report(community_id: COMMUNITY, month: MONTH, body: ReturnIn, session: SessionDep,
                  actor: SupervisorActor) -> ReportOut:
    return approval.decide(session, actor, community_id, month, body.version, body.reason)


@router.post("/{community_id}/{month}/corrections", response_model=ReportOut, status_code=201,
             summary="Correct one count of an approved report, with the reason (original and corrected values)",
             responses={404: {"description": "Not a community in your area"},
                        409: {"description": "report_not_locked (not approved)"},
                        422: {"description": "report_month_format, report_month_future, correction_figure (no "
                                             "count of this report), correction_unchanged"}})
def correct_report(community_id: COMMUNITY, month: MONTH, body: CorrectionIn, session: SessionDep,
                   actor: FieldActor) -> ReportOut:
    return approval.correct(session, actor, community_id, month, body.code, body.value, body.reason)
