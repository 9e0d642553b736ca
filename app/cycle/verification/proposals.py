"""Partner-proposed outcomes (docs/cycle.md, "Partner proposals"): a partner's records (a police deregistration, a
landlord's move-out, the home city's answer) propose an outcome for a resident's verification of the month; a
worker confirms it by recording that outcome with the evidence `partner` (recording.py), on the REST route or
offline through sync (the proposal travels to the phone with the verification).

`propose` is the one entry point: the admin route calls it today, the sharing domain (police uploads, landlord
move-outs) will. The proposal stays on the row once recorded, as history of what the partner said."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.types import utcnow
from app.cycle.periods import month_of
from app.cycle.reports.errors import ReportLocked
from app.cycle.reports.models import ReportSubmission, SubmissionState
from app.cycle.verification import recording
from app.cycle.verification.errors import PeriodClosed, VerificationNotFound, VerificationRecorded
from app.cycle.verification.models import Outcome, Period, PeriodState, ProposalSource, Verification
from app.ledger import audit
from app.people.models import Resident
from app.people.register import service as register


def _verification(session: Session, actor: Actor, resident_id: str, month: str) -> Verification:
    """The resident's verification of the month in the caller's area, locked: the pending one (after a move the
    recorded one stays in the old community), else a recorded one (409 below); none is 404."""
    session.execute(select(col(Resident.id)).where(col(Resident.id) == resident_id).with_for_update()).first()
    found = list(session.execute(select(Verification).where(
        col(Verification.resident_id) == resident_id, col(Verification.month) == month,
        actor.area_filter(col(Verification.area_path), col(Verification.district_code)),
    ).order_by(col(Verification.outcome).is_not(None), col(Verification.id)).with_for_update()
        .execution_options(populate_existing=True)).scalars())
    if not found:
        raise VerificationNotFound({"field": "resident_id"})
    return found[0]


def _check_open(session: Session, verification: Verification) -> None:
    """A closed period, or a month whose report is approved (locked), takes no proposal."""
    period = session.execute(select(Period).where(col(Period.id) == verification.period_id)
                             .with_for_update(read=True)).scalar_one()
    if period.state != PeriodState.open.value:
        raise PeriodClosed()
    locked = session.execute(select(col(ReportSubmission.id)).where(
        col(ReportSubmission.community_id) == verification.community_id,
        col(ReportSubmission.month) == verification.month,
        col(ReportSubmission.state) == SubmissionState.approved.value)).first()
    if locked is not None:
        raise ReportLocked()


def propose(session: Session, actor: Actor, resident_id: str, outcome: Outcome, source: ProposalSource,
            proposed_on: date | None = None, month: str | None = None) -> tuple[Verification, bool]:
    """Record a partner's proposed outcome on the resident's pending verification of `month` (default: the
    current city month); returns it and whether anything changed (the same proposal again changes nothing; a
    different one replaces a pending proposal). Refused: 404 no verification in the caller's area, 409
    `verification_recorded`, `period_closed`, `report_locked`, 422 `date_out_of_range`."""
    month = month or month_of(recording.city_today())
    verification = _verification(session, actor, resident_id, month)
    if verification.outcome is not None:
        raise VerificationRecorded()
    if proposed_on is not None:
        register.check_dates(proposed_on)
    same = (verification.proposed_outcome, verification.proposed_source, verification.proposed_on) == (
        outcome.value, source.value, proposed_on)
    if same:
        return verification, False
    _check_open(session, verification)
    verification.proposed_outcome, verification.proposed_source = outcome.value, source.value
    verification.proposed_on, verification.proposed_at, verification.proposed_by = proposed_on, utcnow(), actor.user_id
    verification.version += 1
    verification.updated_at = utcnow()
    session.add(verification)
    session.flush()
    audit.record(session, "cycle.verification.propose", target_type="verifications", target_id=verification.id,
                 area_path=verification.area_path, district_code=verification.district_code,
                 detail={"month": month, "source": source.value, "period_id": verification.period_id})
    return verification, True
