"""The monthly report's approval (issue 13): the worker submits a finished month's report, a supervisor approves it
(locked) or returns it with a reason, the worker resubmits. Submitting freezes the figures; the report read shows
the frozen figures with where the report stands (docs/reports.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.models import User
from app.core.actor import Actor
from app.core.config import get_settings
from app.core.errors import StaleVersion
from app.core.types import city_date, utcnow
from app.cycle.reports import export, service
from app.cycle.reports.errors import (
    CorrectionFigure,
    CorrectionUnchanged,
    ReportAlreadySubmitted,
    ReportLocked,
    ReportMonthRunning,
    ReportNotLocked,
    ReportNotSubmitted,
)
from app.cycle.reports.models import FROZEN, ReportCorrection, ReportSubmission, SubmissionState
from app.cycle.reports.schemas import CorrectionOut, ReportOut, SubmissionOut
from app.ledger import audit
from app.places.models import Division

WAITING = (SubmissionState.submitted.value, SubmissionState.resubmitted.value)


def now() -> datetime:
    """The moment a submission or decision is recorded (one place, so a test can set it)."""
    return utcnow()


def due_on(month: str) -> date:
    """REPORT_DUE_DAY of the month after the report's month: the report covers a whole month."""
    year, m = int(month[:4]), int(month[5:7])
    return date(year + m // 12, m % 12 + 1, get_settings().report_due_day)


def find(session: Session, community_id: str, month: str, *, for_update: bool = False) -> ReportSubmission | None:
    stmt = select(ReportSubmission).where(col(ReportSubmission.community_id) == community_id,
                                          col(ReportSubmission.month) == month)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def submission_out(month: str, row: ReportSubmission | None) -> SubmissionOut:
    if row is None:
        return SubmissionOut(state="open", version=0, due_on=due_on(month), late=None, submissions=0,
                             first_submitted_at=None, submitted_at=None, submitted_by=None, returned_at=None,
                             returned_by=None, return_reason=None, approved_at=None, approved_by=None, frozen=False)
    return SubmissionOut(
        state=row.state, version=row.version, due_on=row.due_on, late=row.late, submissions=row.submissions,
        first_submitted_at=row.first_submitted_at, submitted_at=row.submitted_at, submitted_by=row.submitted_by,
        returned_at=row.returned_at, returned_by=row.returned_by, return_reason=row.return_reason,
        approved_at=row.approved_at, approved_by=row.approved_by, frozen=row.state in FROZEN)


def with_submission(report: ReportOut, row: ReportSubmission | None,
                    corrections: list[ReportCorrection] | None = None) -> ReportOut:
    """The report as it stands: the frozen figures once submitted (not while returned), with its submission and
    the corrections made after the lock (the latest of each figure gives its corrected value)."""
    if row is not None and row.state in FROZEN:
        report = ReportOut.model_validate_json(row.figures)
    fixes = [CorrectionOut.model_validate(c, from_attributes=True) for c in corrections or []]
    return report.model_copy(update={"submission": submission_out(report.month, row), "corrections": fixes,
                                     "corrected": {c.code: c.corrected for c in fixes}})


def corrections_of(session: Session, row: ReportSubmission | None) -> list[ReportCorrection]:
    if row is None or row.state != SubmissionState.approved.value:
        return []
    return list(session.execute(select(ReportCorrection).where(col(ReportCorrection.submission_id) == row.id)
                                .order_by(col(ReportCorrection.seq))).scalars())


def authors(session: Session, reports: list[ReportOut]) -> dict[str, str]:
    """The display names of the corrections' authors, for the printed forms (the JSON carries their ids)."""
    ids = sorted({c.author for r in reports for c in r.corrections})
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(col(User.id), col(User.display_name)).where(col(User.id).in_(ids)))}


def report(session: Session, actor: Actor, community_id: str, month: str) -> tuple[Division, ReportOut]:
    """The community's report: frozen figures when submitted or approved, else computed from the records."""
    w = service.window(month)  # the input first: a bad month is 422 wherever the community lies
    community = service.get_community(session, actor, community_id)
    row = find(session, community.id, w.month)
    if row is not None and row.state in FROZEN:
        frozen = ReportOut.model_validate_json(row.figures)
        return community, with_submission(frozen, row, corrections_of(session, row))
    live = service.community_report(community, w, service.figures(session, community, w))
    return community, with_submission(live, row)


def _locked(session: Session, actor: Actor, community_id: str, month: str, version: int,
            *, submitting: bool) -> tuple[Division, service.Window, ReportSubmission | None]:
    """The checks every transition shares, in order: the month (422), the community (404), the month over (409),
    the row locked, nothing to decide on (409 report_not_submitted), the version (409 stale_version), an approved
    report (409 report_locked)."""
    w = service.window(month)
    community = service.get_community(session, actor, community_id)
    if not w.complete:
        raise ReportMonthRunning()
    row = find(session, community.id, w.month, for_update=True)
    if row is None and not submitting:
        raise ReportNotSubmitted()
    current = row.version if row is not None else 0
    if current != version:
        raise StaleVersion({"current_version": current})
    if row is not None and row.state == SubmissionState.approved.value:
        raise ReportLocked()
    return community, w, row


def _record(session: Session, action: str, community: Division, row: ReportSubmission, **detail: Any) -> None:
    """One event per transition (ids, states and flags only: never the reason's text)."""
    audit.record(session, action, target_type="report_submissions", target_id=row.id, area_path=community.path,
                 district_code=community.district_code,
                 detail={"community_id": community.id, "month": row.month, "state": row.state, **detail})


def submit(session: Session, actor: Actor, community_id: str, month: str, version: int) -> ReportOut:
    """open → submitted, returned → resubmitted; the figures are computed and frozen now."""
    community, w, row = _locked(session, actor, community_id, month, version, submitting=True)
    if row is not None and row.state in WAITING:
        raise ReportAlreadySubmitted()
    at = now()
    figures = service.community_report(community, w, service.figures(session, community, w))
    frozen = figures.model_dump_json()
    if row is None:
        due = due_on(w.month)
        row = ReportSubmission(community_id=community.id, month=w.month, area_path=community.path,
                               district_code=community.district_code or "", state=SubmissionState.submitted.value,
                               due_on=due, late=city_date(at) > due, first_submitted_at=at, submitted_at=at,
                               submitted_by=actor.user_id, figures=frozen)
    else:
        row.state, row.submitted_at, row.submitted_by = SubmissionState.resubmitted.value, at, actor.user_id
        row.submissions += 1
        row.figures, row.version, row.updated_at = frozen, row.version + 1, at
    session.add(row)
    session.flush()
    _record(session, "cycle.report.submit", community, row, late=row.late, submissions=row.submissions)
    return with_submission(figures, row)


def decide(session: Session, actor: Actor, community_id: str, month: str, version: int,
           reason: str | None) -> ReportOut:
    """submitted/resubmitted → approved (reason None; locked) or → returned (with the reason)."""
    community, _, row = _locked(session, actor, community_id, month, version, submitting=False)
    if row is None or row.state not in WAITING:
        raise ReportNotSubmitted()
    at = now()
    if reason is None:
        row.state, row.approved_at, row.approved_by = SubmissionState.approved.value, at, actor.user_id
    else:
        row.state, row.returned_at, row.returned_by = SubmissionState.returned.value, at, actor.user_id
        row.return_reason = reason
    row.version, row.updated_at = row.version + 1, at
    session.add(row)
    session.flush()
    action = "cycle.report.approve" if reason is None else "cycle.report.return"
    _record(session, action, community, row, submissions=row.submissions)
    return with_submission(ReportOut.model_validate_json(row.figures), row)


def correct(session: Session, actor: Actor, community_id: str, month: str, code: str, value: int,
            reason: str) -> ReportOut:
    """A correction of one count of an approved report: its reason and author, the value before and after."""
    w = service.window(month)
    community = service.get_community(session, actor, community_id)
    row = find(session, community.id, w.month, for_update=True)  # corrections of one report follow each other
    if row is None or row.state != SubmissionState.approved.value:
        raise ReportNotLocked()
    frozen = ReportOut.model_validate_json(row.figures)
    counts = {line.key: line.value for line in export.lines(frozen) if isinstance(line.value, int)}
    if code not in counts:
        raise CorrectionFigure()
    earlier = corrections_of(session, row)
    current = next((c.corrected for c in reversed(earlier) if c.code == code), counts[code])
    if value == current:
        raise CorrectionUnchanged()
    fix = ReportCorrection(submission_id=row.id, seq=len(earlier) + 1, community_id=community.id, month=row.month,
                           area_path=row.area_path, district_code=row.district_code, code=code, original=current,
                           corrected=value, reason=reason, author=actor.user_id, created_at=now())
    session.add(fix)
    session.flush()
    _record(session, "cycle.report.correct", community, row, code=code, correction_id=fix.id)
    return with_submission(frozen, row, [*earlier, fix])
