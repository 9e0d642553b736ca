"""API shapes of the places domain: divisions (the 行政区划 hierarchy) and dwellings.

Decisions:
- Ids in bodies are bounded strings, not validated as hex: an unknown id is simply not found (404), the same
  answer as an id outside the caller's scope.
- Division code *format* depends on the level and the parent, so it is checked by the service (one rule set
  shared by the API and the table import), not here.
- Coordinates are WGS-84, bounded to China's rough box (lat 3–54, lng 73–136), and come both or neither;
  both rules are domain rules with their own codes (`coordinates_out_of_range`, `coordinates_incomplete`).
- Addresses are normalised (Unicode NFKC, so full-width digits and spaces match half-width ones, and runs of
  whitespace collapsed to one space) before they are stored or compared for uniqueness. Division names only
  get their whitespace tidied: official names keep their full-width brackets.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel, schema_rules
from app.places.models import CommunityType, DwellingKind, Level

ID_MAX = 32
LAT_MIN, LAT_MAX = 3.0, 54.0
LNG_MIN, LNG_MAX = 73.0, 136.0
VERSION_FIELD = Field(ge=1, le=2**31 - 1, description="The version you read (optimistic locking)")
_SPACES = re.compile(r"\s+")


def normalise_text(value: str) -> str:
    """NFKC and single spaces: '经三路１号  ２室' and '经三路1号 2室' are the same address."""
    return collapse_spaces(unicodedata.normalize("NFKC", value))


def collapse_spaces(value: str) -> str:
    """Names keep their characters (official names use full-width brackets); only whitespace is tidied."""
    return _SPACES.sub(" ", value).strip()


def _check_coordinate(value: float | None, low: float, high: float) -> float | None:
    if value is not None and not low <= value <= high:
        raise PydanticCustomError(
            "rule.coordinates_out_of_range",
            "Coordinates must be WGS-84 inside China (lat 3–54, lng 73–136)",
        )
    return value


def reject_nulls(model: InputModel, *names: str) -> None:
    """A PATCH may omit a field, but may not null one that cannot be empty."""
    for name in names:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise PydanticCustomError("rule.value_required", "This field cannot be null")


def _check_pair(lat: float | None, lng: float | None) -> None:
    if (lat is None) != (lng is None):
        raise PydanticCustomError("rule.coordinates_incomplete", "Give both lat and lng, or neither")


# --- divisions ------------------------------------------------------------------------------------------

class DivisionCreate(InputModel):
    code: str = Field(min_length=1, max_length=20, description="6/9/12-digit official code; grids: local code")
    name: str = Field(min_length=1, max_length=100)
    level: Level
    parent_id: str | None = Field(default=None, max_length=ID_MAX, description="Exactly one level up; none for a city")
    community_type: CommunityType | None = Field(default=None, description="Required for communities only")
    vintage: int = Field(ge=1980, le=2200, description="Year of the code table the code comes from")
    active: bool = True


class DivisionUpdate(InputModel):
    model_config = ConfigDict(json_schema_extra=schema_rules(not_null=("code", "name", "vintage", "active")))

    code: str | None = Field(default=None, min_length=1, max_length=20,
                             description="A new code rewrites the paths of the whole subtree")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    community_type: CommunityType | None = None
    vintage: int | None = Field(default=None, ge=1980, le=2200)
    active: bool | None = None
    version: int = VERSION_FIELD

    @model_validator(mode="after")
    def _no_nulls(self) -> DivisionUpdate:
        reject_nulls(self, "code", "name", "vintage", "active")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"version"})


class DivisionMove(InputModel):
    parent_id: str = Field(min_length=1, max_length=ID_MAX)
    code: str | None = Field(default=None, min_length=1, max_length=20,
                             description="New code, when the old one does not fit under the new parent")
    version: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                description="The version you read; checked when given")


class DivisionRef(OutputModel):
    id: str
    code: str
    name: str
    level: Level


class DivisionOut(OutputModel):
    id: str
    code: str
    name: str
    level: Level
    parent_id: str | None
    path: str
    district_code: str | None
    community_type: CommunityType | None
    vintage: int
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


class DivisionDetail(DivisionOut):
    ancestors: list[DivisionRef] = Field(description="Breadcrumb from the city down to the parent")


# --- dwellings ------------------------------------------------------------------------------------------

class _Address(InputModel):
    @field_validator("address", mode="after", check_fields=False)
    @classmethod
    def _normalise_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = normalise_text(value)
        if not value:
            raise PydanticCustomError("rule.address_required", "The address is empty")
        return value

    @field_validator("lat", mode="after", check_fields=False)
    @classmethod
    def _lat(cls, value: float | None) -> float | None:
        return _check_coordinate(value, LAT_MIN, LAT_MAX)

    @field_validator("lng", mode="after", check_fields=False)
    @classmethod
    def _lng(cls, value: float | None) -> float | None:
        return _check_coordinate(value, LNG_MIN, LNG_MAX)


COORDINATES = {"lat": ["lng"], "lng": ["lat"]}
LAT_SCHEMA: JsonDict = {"minimum": LAT_MIN, "maximum": LAT_MAX}
LNG_SCHEMA: JsonDict = {"minimum": LNG_MIN, "maximum": LNG_MAX}


class DwellingCreate(_Address):
    model_config = ConfigDict(json_schema_extra=schema_rules(not_null=("lat", "lng"), dependent=COORDINATES))

    community_id: str = Field(min_length=1, max_length=ID_MAX)
    grid_id: str | None = Field(default=None, max_length=ID_MAX)
    address: str = Field(min_length=1, max_length=200)
    kind: DwellingKind
    lat: float | None = Field(default=None, description="WGS-84 latitude (3–54)", json_schema_extra=LAT_SCHEMA)
    lng: float | None = Field(default=None, description="WGS-84 longitude (73–136)", json_schema_extra=LNG_SCHEMA)

    @model_validator(mode="after")
    def _pair(self) -> DwellingCreate:
        _check_pair(self.lat, self.lng)
        return self


class DwellingUpdate(_Address):
    model_config = ConfigDict(json_schema_extra=schema_rules(not_null=("address", "kind", "active"),
                                                             dependent=COORDINATES))

    address: str | None = Field(default=None, min_length=1, max_length=200)
    kind: DwellingKind | None = None
    lat: float | None = Field(default=None, description="Send with lng; both null clears the position",
                              json_schema_extra=LAT_SCHEMA)
    lng: float | None = Field(default=None, json_schema_extra=LNG_SCHEMA)
    active: bool | None = None
    version: int = VERSION_FIELD

    @model_validator(mode="after")
    def _pair(self) -> DwellingUpdate:
        reject_nulls(self, "address", "kind", "active")
        sent = {"lat", "lng"} & self.model_fields_set
        if sent and sent != {"lat", "lng"}:
            raise PydanticCustomError("rule.coordinates_incomplete", "Give both lat and lng, or neither")
        if sent:
            _check_pair(self.lat, self.lng)
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (null means 'clear' for lat/lng, 'leave' is omission)."""
        return self.model_dump(exclude_unset=True, exclude={"version"})


class DwellingMove(InputModel):
    community_id: str = Field(min_length=1, max_length=ID_MAX)
    grid_id: str | None = Field(default=None, max_length=ID_MAX)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                description="The version you read; checked when given")


class DwellingOut(OutputModel):
    id: str
    community_id: str
    grid_id: str | None
    address: str
    kind: DwellingKind
    lat: float | None
    lng: float | None
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


# --- import ---------------------------------------------------------------------------------------------

class ImportRowError(OutputModel):
    row: int = Field(description="Row number as the spreadsheet shows it (the header is row 1)")
    code: str
    field: str | None = None
    message: str


class ImportReport(OutputModel):
    dry_run: bool
    format: str = Field(description="csv or xlsx")
    rows: int = Field(description="Data rows read (blank rows skipped)")
    created: int
    updated: int
    unchanged: int
    ignored_columns: list[str]
    error_count: int = Field(description="All errors found (the list below is capped at 5,000)")
    errors: list[ImportRowError]
