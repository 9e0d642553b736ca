"""Police uploads: a station's batch of residence-permit registrations and deregistrations, and its rows as
reconciled with the register (docs/sharing.md, "Police uploads")."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class RowKind(StrEnum):
    registration = "registration"  # 居住登记 / 居住证办理
    deregistration = "deregistration"  # 注销


class Outcome(StrEnum):
    """What the register says of a row."""

    matched = "matched"  # the register already says so: nothing to do
    new = "new"  # no registered resident with that ID: a worker visits, then registers or dismisses
    departed = "departed"  # a registered resident deregistered: a worker confirms the departure
    conflicting = "conflicting"  # another dwelling or other identity fields: a worker reviews


class RowState(StrEnum):
    done = "done"  # matched: nothing to do
    pending = "pending"  # new or conflicting: waiting for a worker
    proposed = "proposed"  # departed: the worker confirms through the resident's verification / task
    accepted = "accepted"
    dismissed = "dismissed"


class PoliceBatch(SQLModel, table=True):
    """One upload committed by a station. (station, reference) is unique: the same upload again changes nothing.
    `refusals` holds the refused rows as `[[row, field, code], ...]`: row numbers and codes only."""

    __tablename__ = "police_batches"
    __table_args__ = (
        UniqueConstraint("station_id", "reference", name="uq_police_batches_station_reference"),
        # Partner-level bookkeeping without an area: recorded by explicit events (sharing.police_upload).
        {"info": {"audited": False}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    station_id: str = Field(foreign_key="users.id", max_length=32)
    reference: str = Field(max_length=64)
    digest: str = Field(max_length=64)  # SHA-256 of the file as sent
    format: str = Field(max_length=8)
    rows: int
    matched: int = 0
    new: int = 0
    departed: int = 0
    conflicting: int = 0
    refused: int = 0
    refusals: str = Field(default="[]")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PoliceReportRow(SQLModel, table=True):
    """A row of a committed batch within the station's jurisdiction, as the station sent it and as it was
    reconciled. Staff in the row's area see it (the community the station named); nothing outside the station's
    jurisdiction is ever stored."""

    __tablename__ = "police_report_rows"
    __table_args__ = (
        UniqueConstraint("batch_id", "row_number", name="uq_police_report_rows_batch_row"),
        Index("ix_police_report_rows_area_state", "area_path", "state",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_police_report_rows_district_state", "district_code", "state"),
        Index("ix_police_report_rows_resident", "resident_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    batch_id: str = Field(foreign_key="police_batches.id", max_length=32)
    station_id: str = Field(max_length=32)
    row_number: int
    kind: str = Field(max_length=16)
    outcome: str = Field(max_length=12)
    # What the station was told: a record outside its jurisdiction is absent to it (a registration of someone
    # registered elsewhere is `new` to the station, `conflicting` here).
    reported: str = Field(max_length=12)
    state: str = Field(max_length=10)
    conflict_fields: str | None = Field(default=None, max_length=60)  # "dwelling,name,sex"
    # As the station sent them (identity and residence fields only).
    id_number: str = Field(max_length=18)
    name: str = Field(max_length=50)
    sex: str = Field(max_length=1)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    address: str | None = Field(default=None, max_length=200)
    event_date: date
    permit_no: str | None = Field(default=None, max_length=30)
    hukou_code: str | None = Field(default=None, max_length=6)
    # Where it lies, and what the register holds.
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)
    resident_id: str | None = Field(default=None, foreign_key="residents.id", max_length=32)
    # A departed row's hand-off: the verification it proposed an outcome on, else the worker's task.
    verification_id: str | None = Field(default=None, max_length=36)
    task_id: str | None = Field(default=None, max_length=36)
    # A worker's resolution.
    reason: str | None = Field(default=None, max_length=30)
    resolved_by: str | None = Field(default=None, max_length=32)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
