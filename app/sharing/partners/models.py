"""Machine clients (police stations, outflow cities): their kind and jurisdiction, their secrets, and the
per-client request counters that rate-limit them.

A client is a `users` row with role `police` or `outflow_city` (its username is the OAuth client id); these
tables hold what only a machine client has. docs/sharing.md, "Machine clients".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class PartnerClient(SQLModel, table=True):
    """A machine client: its kind and, for an outflow city, its 户籍地 division-code prefix."""

    __tablename__ = "partner_clients"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=32, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    hukou_prefix: str | None = Field(default=None, max_length=6)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class PartnerArea(SQLModel, table=True):
    """A street or community in a police station's jurisdiction; `area_path` is the division's path, kept
    here so the scope is read in one statement (relocating divisions rewrites it like every `area_path`)."""

    __tablename__ = "partner_areas"
    __table_args__ = (Index("ix_partner_areas_area_path", "area_path",
                            postgresql_ops={"area_path": "varchar_pattern_ops"}),)

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=32, ondelete="CASCADE")
    division_id: str = Field(foreign_key="divisions.id", primary_key=True, max_length=32)
    area_path: str = Field(max_length=120)


class PartnerSecret(SQLModel, table=True):
    """A client secret, stored as an argon2 hash. At most two are valid at once (a rotation without downtime:
    add the new one, move the client over, retire the old one)."""

    __tablename__ = "partner_secrets"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=32, ondelete="CASCADE")
    secret_hash: str = Field(max_length=255)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PartnerRateLimit(SQLModel, table=True):
    """A fixed-window request counter per client and kind of request, in the database so every server process
    shares it. Bookkeeping: refusals are recorded by explicit audit events."""

    __tablename__ = "partner_rate_limits"
    __table_args__ = ({"info": {"audited": False}},)

    key: str = Field(primary_key=True, max_length=80)
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    count: int = 0
