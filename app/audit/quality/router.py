"""Visit quality for supervisors: scored visits, the review queue worst first, decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit.deps import DIVISION, Period, area_prefix, period
from app.audit.quality import rules, service
from app.audit.quality.rules import Rule
from app.audit.quality.schemas import DecisionIn, DecisionOut, ReasonOut, ScoredVisit
from app.auth.deps import allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep
from app.visits.models import ReviewState

router = APIRouter(prefix="/audit/quality", tags=["audit"])

SupervisorActor = Annotated[Actor, allow(Role.supervisor, Role.admin)]
PeriodDep = Annotated[Period, Depends(period)]


def _page(items: service.Scores, page: PageDep) -> Page[ScoredVisit]:
    chosen = items[page.offset:page.offset + page.limit]
    return Page(items=[_out(i) for i in chosen], total=len(items), limit=page.limit, offset=page.offset)


def _out(item: service.Item) -> ScoredVisit:
    row = rules.Row._make(item.row[:12])
    return ScoredVisit(
        id=row.id, worker_id=row.worker_id, resident_id=row.resident_id, community_id=item.community_id,
        dwelling_id=row.dwelling_id, mode=row.mode, purpose=row.purpose, outcome=row.outcome,
        started_at=datetime.fromtimestamp(round(row.started, 3), UTC),
        ended_at=datetime.fromtimestamp(round(row.ended, 3), UTC),
        review_state=item.review_state, version=item.version, score=item.score,
        reasons=[ReasonOut(rule=r.rule, weight=r.weight, detail=r.detail) for r in item.reasons])


@router.get("/visits", response_model=Page[ScoredVisit],
            summary="Visits in your area scored, with their reasons, worst first (supervisors)")
def scored_visits(
    session: SessionDep,
    actor: SupervisorActor,
    page: PageDep,
    when: PeriodDep,
    division_id: Annotated[str | None, DIVISION] = None,
    worker_id: Annotated[str | None, Query(max_length=32)] = None,
    rule: Annotated[Rule | None, Query(description="Only visits this rule found something on")] = None,
    min_score: Annotated[int, Query(ge=0, le=100)] = 0,
    review_state: ReviewState | None = None,
) -> Page[ScoredVisit]:
    flt = service.Filters(area=area_prefix(session, actor, division_id), worker_id=worker_id,
                          rule=rule.value if rule else None, min_score=min_score,
                          review_state=review_state.value if review_state else None)
    return _page(service.scored_visits(session, actor, when, flt), page)


@router.get("/queue", response_model=Page[ScoredVisit],
            summary="The review queue: unreviewed visits with a score, worst first (supervisors)")
def queue(
    session: SessionDep,
    actor: SupervisorActor,
    page: PageDep,
    when: PeriodDep,
    division_id: Annotated[str | None, DIVISION] = None,
    worker_id: Annotated[str | None, Query(max_length=32)] = None,
    min_score: Annotated[int, Query(ge=1, le=100)] = 1,
) -> Page[ScoredVisit]:
    flt = service.Filters(area=area_prefix(session, actor, division_id), worker_id=worker_id, min_score=min_score,
                          review_state=ReviewState.submitted.value)
    return _page(service.scored_visits(session, actor, when, flt), page)


@router.post("/visits/{visit_id}/decision", response_model=DecisionOut,
             summary="Accept, reject (with a reason) or ask for a revisit (a follow-up task); not your own visits",
             responses={403: {"description": "Your own visit (own_visit_review)"},
                        409: {"description": "stale_version, or the resident is no longer registered (revisit)"}})
def decide(visit_id: str, body: DecisionIn, session: SessionDep, actor: SupervisorActor) -> DecisionOut:
    return service.decide(session, actor, visit_id, body)
