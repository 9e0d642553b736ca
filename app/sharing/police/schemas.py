"""What a police station sends and receives. Every field of a person is optional: a response carries only the
fields of the police disclosure profile in force (the others are absent, not null), and no field here can hold
health, visit or service data."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel
from app.people.rules import RuleError, parse_id
from app.sharing.profiles.schemas import DisclosureBasis


class LookupIn(InputModel):
    id_number: str = Field(min_length=15, max_length=18, description="In the body, never in a URL (access logs)")

    @field_validator("id_number")
    @classmethod
    def _parse(cls, value: str) -> str:
        try:
            return parse_id(value).number
        except RuleError as exc:
            raise PydanticCustomError("rule." + exc.code, exc.message) from None


class FeedIn(InputModel):
    cursor: str | None = Field(default=None, max_length=100, description="From the last page; none: from the start")
    limit: int = Field(default=100, ge=1, le=500, description="Change-log entries read for this page")


class PolicePersonOut(OutputModel):
    id: str | None = None
    name: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    id_number: str | None = None
    phone: str | None = None
    hukou_code: str | None = None
    hukou_address: str | None = None
    dwelling_address: str | None = None
    arrival_date: date | None = None
    status: str | None = None
    left_on: date | None = None
    residence_permit_no: str | None = None


class LookupOut(OutputModel):
    person: PolicePersonOut
    disclosure: DisclosureBasis


class FeedItem(OutputModel):
    event: Literal["arrival", "departure"]
    person: PolicePersonOut = Field(description="A departure to outside the jurisdiction carries identity only")


class FeedOut(OutputModel):
    items: list[FeedItem]
    cursor: str = Field(description="Opaque: send it back for the next page")
    has_more: bool
    disclosure: DisclosureBasis
