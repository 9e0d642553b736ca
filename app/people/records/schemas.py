"""API shapes for the records around a resident: landlords, tenancies, 婚育证明 (family-planning documents),
the reproductive-health record, and the resident's dossier (PIPL right of access).

Everything here is a staff shape (workers and supervisors in scope, admins). Partner shapes are allow-lists
in app/people/shapes.py.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.core.schemas import InputModel, OutputModel
from app.people.models import Contraception, FpDocStatus, PregnancyStatus, Sex, TenancySource
from app.people.register.schemas import DivisionCode, ResidentListItem, ResidentOut

MAX_VERSION = 2**31 - 1
MAX_CHILDREN = 20


class HealthPurpose(StrEnum):
    """Why reproductive-health data is read or written (PIPL art. 28: a specific purpose)."""

    visit = "visit"  # 月访视
    verification = "verification"  # 月核查
    service_delivery = "service_delivery"  # delivering one of the free service items
    key_person_review = "key_person_review"  # 重点对象 review
    resident_request = "resident_request"  # the resident asked (access / correction)


# --- landlords and dwellings ---------------------------------------------------------------------------


# --- tenancies -------------------------------------------------------------------------------------------


class TenancyOut(OutputModel):
    id: str
    dwelling_id: str
    address: str
    community_id: str
    move_in: date
    move_out: date | None
    current: bool
    source: TenancySource
    created_at: datetime


class TenantOut(OutputModel):
    tenancy_id: str
    move_in: date
    source: TenancySource
    resident: ResidentListItem


# --- 婚育证明 ---------------------------------------------------------------------------------------------


class FpDocumentCreate(InputModel):
    number: str | None = Field(default=None, min_length=1, max_length=40)
    issuing_division: DivisionCode | None = Field(default=None, description="6-digit division code")
    issued_on: date | None = None
    expires_on: date | None = None
    status: FpDocStatus


class FpDocumentUpdate(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION, description="The version you read (409 stale_version otherwise)")
    number: str | None = Field(default=None, min_length=1, max_length=40)
    issuing_division: DivisionCode | None = None
    issued_on: date | None = None
    expires_on: date | None = None
    status: FpDocStatus | None = None


class FpDocumentOut(OutputModel):
    id: str
    resident_id: str
    number: str | None
    issuing_division: str | None
    issued_on: date | None
    expires_on: date | None
    status: FpDocStatus
    checked_at: datetime | None
    checked_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


# --- reproductive health ---------------------------------------------------------------------------------


class ChildIn(InputModel):
    birth_date: date
    sex: Sex


class HealthIn(InputModel):
    """The whole record (PUT replaces it). Send version 0 when none exists yet."""

    version: int = Field(ge=0, le=2**31 - 1, description="The version you read; 0 when there is no record yet")
    contraception: Contraception | None = None
    contraception_since: date | None = None
    pregnancy: PregnancyStatus = PregnancyStatus.unknown
    pregnancy_noted_on: date | None = None
    children: list[ChildIn] = Field(default_factory=list, max_length=MAX_CHILDREN)


class ChildOut(OutputModel):
    birth_date: date
    sex: Sex
    under_14: bool = Field(description="Under 14 today: data on this child is sensitive (PIPL art. 28)")


class HealthOut(OutputModel):
    resident_id: str
    recorded: bool = Field(description="False when nothing has been recorded yet (version 0)")
    contraception: Contraception | None
    contraception_since: date | None
    pregnancy: PregnancyStatus
    pregnancy_noted_on: date | None
    children: list[ChildOut]
    children_under_14: int
    key_person: bool
    updated_by: str | None
    updated_at: datetime | None
    version: int


# --- dossier (PIPL art. 45: what is held about one person) -----------------------------------------------


class DossierCorrection(OutputModel):
    id: str
    changes: dict[str, Any]
    note: str | None
    status: str
    decision_reason: str | None
    decided_at: datetime | None
    created_at: datetime


class DossierTransfer(OutputModel):
    id: str
    to_community_id: str
    to_dwelling_id: str | None = Field(description="Null unless the requesting community lies in your area")
    status: str
    reason: str | None
    decided_at: datetime | None
    created_at: datetime


class DuplicateFlagOut(OutputModel):
    id: str
    other_resident_id: str | None = Field(description="Null when that record lies outside your area")
    status: str
    decided_at: datetime | None
    created_at: datetime


class DisclosureOut(OutputModel):
    id: str
    partner_kind: str
    partner_id: str
    field_groups: list[str]
    legal_basis: str
    disclosed_at: datetime


class AuditEventBrief(OutputModel):
    """An event about the resident's data: what was done, when, by which role and why; never values."""

    id: int
    at: datetime
    action: str
    target_type: str | None
    fields: list[str]
    actor_role: str | None
    outcome: str
    purpose: str | None


class Dossier(OutputModel):
    generated_at: datetime
    resident: ResidentOut
    tenancies: list[TenancyOut]
    fp_documents: list[FpDocumentOut]
    health: HealthOut | None
    corrections: list[DossierCorrection]
    transfer_requests: list[DossierTransfer]
    duplicate_flags: list[DuplicateFlagOut]
    disclosures: list[DisclosureOut]
    audit_events: list[AuditEventBrief] = Field(description="Newest first, at most AUDIT_LIMIT")
    audit_events_total: int
