"""What an outflow city (区域协作, by 户籍地) receives: its registered people here, through the outflow-city
profile. Every field of a person is optional: only the profile's fields are present."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from app.core.schemas import InputModel, OutputModel
from app.sharing.profiles.schemas import DisclosureBasis


class RosterIn(InputModel):
    cursor: str | None = Field(default=None, max_length=100, description="From the last page; none: from the start")
    limit: int = Field(default=100, ge=1, le=500)


class OutflowPersonOut(OutputModel):
    id: str | None = None
    name: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    id_number: str | None = None
    hukou_code: str | None = None
    residence_district_code: str | None = None
    residence_community: str | None = None
    arrival_date: date | None = None
    status: str | None = None
    left_on: date | None = None
    verification_status: str | None = Field(
        default=None, description="The latest monthly verification's outcome (PENDING while open; absent: none yet)")
    fp_document_status: str | None = Field(default=None, description="The latest 婚育证明's status")


class RosterItem(OutflowPersonOut):
    verification_month: str | None = Field(default=None, description="The month of `verification_status`")


class RosterOut(OutputModel):
    items: list[RosterItem]
    cursor: str = Field(description="Opaque: send it back for the next page")
    has_more: bool
    disclosure: DisclosureBasis


class ChangeItem(OutputModel):
    event: Literal["arrival", "departure", "verification", "fp_document"] = Field(
        description="arrival: a new record here; departure: marked as left; verification: a month's outcome "
                    "recorded; fp_document: a 婚育证明 recorded or its status changed")
    person: RosterItem = Field(description="Identity (as the profile allows) and the event's own group: residence "
                                           "for arrival and departure, verification_status and verification_month "
                                           "for verification, fp_document_status for fp_document")


class ChangesOut(OutputModel):
    items: list[ChangeItem]
    cursor: str = Field(description="Opaque: send it back for the next page")
    has_more: bool
    disclosure: DisclosureBasis
