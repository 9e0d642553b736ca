"""API shapes of tenant reports: what a landlord sends and sees (their current tenants, masked; never health,
visits or services), and the staff shape of the report queue."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from app.core.schemas import InputModel, OutputModel
from app.people import rules
from app.people.models import MaritalStatus
from app.people.register.schemas import DivisionCode
from app.sharing.landlords.models import ReportKind, ReportState

MAX_VERSION = 2**31 - 1


class MoveInIn(InputModel):
    dwelling_id: str = Field(max_length=32, description="One of your confirmed dwellings")
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=15, max_length=18, description="18 digits (15-digit legacy IDs converted)")
    phone: str | None = Field(default=None, max_length=20, json_schema_extra={"pattern": rules.MOBILE_INPUT})
    moved_in_on: date


class MoveOutIn(InputModel):
    tenancy_id: str = Field(max_length=32, description="From GET /partner/landlord/tenants")
    moved_out_on: date


class MyReport(OutputModel):
    """A report as the landlord sees it: what they sent (masked) and what became of it."""

    id: str
    kind: ReportKind
    dwelling_id: str
    id_number_masked: str | None
    on_date: date
    reported_on: date
    late: bool = Field(description="Reported more than 3 working days after the date (China's official calendar: "
                                   "public holidays and make-up working days)")
    state: ReportState
    tenancy_id: str | None


class Tenant(OutputModel):
    """A current tenant of one of the landlord's dwellings: nothing about health, visits or services."""

    tenancy_id: str
    dwelling_id: str
    address: str
    name: str
    id_number_masked: str | None
    phone_masked: str | None
    moved_in_on: date


class ReportOut(OutputModel):
    """Staff shape of a report (identifiers masked: the register holds them once the person is registered)."""

    id: str
    kind: ReportKind
    landlord_id: str
    dwelling_id: str
    community_id: str
    name: str | None
    id_number_masked: str | None
    phone_masked: str | None
    on_date: date
    reported_on: date
    late: bool
    state: ReportState
    resident_id: str | None
    tenancy_id: str | None
    task_id: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    version: int


class RegisterFromReport(InputModel):
    """What the register needs beyond the report (name, ID number, phone, dwelling and date come from it)."""

    version: int = Field(ge=1, le=MAX_VERSION)
    name: str | None = Field(default=None, min_length=1, max_length=50, description="As on the ID card, if the "
                                                                                   "landlord wrote it otherwise")
    hukou_code: DivisionCode = Field(description="户籍地 division code (6 digits)")
    hukou_address: str | None = Field(default=None, max_length=200)
    ethnicity: str | None = Field(default=None, max_length=20)
    marital_status: MaritalStatus = MaritalStatus.unknown
    employer: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=50)


class DismissReason(StrEnum):
    not_living_there = "not_living_there"
    duplicate_report = "duplicate_report"
    wrong_person = "wrong_person"
    other = "other"


class DismissIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: DismissReason
