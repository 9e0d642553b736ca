"""Disclosure profiles: per partner kind, what may be disclosed, on which basis, for what, and for how long.

Versioned: an edit is a new row (`version` + 1) and the old rows stay, so every ledger entry's basis can be
read as it was. docs/sharing.md, "Disclosure profiles".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class DisclosureProfile(SQLModel, table=True):
    __tablename__ = "disclosure_profiles"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_disclosure_profiles_kind_version"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    kind: str = Field(max_length=20)
    version: int = 1
    field_groups: str = Field(max_length=200)  # comma-separated, sorted
    legal_basis: str = Field(max_length=200)
    purpose: str = Field(max_length=200)
    approval_required: bool = False
    retention_days: int
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
