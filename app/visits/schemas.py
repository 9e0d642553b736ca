"""API shapes for visits: what a phone submits, what staff read, reviews and corrections.

No free text anywhere on a visit: notes, delivery notes, reasons and follow-up reasons are codes from fixed
lists, so no health detail can be typed into a field that travels further than it should. The one free text
is a supervisor's review comment (≤ 300 characters), which belongs to the review, not to the visit.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, Field, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.visits.models import FollowUpReason, ReviewState, VisitMode, VisitOutcome, VisitPurpose

CLIENT_ID = r"^[A-Za-z0-9-]{16,36}$"
MAX_VERSION = 2**31 - 1
MAX_SERVICES = 20


class NoteCode(StrEnum):
    """What the worker did or found (structured notes, never free text)."""

    documents_checked = "documents_checked"  # identity / residence documents seen
    fp_certificate_checked = "fp_certificate_checked"  # 婚育证明 seen (查验)
    fp_certificate_missing = "fp_certificate_missing"  # asked for, not shown
    address_confirmed = "address_confirmed"
    contact_updated = "contact_updated"
    counselling_given = "counselling_given"  # 宣传教育与咨询
    materials_given = "materials_given"  # leaflets, policy information
    landlord_met = "landlord_met"
    neighbour_confirmed = "neighbour_confirmed"  # a neighbour confirmed the resident lives here
    family_member_met = "family_member_met"
    follow_up_needed = "follow_up_needed"
    not_at_address = "not_at_address"  # evidence the resident does not live here
    at_work = "at_work"  # not home: working
    language_assistance = "language_assistance"
    referred_to_service_station = "referred_to_service_station"  # 计生服务站 referral


class DeliveryNote(StrEnum):
    """How a service item was delivered."""

    first_time = "first_time"
    refill = "refill"
    at_home = "at_home"
    at_service_station = "at_service_station"
    referral_issued = "referral_issued"
    appointment_booked = "appointment_booked"
    materials_given = "materials_given"


class CoordSystem(StrEnum):
    wgs84 = "wgs84"  # GPS chips, Android LocationManager, iOS CoreLocation
    gcj02 = "gcj02"  # AMap/Gaode, Tencent maps (converted to WGS-84 by the server)


class Provider(StrEnum):
    gps = "gps"
    network = "network"
    fused = "fused"
    other = "other"


class NoCoordinatesReason(StrEnum):
    gps_unavailable = "gps_unavailable"
    indoors_no_signal = "indoors_no_signal"
    permission_denied = "permission_denied"
    device_fault = "device_fault"
    other = "other"


class ReviewDecision(StrEnum):
    approve = "approve"
    flag = "flag"


class ReviewReason(StrEnum):
    location_mismatch = "location_mismatch"
    time_implausible = "time_implausible"
    services_doubtful = "services_doubtful"
    incomplete = "incomplete"
    duplicate_visit = "duplicate_visit"
    checked_ok = "checked_ok"  # approving despite check-in flags, after checking
    other = "other"


class CorrectionReason(StrEnum):
    wrong_time = "wrong_time"
    wrong_mode = "wrong_mode"
    wrong_outcome = "wrong_outcome"
    wrong_services = "wrong_services"
    wrong_dwelling = "wrong_dwelling"
    wrong_notes = "wrong_notes"
    supervisor_request = "supervisor_request"
    other = "other"


# --- input --------------------------------------------------------------------------------------------


class CheckinIn(InputModel):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    coord_system: CoordSystem = CoordSystem.wgs84
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, description="Horizontal accuracy (metres)")
    provider: Provider | None = None
    mock_location: bool = Field(default=False, description="Android isFromMockProvider / isMock")
    fix_time: AwareDatetime | None = Field(default=None, description="When the fix was taken (device clock)")


class ServiceIn(InputModel):
    id: str | None = Field(default=None, pattern=CLIENT_ID, description="Optional client id (16–36 [A-Za-z0-9-])")
    item_code: str = Field(min_length=1, max_length=20, pattern=r"^[a-z0-9_]+$")
    quantity: int = Field(default=1, ge=1, le=100)
    notes: list[DeliveryNote] = Field(default_factory=list, max_length=7)


class FollowUpIn(InputModel):
    """A follow-up visit this visit calls for: a `follow_up` task (reasons shared with the task list)."""

    due_date: date = Field(description="On or after the visit's date, at most a year after it")
    reason: FollowUpReason


class VisitFields(InputModel):
    """Everything a visit says, shared by a new visit and a correction."""

    id: str | None = Field(default=None, pattern=CLIENT_ID,
                           description="Optional client id: a retry with the same id and content changes nothing")
    dwelling_id: str | None = Field(default=None, max_length=32, description="Default: the resident's dwelling")
    mode: VisitMode
    purpose: VisitPurpose
    outcome: VisitOutcome
    started_at: AwareDatetime
    ended_at: AwareDatetime
    notes: list[NoteCode] = Field(default_factory=list, max_length=len(NoteCode))
    catalog_version: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                        description="The catalogue version the phone used (default: current)")
    services: list[ServiceIn] = Field(default_factory=list, max_length=MAX_SERVICES)
    checkin: CheckinIn | None = None
    no_coordinates_reason: NoCoordinatesReason | None = None
    follow_up: FollowUpIn | None = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.ended_at < self.started_at:
            raise PydanticCustomError("rule.visit_times_order", "ended_at is before started_at")
        codes = [s.item_code for s in self.services]
        if len(set(codes)) != len(codes):
            raise PydanticCustomError("rule.duplicate_service_item", "a service item is listed twice")
        ids = [s.id for s in self.services if s.id is not None]
        if len(set(ids)) != len(ids) or (self.id is not None and self.id in ids):
            raise PydanticCustomError("rule.duplicate_client_id", "a client id is used twice")
        if self.services and self.outcome != VisitOutcome.met:
            raise PydanticCustomError("rule.services_need_contact", "services need the outcome 'met'")
        if self.checkin is not None and self.no_coordinates_reason is not None:
            raise PydanticCustomError("rule.checkin_reason_conflict",
                                      "send either a check-in or a reason for having none")
        if self.mode == VisitMode.in_person and self.checkin is None and self.no_coordinates_reason is None:
            raise PydanticCustomError("rule.checkin_required",
                                      "an in-person visit needs a check-in or no_coordinates_reason")
        return self


class VisitCreate(VisitFields):
    resident_id: str = Field(max_length=32)


class CorrectionCreate(VisitFields):
    correction_reason: CorrectionReason


class ReviewIn(InputModel):
    decision: ReviewDecision
    reason: ReviewReason | None = Field(default=None, description="Required to flag")
    comment: str | None = Field(default=None, max_length=300, description="Operational remark; no health details")
    version: int = Field(ge=1, le=MAX_VERSION)

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if self.decision == ReviewDecision.flag and self.reason is None:
            raise PydanticCustomError("rule.review_reason_required", "flagging needs a reason")
        return self


# --- output -------------------------------------------------------------------------------------------


class CheckinOut(OutputModel):
    lat: float
    lng: float
    coord_system: str = Field(description="As the phone sent it; lat/lng are always WGS-84")
    accuracy_m: float | None
    provider: str | None
    mock_location: bool
    fix_time: datetime | None


class DeliveryOut(OutputModel):
    id: str
    item_id: str
    item_code: str
    name_zh: str
    name_en: str
    quantity: int
    notes: list[str]
    delivered_on: date


class ReviewOut(OutputModel):
    id: str
    decision: str
    reason: str | None
    comment: str | None
    reviewed_by: str
    created_at: datetime


class VisitListItem(OutputModel):
    id: str
    resident_id: str
    worker_id: str
    community_id: str
    dwelling_id: str | None
    mode: VisitMode
    purpose: VisitPurpose
    outcome: VisitOutcome
    started_at: datetime
    ended_at: datetime
    received_at: datetime
    distance_m: float | None
    flags: list[str]
    review_state: ReviewState
    corrects_visit_id: str | None
    corrected_by_id: str | None = Field(description="The correction that supersedes this visit, if any")
    version: int


class VisitOut(VisitListItem):
    notes: list[str]
    catalog_version: int
    checkin: CheckinOut | None
    no_coordinates_reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str | None
    correction_reason: str | None
    services: list[DeliveryOut]
    reviews: list[ReviewOut]
    tasks_completed: list[str] = Field(description="Tasks this visit completed")
    tasks_created: list[str] = Field(description="Follow-up tasks this visit created")
    created_at: datetime


class ServiceHistoryItem(OutputModel):
    id: str
    visit_id: str
    item_id: str
    item_code: str
    name_zh: str
    name_en: str
    quantity: int
    notes: list[str]
    delivered_on: date
    community_id: str
    worker_id: str
