"""API shapes for residents. Staff in scope get `ResidentOut`; lists get masked identifiers.

Partner shapes (police, landlord, outflow city) are allow-lists in app/people/shapes.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.people import rules
from app.people.models import MaritalStatus, ResidentStatus, Sex, TenancySource

HUKOU_CODE = r"^[0-9]{6}$"


def _known_province(code: str) -> str:
    if not rules.province_known(code):
        raise PydanticCustomError("rule.division_province_unknown",
                                  "The code's first two digits name no province (GB/T 2260)")
    return code


# A 6-digit division code (户籍地, an issuing office): its province must exist; below that, old codes are fine.
# The published pattern names the provinces themselves (rules.province_pattern), so valid-per-schema is valid.
DivisionCode = Annotated[str, Field(pattern=HUKOU_CODE, json_schema_extra={"pattern": rules.province_pattern()}),
                         AfterValidator(_known_province)]


class ResidentFields(InputModel):
    """Fields and limits shared by create and update (update makes them optional)."""

    name: str = Field(min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20, description="Mobile; +86/0086 and separators stripped")
    ethnicity: str | None = Field(default=None, max_length=20)
    hukou_code: DivisionCode = Field(description="户籍地 division code (6 digits)")
    hukou_address: str | None = Field(default=None, max_length=200)
    arrival_date: date
    marital_status: MaritalStatus = MaritalStatus.unknown
    employer: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=50)
    residence_permit_no: str | None = Field(default=None, max_length=30)


class ResidentCreate(ResidentFields):
    id_number: str = Field(min_length=15, max_length=18, description="18 digits (15-digit legacy IDs converted)")
    sex: Sex | None = Field(default=None, description="Checked against the ID; derived when omitted")
    birth_date: date | None = Field(default=None, description="Checked against the ID; derived when omitted")
    dwelling_id: str = Field(max_length=32)
    source: TenancySource = TenancySource.worker
    accept_unverified_id: bool = Field(
        default=False, description="Supervisors only: register an ID whose check digit or province code fails, as "
                                   "'ID unverified'"
    )


class ResidentUpdate(InputModel):
    version: int = Field(ge=1, le=2**31 - 1)
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    ethnicity: str | None = Field(default=None, max_length=20)
    hukou_code: DivisionCode | None = None
    hukou_address: str | None = Field(default=None, max_length=200)
    arrival_date: date | None = None
    marital_status: MaritalStatus | None = None
    employer: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=50)
    residence_permit_no: str | None = Field(default=None, max_length=30)


class MoveIn(InputModel):
    version: int = Field(ge=1, le=2**31 - 1)
    dwelling_id: str = Field(max_length=32)
    moved_on: date
    source: TenancySource = TenancySource.worker


class LeaveIn(InputModel):
    version: int = Field(ge=1, le=2**31 - 1)
    left_on: date
    reason: str = Field(pattern=r"^(moved_within_city|left_city|returned_home|settled|deceased|other)$")


class ResidentOut(OutputModel):
    id: str
    name: str
    sex: Sex
    birth_date: date
    id_number: str | None
    id_verified: bool
    phone: str | None
    ethnicity: str | None
    hukou_code: str
    hukou_address: str | None
    arrival_date: date
    marital_status: MaritalStatus
    employer: str | None
    occupation: str | None
    residence_permit_no: str | None
    community_id: str
    dwelling_id: str | None
    status: ResidentStatus
    left_on: date | None
    left_reason: str | None
    key_person: bool
    merged_into_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class ResidentListItem(OutputModel):
    id: str
    name: str
    sex: Sex
    birth_date: date
    id_number_masked: str | None
    phone_masked: str | None
    id_verified: bool
    community_id: str
    dwelling_id: str | None
    arrival_date: date
    status: ResidentStatus
    key_person: bool
    version: int
