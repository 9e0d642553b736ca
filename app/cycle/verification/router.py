"""The monthly verification (月核查): an admin opens a month, workers record outcomes, supervisors follow the
progress and close a community's period (docs/cycle.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Select

from app.auth.deps import AdminActor, StaffActor, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.cycle.periods import month_of
from app.cycle.verification import export, proposals, recording, service
from app.cycle.verification.models import Outcome, PeriodState
from app.cycle.verification.opening import open_month
from app.cycle.verification.schemas import (
    MONTH,
    OpenIn,
    OpenOut,
    PeriodOut,
    ProposalIn,
    VerificationOut,
    VerificationRecord,
    VersionIn,
)
from app.ledger import audit

router = APIRouter(prefix="/cycle", tags=["cycle"])

FieldActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
MONTH_Q = Query(pattern=MONTH, description="City month YYYY-MM")
ID_Q = Query(max_length=32)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


@router.post("/open", response_model=OpenOut,
             summary="Open a month: a period per community and a pending verification per registered resident "
                     "(idempotent: safe to run daily)",
             responses={422: {"description": "period_month_out_of_range"}})
def open_period(body: OpenIn, session: SessionDep, actor: AdminActor) -> OpenOut:
    month = body.month or month_of(recording.city_today())
    counts = open_month(session, month, actor, body.district_code)
    audit.record(session, "cycle.open", target_type="periods",
                 detail={"month": month, "district_code": body.district_code, **vars(counts)})
    return OpenOut(month=month, **vars(counts))


@router.get("/periods", response_model=Page[PeriodOut], summary="Periods in your area, with their progress")
def list_periods(session: SessionDep, actor: StaffActor, page: PageDep,
                 month: Annotated[str | None, MONTH_Q] = None,
                 community_id: Annotated[str | None, ID_Q] = None,
                 state: PeriodState | None = None) -> Page[PeriodOut]:
    rows, total = paginate(session, service.list_periods(actor, month=month, community_id=community_id, state=state),
                           page)
    return Page(items=service.periods_out(session, actor, rows), total=total, limit=page.limit, offset=page.offset)


@router.get("/periods/{period_id}", response_model=PeriodOut,
            summary="One period with its progress (verifications in your area by outcome, coverage)")
def get_period(period_id: str, session: SessionDep, actor: StaffActor) -> PeriodOut:
    return service.periods_out(session, actor, [service.get_period(session, actor, period_id)])[0]


@router.post("/periods/{period_id}/close", response_model=PeriodOut, summary="Close a period (send its version)",
             responses={409: {"description": "period_closed, stale_version"}})
def close_period(period_id: str, body: VersionIn, session: SessionDep, actor: SupervisorActor) -> PeriodOut:
    period = service.close_period(session, actor, period_id, body.version)
    return service.periods_out(session, actor, [period])[0]


@dataclass(frozen=True)
class ListFilters:
    """The verification list's filters, shared by the list route and its exports."""

    period_id: str | None
    month: str | None
    community_id: str | None
    grid_id: str | None
    resident_id: str | None
    outcomes: list[Outcome]
    pending: bool | None
    flagged: bool | None = None

    def used(self) -> dict[str, Any]:
        """The filters given, for the audit event: ids, the month and codes, never a personal value."""
        given = {"period_id": self.period_id, "month": self.month, "community_id": self.community_id,
                 "grid_id": self.grid_id, "resident_id": self.resident_id, "pending": self.pending,
                 "flagged": self.flagged,
                 "outcome": [o.value for o in self.outcomes] or None}
        return {k: v for k, v in given.items() if v is not None}

    def statement(self, session: SessionDep, actor: Actor) -> Select[Any]:
        grid = service.grid_path(session, self.grid_id) if self.grid_id is not None else None
        return service.list_verifications(actor, period_id=self.period_id, month=self.month,
                                          community_id=self.community_id, grid_path=grid, outcomes=self.outcomes,
                                          pending=self.pending, resident_id=self.resident_id,
                                          flagged=self.flagged)


async def list_filters(  # async: no I/O
    period_id: Annotated[str | None, ID_Q] = None,
    month: Annotated[str | None, MONTH_Q] = None,
    community_id: Annotated[str | None, ID_Q] = None,
    grid_id: Annotated[str | None, ID_Q] = None,
    resident_id: Annotated[str | None, ID_Q] = None,
    outcome: Annotated[list[Outcome] | None, Query(max_length=7, description="Outcomes (repeatable)")] = None,
    pending: Annotated[bool | None, Query(description="true: no outcome yet; false: recorded")] = None,
    flagged: Annotated[bool | None, Query(description="true: recorded at a flagged check-in; false: not")] = None,
) -> ListFilters:
    return ListFilters(period_id, month, community_id, grid_id, resident_id, outcome or [], pending, flagged)


FiltersDep = Annotated[ListFilters, Depends(list_filters)]


@router.get("/verifications", response_model=Page[VerificationOut],
            summary="Verifications in your area (filter by period, month, place, grid, outcome, pending, "
                    "flagged check-in)")
def list_verifications(session: SessionDep, actor: StaffActor, page: PageDep, flt: FiltersDep
                       ) -> Page[VerificationOut]:
    rows, total = paginate(session, flt.statement(session, actor), page)
    return Page(items=[VerificationOut.model_validate(r) for r in rows], total=total, limit=page.limit,
                offset=page.offset)


def _export(session: SessionDep, actor: Actor, flt: ListFilters, fmt: str) -> StreamingResponse:
    """Audited (`cycle.verification.export`: the list carries residents' names), in the request's unit of work;
    the rows are streamed afterwards from a read of their own (export.py)."""
    listed = flt.statement(session, actor)
    head = export.heading(session, actor, flt.community_id, flt.month)
    audit.record(session, "cycle.verification.export", target_type="verifications", area_path=head.area_path,
                 fields=["name", "sex", "address"],
                 detail={"format": fmt, "rows": export.count(session, listed), "filters": flt.used()})
    stmt = export.rows_stmt(listed)
    body = export.stream_xlsx(stmt, head) if fmt == "xlsx" else export.stream_csv(stmt)
    name = f"verifications-{flt.month or 'all'}.{fmt}"
    return StreamingResponse(body, media_type=XLSX_TYPE if fmt == "xlsx" else CSV_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/verifications.xlsx", response_class=StreamingResponse,
            summary="The verification list as the printed form (XLSX; same filters as the list; recorded)",
            responses={200: {"content": {XLSX_TYPE: {}}, "description": "Title, unit, period, one row per "
                                                                       "verification, signature lines"}})
def export_verifications_xlsx(session: SessionDep, actor: StaffActor, flt: FiltersDep) -> StreamingResponse:
    return _export(session, actor, flt, "xlsx")


@router.get("/verifications.csv", response_class=StreamingResponse,
            summary="The verification list as CSV (same filters as the list; recorded)",
            responses={200: {"content": {"text/csv": {}}, "description": "One row per verification"}})
def export_verifications_csv(session: SessionDep, actor: StaffActor, flt: FiltersDep) -> StreamingResponse:
    return _export(session, actor, flt, "csv")


@router.get("/verifications/{verification_id}", response_model=VerificationOut, summary="One verification")
def get_verification(verification_id: str, session: SessionDep, actor: StaffActor) -> VerificationOut:
    return VerificationOut.model_validate(recording.get_verification(session, actor, verification_id))


@router.put("/verifications/{verification_id}", response_model=VerificationOut,
            summary="Record the outcome with its evidence (send the version read; the same outcome again is a "
                    "no-op)",
            responses={404: {"description": "Out of your area, or the visit / new dwelling is"},
                       409: {"description": "period_closed, stale_version, verification_recorded, "
                                            "resident_not_registered"},
                       422: {"description": "evidence_missing, dwelling_required, same_dwelling, "
                                            "visit_other_resident, date_out_of_range"}})
def record_verification(verification_id: str, body: VerificationRecord, session: SessionDep,
                        actor: FieldActor) -> VerificationOut:
    verification, _ = recording.record(session, actor, verification_id, body)
    return VerificationOut.model_validate(verification)


@router.post("/proposals", response_model=VerificationOut,
             summary="Record a partner's proposed outcome for a resident's verification of the month (a worker "
                     "confirms it with the evidence partner; the same proposal again is a no-op)",
             responses={404: {"description": "No verification of the resident in the month"},
                        409: {"description": "verification_recorded, period_closed, report_locked"},
                        422: {"description": "date_out_of_range"}})
def propose(body: ProposalIn, session: SessionDep, actor: AdminActor) -> VerificationOut:
    verification, _ = proposals.propose(session, actor, body.resident_id, body.outcome, body.source,
                                        body.proposed_on, body.month)
    return VerificationOut.model_validate(verification)
