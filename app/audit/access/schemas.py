"""API shapes of the access review (auditors)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from app.core.schemas import OutputModel


class Unusual(StrEnum):
    any = "any"
    outside_area = "outside_area"
    bulk = "bulk"
    off_hours = "off_hours"
    lookup_without_case = "lookup_without_case"


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


class ReadOut(OutputModel):
    """One sensitive read, from the audit chain."""

    id: int = Field(description="The audit record (chain position)")
    at: datetime
    actor_id: str | None
    actor_username: str | None
    actor_role: str | None
    action: str = Field(description="e.g. resident.read.identity, resident.read.health, landlord.read.identity")
    target_type: str | None
    target_id: str | None
    fields: list[str] | None
    purpose: str | None
    area_path: str | None = Field(description="Where the record lay (null: not recorded, not judged by area)")
    district_code: str | None
    unusual: list[str] = Field(description="outside_area, bulk, off_hours, lookup_without_case")


class ReaderOut(OutputModel):
    actor_id: str | None
    username: str | None
    role: str | None
    reads: int
    records: int = Field(description="Distinct records read")
    unusual: int = Field(description="Reads with at least one unusual reason")
    actions: dict[str, int]
    reasons: dict[str, int]
    first_at: datetime
    last_at: datetime


class PartnerDisclosuresOut(OutputModel):
    partner_kind: str = Field(description="police, landlord or outflow_city")
    partner_id: str
    partner_name: str | None = Field(description="The partner account's name (client id or phone), if it exists")
    disclosures: int = Field(description="Ledger entries: one per resident and disclosure")
    residents: int = Field(description="Distinct residents disclosed")
    field_groups: list[str]
    legal_bases: list[str]
    first_at: datetime
    last_at: datetime


class ReadersOut(OutputModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    readers: list[ReaderOut]
    disclosures_per_partner: list[PartnerDisclosuresOut] = Field(
        description="Disclosures to each partner in the period, from the disclosure ledger; most first")
