"""API shapes for the free-service catalogue."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.core.schemas import InputModel, OutputModel, schema_rules

CODE = r"^[a-z][a-z0-9_]{1,19}$"
EARLIEST, LATEST = date(1990, 1, 1), date(2100, 12, 31)
VERSION = Field(ge=1, le=2**31 - 1, description="The item's `version` as read (409 stale_version otherwise)")


class ItemCreate(InputModel):
    code: str = Field(pattern=CODE, description="Stable machine code; never changes, never reused")
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=500)
    unit: str = Field(default="次", min_length=1, max_length=10)
    sort_order: int = Field(default=0, ge=0, le=10_000)
    effective_from: date = Field(ge=EARLIEST, le=LATEST)
    effective_to: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    sensitive: bool = Field(default=True, description="Reproductive-health service: deliveries are sensitive")
    note: str = Field(min_length=1, max_length=200, description="Why this catalogue version is published")


class ItemUpdate(InputModel):
    """Only the fields sent change; `code` is immutable. `effective_to: null` clears an end date."""

    model_config = ConfigDict(json_schema_extra=schema_rules(
        not_null=("name_zh", "name_en", "description", "unit", "sort_order", "effective_from", "sensitive"),
        min_properties=3))  # version, note and something to change

    version: int = VERSION
    note: str = Field(min_length=1, max_length=200)
    name_zh: str | None = Field(default=None, min_length=1, max_length=60)
    name_en: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=500)
    unit: str | None = Field(default=None, min_length=1, max_length=10)
    sort_order: int | None = Field(default=None, ge=0, le=10_000)
    effective_from: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    effective_to: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    sensitive: bool | None = None

    @model_validator(mode="after")
    def _only_end_date_clears(self) -> Any:
        for name in self.model_fields_set - {"version", "note", "effective_to"}:
            if getattr(self, name) is None:
                raise PydanticCustomError("rule.field_required", "Only effective_to may be cleared with null")
        if not self.model_fields_set - {"version", "note"}:
            raise PydanticCustomError("rule.nothing_to_change", "Send at least one field to change")
        return self


class ItemRetire(InputModel):
    version: int = VERSION
    effective_to: date = Field(ge=EARLIEST, le=LATEST, description="Last day the item may be delivered")
    note: str = Field(min_length=1, max_length=200)


class SnapshotItem(OutputModel):
    id: str
    code: str
    name_zh: str
    name_en: str
    description: str
    unit: str
    sort_order: int
    effective_from: date
    effective_to: date | None
    sensitive: bool


class ItemOut(SnapshotItem):
    since_version: int
    retired_in_version: int | None
    retired: bool = False
    version: int


class CatalogOut(OutputModel):
    version: int = Field(description="The current catalogue version (send it with a visit)")
    items: list[ItemOut]


class ItemChangeOut(OutputModel):
    catalog_version: int = Field(description="The catalogue version this change published")
    item: ItemOut


class VersionSummary(OutputModel):
    version: int
    note: str
    published_by: str | None
    published_at: datetime
    item_count: int


class VersionOut(OutputModel):
    version: int
    note: str
    published_by: str | None
    published_at: datetime
    items: list[SnapshotItem]
