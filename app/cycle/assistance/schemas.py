"""API shapes for assistance requests. Staff see the whole request in their area (the detail read is audited);
lists mask the ID number; the partner city's shape is an allow-list with no resident id, place or note
(`PartnerAssistanceOut`, for the outflow city's own API). No health data but the `urgent` flag."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.core.types import city_today
from app.cycle.assistance.models import Direction, Finding, Topic
from app.cycle.assistance.rules import Derived
from app.people.models import FpDocStatus

MAX_VERSION = 2**31 - 1
RECEIVED_MAX_DAYS = 366


class Progress(StrEnum):
    """The receiving side's steps short of the answer."""

    matched = "matched"
    verifying = "verifying"
    unmatched = "unmatched"


class OutgoingCreate(InputModel):
    """A draft request about one of our residents, to the city of their 户籍地."""

    resident_id: str = Field(min_length=1, max_length=32)
    topic: Topic
    urgent: bool = Field(default=False, description="Currently pregnant: answered within the urgent delay")


class IncomingCreate(InputModel):
    """A partner city's request, registered by an admin on its behalf (or built by its own API)."""

    partner_city: str = Field(pattern=r"^[0-9]{4}00$", description="The asking city's 6-digit code")
    partner_reference: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$",
                                   description="The partner's file number (unique per city)")
    id_number: str = Field(min_length=15, max_length=20, description="The person's resident ID number")
    name: str = Field(min_length=1, max_length=50)
    topic: Topic
    urgent: bool = False
    received_on: date = Field(description="City date the request arrived: not in the future, at most a year ago")

    @field_validator("received_on")
    @classmethod
    def _received(cls, value: date) -> date:
        today = city_today()
        if value > today or value < today - timedelta(days=RECEIVED_MAX_DAYS):
            raise PydanticCustomError("rule.date_out_of_range", "The date is in the future or over a year ago.")
        return value


class VersionIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class ProgressIn(InputModel):
    state: Progress
    version: int = Field(ge=1, le=MAX_VERSION)


class AnswerIn(InputModel):
    finding: Finding
    fp_certificate_status: FpDocStatus | None = Field(default=None, description="For fp_certificate requests")
    note: str | None = Field(default=None, max_length=200, description="Operational text only, no health details")
    answered_on: date | None = Field(default=None, description="City date of the answer (default today)")
    version: int = Field(ge=1, le=MAX_VERSION)


class AssistanceOut(OutputModel):
    """Staff in scope: the whole request (an audited read)."""

    id: str
    direction: Direction
    state: Derived
    topic: Topic
    urgent: bool
    partner_city: str
    partner_reference: str | None
    resident_id: str | None
    community_id: str | None
    subject_name: str | None
    subject_id_number: str | None
    sent_on: date | None
    counted_from: date | None
    due_on: date | None
    answered_on: date | None
    late: bool = Field(description="Answered after the due date")
    finding: Finding | None
    fp_certificate_status: FpDocStatus | None
    answer_note: str | None
    created_by: str
    sent_by: str | None
    answered_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class AssistanceListItem(OutputModel):
    id: str
    direction: Direction
    state: Derived
    topic: Topic
    urgent: bool
    partner_city: str
    resident_id: str | None
    community_id: str | None
    subject_name: str | None
    subject_id_masked: str | None
    sent_on: date | None
    due_on: date | None
    answered_on: date | None
    late: bool
    version: int


class AssistanceTask(OutputModel):
    """A request in /me/tasks: open on our side (incoming) or overdue (either way). No urgency flag: the due
    date already orders it."""

    id: str
    direction: Direction
    state: Derived
    topic: Topic
    due_on: date
    resident_id: str | None
    community_id: str | None
    subject_name: str | None


class PartnerAssistanceOut(OutputModel):
    """What an outflow city may see of a request: identity (their key for matching), progress, the answer."""

    id: str
    direction: Direction
    state: Derived
    topic: Topic
    urgent: bool
    partner_reference: str | None
    subject_name: str | None
    subject_id_number: str | None
    sent_on: date | None
    due_on: date | None
    answered_on: date | None
    finding: Finding | None
    fp_certificate_status: FpDocStatus | None
    version: int = Field(description="Send it back with a step or an answer")
