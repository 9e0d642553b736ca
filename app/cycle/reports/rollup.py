"""Roll-ups of the monthly report for a street, district or city (issue 13): the figures of every community under
the division, computed once for all of them by the report's grouped aggregates (service.py), each community's
report listed (the trace-back) and the totals summed from them (docs/reports.md)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, func, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.types import utcnow
from app.cycle.reports import approval, service
from app.cycle.reports.errors import RollupLevel
from app.cycle.reports.export import lines
from app.cycle.reports.models import FROZEN, ReportCorrection, ReportSubmission, SubmissionState
from app.cycle.reports.schemas import (
    FpChecks,
    KeyPersons,
    Movement,
    ReportOut,
    RollupOut,
    Stock,
    Totals,
    VisitFigures,
)
from app.people.models import FpDocStatus
from app.places.models import Division, Level

LEVELS = (Level.city.value, Level.district.value, Level.street.value)
def get_division(session: Session, actor: Actor, division_id: str) -> Division:
    """A division in the caller's area (else 404, whatever it is); a community or grid there is 422."""
    found = session.execute(select(Division).where(
        col(Division.id) == division_id,
        actor.area_filter(col(Division.path), col(Division.district_code)))).scalar_one_or_none()
    if found is None:
        raise NotFound()
    if found.level not in LEVELS:
        raise RollupLevel()
    return found


def add(dicts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for key, n in d.items():
            out[key] = out.get(key, 0) + n
    return out


def totals(reports: list[ReportOut], services: service.Services) -> Totals:
    def total(values: Iterable[int]) -> int:
        return sum(values)

    by_outcome = add(r.verifications.by_outcome for r in reports)
    by_outcome["pending"] = total(r.verifications.pending for r in reports)
    keys, met = total(r.key_persons.registered for r in reports), total(r.key_persons.visited for r in reports)
    fp = add(r.fp_documents.by_status for r in reports)
    return Totals(
        communities=len(reports),
        stock=Stock(total=total(r.stock.total for r in reports), male=total(r.stock.male for r in reports),
                    female=total(r.stock.female for r in reports),
                    women_15_49=total(r.stock.women_15_49 for r in reports)),
        movement=Movement(arrivals=total(r.movement.arrivals for r in reports),
                          departures=total(r.movement.departures for r in reports)),
        verifications=service.verification_figures(None, by_outcome),
        visits=VisitFigures(in_person=total(r.visits.in_person for r in reports),
                            phone=total(r.visits.phone for r in reports),
                            in_person_met=total(r.visits.in_person_met for r in reports),
                            phone_met=total(r.visits.phone_met for r in reports)),
        key_persons=KeyPersons(registered=keys, visited=met, share=service.share(met, keys)),
        fp_documents=FpChecks(checked=sum(fp.values()), by_status={s.value: fp.get(s.value, 0) for s in FpDocStatus}),
        services=services.lines(None),
        overdue=service.overdue_figures(add(r.overdue.tasks_by_kind for r in reports),
                                        total(r.overdue.assistance_requests for r in reports)))


def submitted_counts(session: Session, division: Division, month: str) -> tuple[int, int, int]:
    """(communities, submitted or approved, first submitted by the due day): one aggregate over the division's
    communities left-joined to their submissions of the month."""
    u = service.units(division)
    counted = col(ReportSubmission.state).in_(FROZEN)
    row = session.execute(
        select(func.count(u.c.id), func.count(col(ReportSubmission.id)).filter(counted),
               func.coalesce(func.sum(case((and_(counted, col(ReportSubmission.late).is_(False)), 1), else_=0)), 0))
        .select_from(u).outerjoin(ReportSubmission, and_(col(ReportSubmission.community_id) == u.c.id,
                                                          col(ReportSubmission.month) == month))).one()
    return int(row[0]), int(row[1]), int(row[2])


def submissions(session: Session, division: Division, month: str) -> dict[str, ReportSubmission]:
    rows = session.execute(select(ReportSubmission).where(
        col(ReportSubmission.month) == month,
        service.inside(division, col(ReportSubmission.area_path), col(ReportSubmission.district_code)))).scalars()
    return {r.community_id: r for r in rows}


def corrections(session: Session, division: Division, month: str) -> dict[str, list[ReportCorrection]]:
    """The corrections after the lock of the division's approved reports of the month, by community, oldest first
    (one statement)."""
    found: dict[str, list[ReportCorrection]] = {}
    for fix in session.execute(select(ReportCorrection).join(
            ReportSubmission, col(ReportSubmission.id) == col(ReportCorrection.submission_id)).where(
            col(ReportCorrection.month) == month, col(ReportSubmission.state) == SubmissionState.approved.value,
            service.inside(division, col(ReportCorrection.area_path), col(ReportCorrection.district_code)))
            .order_by(col(ReportCorrection.community_id), col(ReportCorrection.seq))).scalars():
        found.setdefault(fix.community_id, []).append(fix)
    return found


def corrected_totals(reports: list[ReportOut]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Each figure a community corrected, summed over the communities with the corrected values (the others'
    as approved), and the communities whose corrections it includes."""
    codes = sorted({code for r in reports for code in r.corrected})
    if not codes:
        return {}, {}
    values = [{line.key: line.value for line in lines(r)} for r in reports]
    sums = {code: sum(int(r.corrected.get(code, v.get(code) or 0)) for r, v in zip(reports, values, strict=True))
            for code in codes}
    return sums, {code: [r.community_id for r in reports if code in r.corrected] for code in codes}


def frozen_services(figures: service.Figures, report: ReportOut) -> None:
    """A community whose figures are frozen counts its frozen deliveries in the totals' service lines."""
    figures.services.done[report.community_id] = {
        line.item_id: (line.deliveries, line.quantity) for line in report.services if line.deliveries}


def rollup(session: Session, actor: Actor, division_id: str, month: str) -> tuple[Division, RollupOut]:
    w = service.window(month)  # the input first: a bad month is 422 wherever the division lies
    division = get_division(session, actor, division_id)
    figures = service.figures(session, division, w)
    sent = submissions(session, division, w.month)
    fixes = corrections(session, division, w.month)
    reports = []
    for c in service.communities(session, division):
        report = approval.with_submission(service.community_report(c, w, figures), sent.get(c.id), fixes.get(c.id))
        if report.submission is not None and report.submission.frozen:
            frozen_services(figures, report)
        reports.append(report)
    n, submitted, on_time = submitted_counts(session, division, w.month)
    corrected, by = corrected_totals(reports)
    return division, RollupOut(
        division_id=division.id, division_code=division.code, division_name=division.name, level=division.level,
        month=w.month, as_of=w.as_of, complete=w.complete, generated_at=utcnow(),
        totals=totals(reports, figures.services), communities=reports,
        completeness=service.share(submitted, n), timeliness=service.share(on_time, n),
        submitted=submitted, on_time=on_time, corrected=corrected, corrected_communities=by)
