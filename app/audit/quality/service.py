"""Visit quality for supervisors: every visit in scope and period scored (rules.py), filtered, the review
queue worst first, and the supervisor's decision — accept, reject with a reason, or ask for a revisit (a
follow-up task) — through the visits domain's own review (`recording.review_visit`: versions, own work 403,
every decision kept in `visit_reviews`), recorded in the chain as `visit.quality_decision`.

Scores are computed when asked, never stored: a change of threshold applies to every visit at once, and the
neighbours a rule looks at (the worker's previous check-in) are read with the visits. One statement reads
the period (a day more at each end, so the first and last visits have their neighbours), sorted by worker and
start, with the columns the rules need; one pass scores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from operator import itemgetter
from typing import Any, overload

from sqlalchemy import Float, FunctionElement, Select, select
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Session, col

from app.audit.deps import Period
from app.audit.quality import rules
from app.audit.quality.schemas import Decision, DecisionIn, DecisionOut
from app.core.actor import Actor
from app.core.config import Settings, get_settings
from app.core.queries import starts_with
from app.core.types import city_date, city_today
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import TaskCreate
from app.ledger import audit
from app.sync.models import SyncDevice
from app.visits import recording
from app.visits import service as visits
from app.visits.models import FollowUpReason, Visit
from app.visits.schemas import ReviewDecision, ReviewIn, ReviewReason


class epoch_seconds(FunctionElement[float]):
    """A timestamp column as seconds since 1970 (a float): the rules do arithmetic, and the database converts
    faster than Python builds datetime objects."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


CONTEXT = timedelta(days=1)  # read this much around the period: the first visit's predecessor, the last's successor
ROW_COLUMNS: tuple[Any, ...] = (
    Visit.id, Visit.worker_id, Visit.resident_id, Visit.dwelling_id, Visit.mode, Visit.purpose, Visit.outcome,
    epoch_seconds(col(Visit.started_at)).label("started"), epoch_seconds(col(Visit.ended_at)).label("ended"),
    Visit.lat, Visit.lng, Visit.flags)
EXTRA_COLUMNS: tuple[Any, ...] = (Visit.community_id, Visit.area_path, Visit.review_state, Visit.version)
REVISIT_DAYS = 7


@dataclass(frozen=True)
class Filters:
    area: str | None = None  # a division path inside the actor's scope
    worker_id: str | None = None
    rule: str | None = None
    min_score: int = 0
    review_state: str | None = None


class Item:
    """A scored visit: its row (the rules' twelve columns, then community, area, review state, version), its
    reasons and score."""

    __slots__ = ("reasons", "row", "score")
    NO_REASONS: tuple[rules.Reason, ...] = ()  # shared by every clean visit

    def __init__(self, row: tuple[Any, ...], scored: rules.Scored | None) -> None:
        self.row = row
        self.reasons: Sequence[rules.Reason] = scored.reasons if scored is not None else Item.NO_REASONS
        self.score = scored.score if scored is not None else 0

    @property
    def id(self) -> str:
        return str(self.row[rules.ID])

    @property
    def worker_id(self) -> str:
        return str(self.row[rules.WORKER])

    @property
    def community_id(self) -> str:
        return str(self.row[12])

    @property
    def area_path(self) -> str:
        return str(self.row[13])

    @property
    def review_state(self) -> str:
        return str(self.row[14])

    @property
    def version(self) -> int:
        return int(self.row[15])


def drifting_devices(session: Session, worker_ids: set[str], settings: Settings) -> dict[str, dict[str, Any]]:
    """worker id → the devices whose last reported clock skew is beyond QUALITY_MAX_CLOCK_SKEW_SECONDS."""
    limit_ms = settings.quality_max_clock_skew_seconds * 1000
    found: dict[str, dict[str, Any]] = {}
    skew = col(SyncDevice.clock_skew_ms)
    for user_id, device_id, ms in session.execute(
        select(col(SyncDevice.user_id), col(SyncDevice.id), skew)
        .where(col(SyncDevice.revoked_at).is_(None), (skew > limit_ms) | (skew < -limit_ms))
    ).all():
        if user_id in worker_ids:
            entry = found.setdefault(user_id, {"device_ids": [], "max_skew_s": 0})
            entry["device_ids"].append(device_id)
            entry["max_skew_s"] = max(entry["max_skew_s"], round(abs(ms) / 1000))
    return found


def query(actor: Actor, period: Period, flt: Filters) -> Select[Any]:
    """The one statement scoring reads: the visits in scope started in the period (and a day around it), sorted
    by worker and start, with the columns the rules need (bench/audit.py times it bare)."""
    start, end = period.bounds
    stmt = (select(*ROW_COLUMNS, *EXTRA_COLUMNS)
            .where(visits.in_area(actor), col(Visit.started_at) >= start - CONTEXT,
                   col(Visit.started_at) < end + CONTEXT)
            .order_by(col(Visit.worker_id), col(Visit.started_at), col(Visit.id)))
    if flt.area is not None:
        stmt = stmt.where(starts_with(col(Visit.area_path), flt.area))
    if flt.worker_id is not None:
        stmt = stmt.where(col(Visit.worker_id) == flt.worker_id)
    return stmt


class Scores(Sequence[Item]):
    """The scored visits of a view, worst first: those with findings (by score, then newest), then the clean ones
    (newest first). An `Item` is made only for what is read — a page of a district's month is 50 of 100,000."""

    def __init__(self, marked: list[rules.Scored], clean: list[Any]) -> None:
        self.marked, self.clean = marked, clean

    def __len__(self) -> int:
        return len(self.marked) + len(self.clean)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index < len(self.marked):
            return Item(self.marked[index].row, self.marked[index])
        return Item(self.clean[index - len(self.marked)], None)


def scored_visits(session: Session, actor: Actor, period: Period, flt: Filters, settings: Settings | None = None,
                  *, worst_first: bool = True) -> Scores:
    """Every visit in scope started within the period, scored, after the filters; worst first (or as read)."""
    settings = settings or get_settings()
    result = session.connection().execute(query(actor, period, flt))
    try:
        # The driver's own tuples: the statement's columns need no conversion, so SQLAlchemy's rows are skipped.
        rows: Sequence[Any] = result.cursor.fetchall()
    finally:
        result.close()
    drifting = drifting_devices(session, {r[rules.WORKER] for r in rows}, settings)
    found = rules.find(rows, settings, drifting)
    start, end = period.bounds
    lo, hi, state, rule = start.timestamp(), end.timestamp(), flt.review_state, flt.rule
    marked = [s for s in found.values() if lo <= s.row[rules.STARTED] < hi and s.score >= flt.min_score
              and (state is None or s.row[14] == state) and (rule is None or any(r.rule == rule for r in s.reasons))]
    clean: list[Any] = []
    if flt.min_score <= 0 and rule is None:
        clean = [row for i, row in enumerate(rows)
                 if lo <= row[rules.STARTED] < hi and i not in found and (state is None or row[14] == state)]
    if worst_first:  # rows came by worker, time and id, and the sorts are stable
        marked.sort(key=lambda s: (s.score, s.row[rules.STARTED]), reverse=True)
        clean.sort(key=itemgetter(rules.STARTED), reverse=True)
    return Scores(marked, clean)


# --- decisions --------------------------------------------------------------------------------------------


def decide(session: Session, actor: Actor, visit_id: str, body: DecisionIn) -> DecisionOut:
    """Accept, reject or ask for a revisit (see the module docstring). The visit's score is the one in view when
    deciding: the scores of its own 24 hours, with its neighbours."""
    visit = visits.get_visit(session, actor, visit_id, for_update=True)
    if body.decision is Decision.accept:
        review = ReviewIn(decision=ReviewDecision.approve, reason=body.reason, comment=body.comment,
                          version=body.version)
    else:
        reason = body.reason or ReviewReason.other
        review = ReviewIn(decision=ReviewDecision.flag, reason=reason, comment=body.comment, version=body.version)
    reviewed = recording.review_visit(session, actor, visit_id, review)
    task_id = None
    if body.decision is Decision.revisit:
        due = body.due_date or city_today() + timedelta(days=REVISIT_DAYS)
        task = tasks.create_follow_up(session, actor, TaskCreate(
            resident_id=visit.resident_id, reason=FollowUpReason.supervisor_request, due_date=due,
            note=body.note))
        task_id = task.id
    found = score_of(session, actor, visit)
    audit.record(session, "visit.quality_decision", target_type="visits", target_id=visit.id,
                 area_path=visit.area_path, district_code=visit.district_code,
                 detail={"decision": body.decision.value, "reason": review.reason.value if review.reason else None,
                         "score": found.score if found else 0,
                         "rules": [r.rule for r in found.reasons] if found else [], "task_id": task_id})
    return DecisionOut(visit_id=visit.id, decision=body.decision, review_state=reviewed.review_state,
                       version=reviewed.version, task_id=task_id, score=found.score if found else 0,
                       reasons=[r.rule for r in found.reasons] if found else [])


def score_of(session: Session, actor: Actor, visit: Visit) -> Item | None:
    on = city_date(visit.started_at)
    items = scored_visits(session, actor, Period(on, on), Filters(worker_id=visit.worker_id))
    return next((i for i in items if i.id == visit.id), None)
