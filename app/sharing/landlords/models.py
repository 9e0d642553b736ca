"""Landlords as partners (docs/sharing.md, "Landlords"): their accounts, the dwellings they register, their
tenant reports.

A landlord's account is a `users` row (role `landlord`, username = their phone) plus one row here that ties it
to the staff-side `landlords` record once a worker confirms it. Every row carries the `area_path` and
`district_code` of the community where a worker confirms or processes it, so staff lists are scoped like every
other list. A report keeps what the landlord sent (a tenant's name, ID number and phone) until a worker has
registered the person; it is never synced to phones.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class ClaimState(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"


class RejectReason(StrEnum):
    """Why a worker rejects a dwelling a landlord registered (codes only: the audit log holds no free text)."""

    not_found = "not_found"  # no such address in the community
    not_the_owner = "not_the_owner"  # the landlord does not let or own it
    has_landlord = "has_landlord"  # another landlord is on record for it
    duplicate = "duplicate"
    other = "other"


class AccountRejectReason(StrEnum):
    """Why a worker turns down a self-registration (the registration is then removed, so the phone is free)."""

    identity_not_verified = "identity_not_verified"
    not_a_landlord = "not_a_landlord"
    duplicate = "duplicate"
    other = "other"


class ReportKind(StrEnum):
    move_in = "move_in"
    move_out = "move_out"


class ReportState(StrEnum):
    applied = "applied"  # the register already holds the person: the tenancy was opened or closed
    pending = "pending"  # a worker registers the person (or dismisses the report)
    registered = "registered"  # a worker registered the person from the report
    dismissed = "dismissed"


class LandlordAccount(SQLModel, table=True):
    """A landlord's sign-in, and the `landlords` record it acts for once confirmed (`confirmed_at`)."""

    __tablename__ = "landlord_accounts"
    __table_args__ = (
        Index("ix_landlord_accounts_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
    )

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=32)
    # Set when a worker confirms (an existing record with the ID number, or one created then).
    landlord_id: str | None = Field(default=None, foreign_key="landlords.id", max_length=32, unique=True)
    name: str = Field(max_length=50)
    id_number: str | None = Field(default=None, max_length=18, unique=True)  # None: none on record
    phone: str = Field(max_length=11)
    community_id: str | None = Field(default=None, foreign_key="divisions.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    created_by: str | None = Field(default=None, max_length=32)  # None: the landlord registered themselves
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class DwellingClaim(SQLModel, table=True):
    """A dwelling a landlord registered: pending until a worker of its community confirms or rejects it."""

    __tablename__ = "landlord_dwelling_claims"
    __table_args__ = (
        UniqueConstraint("account_id", "community_id", "address", name="uq_landlord_claims_account_address"),
        Index("ix_landlord_claims_area_state", "area_path", "state",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="landlord_accounts.user_id", max_length=32, index=True)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    address: str = Field(max_length=200)
    kind: str = Field(max_length=12)
    state: str = Field(default=ClaimState.pending.value, max_length=12)
    reason: str | None = Field(default=None, max_length=20)
    dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class TenantReport(SQLModel, table=True):
    """A landlord's report of a tenant moving in or out. (dwelling, kind, subject, date) is unique: a retried
    report is the same report. `subject` is the tenant's ID number (move-in) or the tenancy id (move-out)."""

    __tablename__ = "landlord_reports"
    __table_args__ = (
        UniqueConstraint("dwelling_id", "kind", "subject", "on_date", name="uq_landlord_reports_subject"),
        Index("ix_landlord_reports_area_state", "area_path", "state",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_landlord_reports_landlord", "landlord_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="landlord_accounts.user_id", max_length=32)
    landlord_id: str = Field(foreign_key="landlords.id", max_length=32)
    dwelling_id: str = Field(foreign_key="dwellings.id", max_length=32)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    kind: str = Field(max_length=10)
    subject: str = Field(max_length=32)
    name: str | None = Field(default=None, max_length=50)
    id_number: str | None = Field(default=None, max_length=18)
    phone: str | None = Field(default=None, max_length=11)
    on_date: date
    reported_on: date  # the city date of the report
    late: bool = False
    state: str = Field(max_length=12)
    resident_id: str | None = Field(default=None, foreign_key="residents.id", max_length=32)
    tenancy_id: str | None = Field(default=None, foreign_key="tenancies.id", max_length=32)
    task_id: str | None = Field(default=None, max_length=36)
    reason: str | None = Field(default=None, max_length=20)  # why a worker dismissed it (a code)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
