"""Periods and verifications (月核查): the months of the cycle per community, and one verification per
registered resident per month (docs/cycle.md).

A period is a city month (YYYY-MM) of one community: `open` while verifications are recorded, `closed`
afterwards. A verification is pending while `outcome` is NULL. Both lie where their community (the
resident's, for a verification) lies and both are synced to phones (docs/sync.md).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class PeriodState(StrEnum):
    open = "open"
    closed = "closed"


class Outcome(StrEnum):
    """domain.md, "The monthly cycle"."""

    present = "PRESENT"  # 在住
    moved_within_city = "MOVED_WITHIN_CITY"  # 本市内迁移
    left_city = "LEFT_CITY"  # 离开本市
    returned_home = "RETURNED_HOME"  # 返回户籍地
    not_found = "NOT_FOUND"  # 查无此人
    settled = "SETTLED"  # 已落户本地
    deceased = "DECEASED"


class Evidence(StrEnum):
    visit = "visit"  # an in-person visit (its id in visit_id)
    phone = "phone"  # a phone call
    partner = "partner"  # partner data (police deregistration, landlord move-out), confirmed by the worker


class ProposalSource(StrEnum):
    """Who proposed an outcome from their own records (docs/cycle.md, "Partner proposals")."""

    police = "police"  # a police deregistration (户籍/居住登记注销)
    landlord = "landlord"  # a landlord's move-out notice
    outflow_city = "outflow_city"  # the resident's home city (an assistance answer)
    other_community = "other_community"  # another community's register


class Period(SQLModel, table=True):
    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("community_id", "month", name="uq_periods_community_month"),
        Index("ix_periods_area_month", "area_path", "month", postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_periods_district_month", "district_code", "month"),
        {"info": {"sync": True}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    month: str = Field(max_length=7)  # YYYY-MM, city time
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    state: str = Field(default=PeriodState.open.value, max_length=10)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    opened_by: str | None = Field(default=None, max_length=32)  # None: the CLI
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class Verification(SQLModel, table=True):
    __tablename__ = "verifications"
    __table_args__ = (
        UniqueConstraint("period_id", "resident_id", name="uq_verifications_period_resident"),
        Index("ix_verifications_area_month", "area_path", "month",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_verifications_district_month", "district_code", "month", "outcome"),
        Index("ix_verifications_period_outcome", "period_id", "outcome"),
        Index("ix_verifications_resident_month", "resident_id", "month"),
        {"info": {"sync": True}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    period_id: str = Field(foreign_key="periods.id", max_length=32)
    month: str = Field(max_length=7)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)  # as opened
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    outcome: str | None = Field(default=None, max_length=20)  # NULL: pending
    evidence: str | None = Field(default=None, max_length=10)
    visit_id: str | None = Field(default=None, foreign_key="visits.id", max_length=36)
    note: str | None = Field(default=None, max_length=200)  # operational text, never health details
    new_dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)
    moved_on: date | None = None  # MOVED_WITHIN_CITY and the outcomes that end the residence
    not_found_streak: int = 0  # consecutive NOT_FOUND months, this one included
    # The check-in flags of the linked visit (sorted codes as JSON text, like visits.flags; "[]": none).
    checkin_flags: str = Field(default="[]", max_length=300)
    # A partner's proposed outcome, confirmed by a worker (evidence `partner`); kept as history once recorded.
    proposed_outcome: str | None = Field(default=None, max_length=20)
    proposed_source: str | None = Field(default=None, max_length=20)
    proposed_on: date | None = None  # the partner's date of the event (a deregistration, a move-out)
    proposed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    proposed_by: str | None = Field(default=None, max_length=32)  # the admin who entered it; None: a partner feed
    verified_by: str | None = Field(default=None, max_length=32)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
