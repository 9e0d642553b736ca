"""API shapes of landlords and the dwellings they let (staff shapes; lists mask identifiers)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.schemas import InputModel, OutputModel

MAX_VERSION = 2**31 - 1


class LandlordCreate(InputModel):
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=15, max_length=18, description="18 digits (15-digit legacy IDs converted)")
    phone: str | None = Field(default=None, max_length=20, description="Mobile; +86/0086 and separators stripped")
    dwelling_id: str | None = Field(
        default=None, max_length=32,
        description="A dwelling in your area to attach the landlord to at once; it also sets the landlord's "
                    "district. Required for city-wide accounts.",
    )


class LandlordUpdate(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION, description="The version you read (409 stale_version otherwise)")
    name: str | None = Field(default=None, min_length=1, max_length=50)
    id_number: str | None = Field(default=None, min_length=15, max_length=18)
    phone: str | None = Field(default=None, max_length=20)


class DwellingBrief(OutputModel):
    id: str
    community_id: str
    address: str
    kind: str
    landlord_id: str | None
    version: int


class LandlordOut(OutputModel):
    id: str
    name: str
    id_number: str | None
    phone: str | None
    district_code: str
    dwellings: list[DwellingBrief] = Field(description="The landlord's dwellings in your area")
    created_at: datetime
    updated_at: datetime
    version: int


class LandlordListItem(OutputModel):
    id: str
    name: str
    id_number_masked: str | None
    phone_masked: str | None
    district_code: str
    version: int


class DwellingLandlordIn(InputModel):
    version: int = Field(ge=1, le=2**31 - 1, description="The dwelling's version")
    landlord_id: str | None = Field(max_length=32, description="null detaches the current landlord")


