"""The submission of a community's monthly report (月报告) for one month and its approval (docs/reports.md).

No row: the report is open (never submitted). `submitted` → `approved` (locked), or `returned` (with a reason) →
`resubmitted` → `approved` or `returned` again. `figures` freezes the report as submitted (ReportOut as JSON), so
the figures a supervisor approves are the ones that stay. Not a sync table: phones do not hold reports.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class SubmissionState(StrEnum):
    submitted = "submitted"
    returned = "returned"
    resubmitted = "resubmitted"
    approved = "approved"


# The states whose frozen figures are the report's and that count as submitted in the roll-ups.
FROZEN = (SubmissionState.submitted.value, SubmissionState.resubmitted.value, SubmissionState.approved.value)


class ReportSubmission(SQLModel, table=True):
    __tablename__ = "report_submissions"
    __table_args__ = (
        UniqueConstraint("community_id", "month", name="uq_report_submissions_community_month"),
        Index("ix_report_submissions_area_month", "area_path", "month",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_report_submissions_district_month", "district_code", "month"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    month: str = Field(max_length=7)  # YYYY-MM, city time
    area_path: str = Field(max_length=120)  # the community's
    district_code: str = Field(max_length=6)
    state: str = Field(max_length=12)
    due_on: date  # REPORT_DUE_DAY of the month after `month`
    late: bool = False  # the first submission came after due_on (city date)
    first_submitted_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime = Field(sa_type=UTCDateTime)  # the latest submission
    submitted_by: str = Field(max_length=32)
    submissions: int = 1  # 1 + the resubmissions
    returned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    returned_by: str | None = Field(default=None, max_length=32)
    return_reason: str | None = Field(default=None, max_length=200)  # the latest return's
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=32)
    figures: str  # the report as submitted (ReportOut, JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class ReportCorrection(SQLModel, table=True):
    """A change to one figure of an approved (locked) report, with its reason and author; append-only. The latest
    correction of a figure gives its corrected value; `original` is the value before this correction."""

    __tablename__ = "report_corrections"
    __table_args__ = (
        UniqueConstraint("submission_id", "seq", name="uq_report_corrections_submission_seq"),
        Index("ix_report_corrections_area_month", "area_path", "month",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    submission_id: str = Field(foreign_key="report_submissions.id", max_length=32)
    seq: int  # 1, 2, … per report: the order corrections were made in (written under the report's row lock)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    month: str = Field(max_length=7)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    code: str = Field(max_length=80)  # the figure's stable code (stock.total, services.<item>.quantity, …)
    original: int
    corrected: int
    reason: str = Field(max_length=200)
    author: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
