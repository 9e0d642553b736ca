"""API shapes for periods and verifications. No personal data but the resident id: the register holds it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.cycle.verification.models import Evidence, Outcome, PeriodState, ProposalSource

MAX_VERSION = 2**31 - 1
MONTH = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"


class OpenIn(InputModel):
    month: str | None = Field(default=None, pattern=MONTH, description="City month YYYY-MM (default: current)")
    district_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$",
                                      description="Only this district's communities (default: the whole city)")


class OpenOut(OutputModel):
    month: str
    periods_created: int
    periods_existing: int
    verifications_created: int


class VersionIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class PeriodProgress(OutputModel):
    total: int
    pending: int
    verified: int
    coverage: float = Field(description="Share verified, 0..1 (1 when there is nothing to verify)")
    by_outcome: dict[str, int]


class PeriodOut(OutputModel):
    id: str
    month: str
    community_id: str
    state: PeriodState
    opened_at: datetime
    opened_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    version: int
    progress: PeriodProgress | None = None


def _conditional(field: str, key: str, value: str) -> dict[str, Any]:
    """JSON Schema for "`field` is given exactly when `key` is `value`" (the validator below enforces it)."""
    return {"if": {"properties": {key: {"const": value}}, "required": [key]},
            "then": {"required": [field], "properties": {field: {"type": "string"}}},
            "else": {"properties": {field: {"type": "null"}}}}


def _publish_rules(schema: dict[str, Any]) -> None:
    schema["allOf"] = [_conditional("visit_id", "evidence", Evidence.visit.value),
                       _conditional("new_dwelling_id", "outcome", Outcome.moved_within_city.value)]


class VerificationRecord(InputModel):
    """An outcome with its evidence (the version read). Recorded once: the same outcome again is a no-op."""

    model_config = ConfigDict(json_schema_extra=_publish_rules)

    version: int = Field(ge=1, le=MAX_VERSION)
    outcome: Outcome
    evidence: Evidence
    visit_id: str | None = Field(default=None, min_length=16, max_length=36, pattern=r"^[A-Za-z0-9-]+$")
    note: str | None = Field(default=None, max_length=200, description="Operational text, never health details")
    new_dwelling_id: str | None = Field(default=None, max_length=32,
                                        description="MOVED_WITHIN_CITY only: the dwelling in your area")
    moved_on: date | None = Field(default=None, description="When the resident moved or left (default: today)")

    @model_validator(mode="after")
    def _evidence(self) -> VerificationRecord:
        if (self.evidence == Evidence.visit) != (self.visit_id is not None):
            raise PydanticCustomError("rule.evidence_missing", "A visit as evidence needs visit_id, and only then.")
        if (self.outcome == Outcome.moved_within_city) != (self.new_dwelling_id is not None):
            raise PydanticCustomError("rule.dwelling_required", "MOVED_WITHIN_CITY needs new_dwelling_id.")
        return self


class VerificationOut(OutputModel):
    id: str
    period_id: str
    month: str
    resident_id: str
    community_id: str
    dwelling_id: str | None
    outcome: Outcome | None
    evidence: Evidence | None
    visit_id: str | None
    note: str | None
    new_dwelling_id: str | None
    moved_on: date | None
    not_found_streak: int
    checkin_flags: list[str] = Field(description="The linked visit's check-in flags when recorded (empty: none)")
    proposed_outcome: Outcome | None = Field(description="A partner's proposed outcome (kept once recorded)")
    proposed_source: ProposalSource | None
    proposed_on: date | None
    proposed_at: datetime | None
    proposal_pending: bool = Field(default=False,
                                   description="A proposal awaits a worker's confirmation (evidence partner)")
    verified_by: str | None
    verified_at: datetime | None
    version: int

    @field_validator("checkin_flags", mode="before")
    @classmethod
    def _flags(cls, value: object) -> object:
        return orjson.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pending(self) -> VerificationOut:
        self.proposal_pending = self.proposed_outcome is not None and self.outcome is None
        return self


class ProposalIn(InputModel):
    """A partner's proposed outcome for a resident's verification of the month (admin, until partners send
    their own: docs/cycle.md "Partner proposals")."""

    resident_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")
    outcome: Outcome
    source: ProposalSource
    proposed_on: date | None = Field(default=None, description="The partner's date of the event")
    month: str | None = Field(default=None, pattern=MONTH, description="City month YYYY-MM (default: current)")
