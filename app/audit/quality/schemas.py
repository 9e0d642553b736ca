"""API shapes of visit quality (supervisors): scored visits with their reasons, and decisions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.core.types import city_today
from app.visits.models import FOLLOW_UP_MAX_DAYS
from app.visits.schemas import ReviewReason


class ReasonOut(OutputModel):
    rule: str = Field(description="The rule that found it (docs/audit.md, Visit quality)")
    weight: int = Field(description="What it adds to the score")
    detail: dict[str, Any] = Field(description="The figures behind it: ids, metres, minutes, counts")


class ScoredVisit(OutputModel):
    id: str
    worker_id: str
    resident_id: str
    community_id: str
    dwelling_id: str | None
    mode: str
    purpose: str
    outcome: str
    started_at: datetime
    ended_at: datetime
    review_state: str
    version: int = Field(description="Send it with a decision")
    score: int = Field(description="0 (nothing found) to 100")
    reasons: list[ReasonOut]


class Decision(StrEnum):
    accept = "accept"
    reject = "reject"
    revisit = "revisit"


class DecisionIn(InputModel):
    decision: Decision
    reason: ReviewReason | None = Field(default=None, description="Required to reject")
    comment: str | None = Field(default=None, max_length=300, description="Operational only, no personal details")
    version: int = Field(ge=1, le=2**31 - 1, description="The visit's version you read")
    due_date: date | None = Field(default=None, description="Revisit: when the follow-up is due (default: in 7 days)")
    note: str | None = Field(default=None, max_length=200, description="Revisit: a note on the task")

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.decision == Decision.reject and self.reason is None:
            raise PydanticCustomError("rule.reason_required", "rejecting needs a reason")
        if self.decision != Decision.revisit and (self.due_date is not None or self.note is not None):
            raise PydanticCustomError("rule.revisit_only", "due_date and note belong to a revisit")
        if self.due_date is not None:
            today = city_today()
            if self.due_date < today:
                raise PydanticCustomError("rule.due_date_past", "The due date is in the past.")
            if self.due_date > today + timedelta(days=FOLLOW_UP_MAX_DAYS):
                raise PydanticCustomError("rule.due_date_too_far", "The due date is more than a year ahead.")
        return self


class DecisionOut(OutputModel):
    visit_id: str
    decision: Decision
    review_state: str
    version: int
    task_id: str | None = Field(description="Revisit: the follow-up task created")
    score: int
    reasons: list[str]
