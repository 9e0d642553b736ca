"""Roll-ups of the monthly report for a street, district or city (issue 13): the figures of every community under
the division, computed once for all of them by the report's grouped aggregates (service.py), each community's
report listed (the trace-back) and the totals summed from them (docs/reports.md)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.types import utcnow
from app.cycle.reports import service
from app.cycle.reports.errors import RollupLevel
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
NO_SUBMISSIONS = ("Reports are not submitted yet: the submit/return/approve workflow of issue 13 is not built, so "
                  "no record says whether or when a community submitted its report. A verification period's "
                  "open/closed state belongs to the verification cycle, not to the report, and is not used.")


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


def rollup(session: Session, actor: Actor, division_id: str, month: str) -> tuple[Division, RollupOut]:
    w = service.window(month)  # the input first: a bad month is 422 wherever the division lies
    division = get_division(session, actor, division_id)
    figures = service.figures(session, division, w)
    reports = [service.community_report(c, w, figures) for c in service.communities(session, division)]
    return division, RollupOut(
        division_id=division.id, division_code=division.code, division_name=division.name, level=division.level,
        month=w.month, as_of=w.as_of, complete=w.complete, generated_at=utcnow(),
        totals=totals(reports, figures.services), communities=reports,
        completeness=None, timeliness=None, completeness_note=NO_SUBMISSIONS)
