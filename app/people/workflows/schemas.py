"""API shapes for the workflows around a record: transfers, duplicate review and merges, corrections.

Transfer shapes are cut per side: the requesting community learns nothing about the holder's record
(no name, ID, community or dwelling) until the transfer is accepted and the resident is theirs.
Reasons for dismissing a duplicate flag and for merging are codes, because they are kept in the audit
log, which never holds free text that could carry personal data.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.core.types import city_today
from app.people import rules
from app.people.models import MaritalStatus, RequestStatus
from app.people.register.schemas import HUKOU_CODE, ResidentOut

MAX_VERSION = 2**31 - 1

# --- transfers ------------------------------------------------------------------------------------------


class TransferDirection(StrEnum):
    incoming = "incoming"  # requests addressed to my communities (I hold the record and decide)
    outgoing = "outgoing"  # requests my communities sent (I asked for the record)


TransferSide = Literal["holder", "requester", "both"]


class TransferReject(InputModel):
    reason: str = Field(
        min_length=1, max_length=200, description="Why the holder keeps the record (shown to the requester)"
    )


class TransferCancel(InputModel):
    reason: str | None = Field(default=None, max_length=200)


class TransferOut(OutputModel):
    """One transfer request as the caller's side may see it.

    `resident_id` is given to the holder side, and to the requesting side only once the transfer is
    accepted (the resident is then in their scope). `to_dwelling_id` is given to the requesting side only.
    """

    id: str
    status: RequestStatus
    side: TransferSide
    resident_id: str | None
    to_community_id: str
    to_dwelling_id: str | None
    requested_by: str
    decided_by: str | None
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


# --- duplicates and merges ------------------------------------------------------------------------------


class DuplicateStatus(StrEnum):
    open = "open"
    merged = "merged"
    dismissed = "dismissed"


class DismissReason(StrEnum):
    different_people = "different_people"  # 经核实不是同一人
    insufficient_information = "insufficient_information"  # 信息不足，无法确认
    other = "other"


class MergeReason(StrEnum):
    duplicate_registration = "duplicate_registration"  # 同一人重复登记
    id_entry_error = "id_entry_error"  # 身份号码录入错误
    other = "other"


class DuplicateDismiss(InputModel):
    reason: DismissReason


class DuplicateOut(OutputModel):
    """A flagged pair, listed to whoever sees at least one of its records. The id of a record outside your
    area is withheld (null) and `other_area` is true: you may dismiss the flag; merging needs both records
    in scope (a supervisor over both areas, or an admin)."""

    id: str
    resident_a: str | None
    resident_b: str | None
    other_area: bool = Field(description="One record of the pair lies outside your area (its id is null)")
    status: DuplicateStatus
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class MergeIn(InputModel):
    merged_id: str = Field(min_length=1, max_length=32, description="The record folded into the kept one")
    reason: MergeReason
    version_keep: int = Field(ge=1, le=MAX_VERSION)
    version_merged: int = Field(ge=1, le=MAX_VERSION)


class MergeOut(OutputModel):
    survivor: ResidentOut
    merged_id: str
    tenancies_moved: int
    fp_documents_moved: int
    health_record: Literal["none", "moved", "kept_on_merged"] = Field(
        description="kept_on_merged: both records had one; the merged record's stays with it for review"
    )
    duplicate_flags_closed: int
    duplicate_flags_repointed: int
    transfers_cancelled: int
    corrections_moved: int


# --- corrections ----------------------------------------------------------------------------------------

CORRECTABLE_FIELDS = (
    "name",
    "phone",
    "ethnicity",
    "hukou_code",
    "hukou_address",
    "marital_status",
    "employer",
    "occupation",
    "residence_permit_no",
    "arrival_date",
)
REQUIRED_FIELDS = ("name", "hukou_code", "arrival_date", "marital_status")


class CorrectionChanges(InputModel):
    """The fields a resident may ask to correct, with ResidentUpdate's limits; checked when asked."""

    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20, description="Mobile; +86/0086 and separators stripped")
    ethnicity: str | None = Field(default=None, max_length=20)
    hukou_code: str | None = Field(default=None, pattern=HUKOU_CODE)
    hukou_address: str | None = Field(default=None, max_length=200)
    arrival_date: date | None = None
    marital_status: MaritalStatus | None = None
    employer: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=50)
    residence_permit_no: str | None = Field(default=None, max_length=30)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return rules.normalise_mobile(value)
        except rules.RuleError as exc:
            raise PydanticCustomError("rule.phone_format", exc.message) from None

    @field_validator("arrival_date")
    @classmethod
    def _arrival(cls, value: date | None) -> date | None:
        # The same bounds as app.people.service.check_dates.
        if value is not None and (value > city_today() + timedelta(days=1) or value.year < 1900):
            raise PydanticCustomError(
                "rule.date_out_of_range", "A date is in the future or implausibly far in the past."
            )
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> CorrectionChanges:
        if not self.model_fields_set:
            raise PydanticCustomError("rule.no_changes", "Name at least one field to correct.")
        for name in REQUIRED_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError("rule.cannot_be_cleared", "A required field cannot be cleared.")
        return self


class CorrectionCreate(InputModel):
    changes: CorrectionChanges
    note: str | None = Field(default=None, max_length=500, description="What the resident said, briefly")


class CorrectionDecide(InputModel):
    accept: bool
    reason: str = Field(min_length=1, max_length=500)


class CorrectionOut(OutputModel):
    id: str
    resident_id: str
    changes: dict[str, Any]
    note: str | None
    status: RequestStatus
    decision_reason: str | None
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class CorrectionListItem(OutputModel):
    """Inbox rows carry the field names only; the values are read one request at a time."""

    id: str
    resident_id: str
    fields: list[str]
    status: RequestStatus
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
