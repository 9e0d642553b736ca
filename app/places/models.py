"""The division hierarchy (city → district → street → community → grid) and dwellings.

Each division keeps a materialised `path` of codes ("/410100/410105/410105001/…/"); every record that
lives somewhere carries the `area_path` of its community or grid. Scope checks are prefix matches on
those paths, one mechanism for every domain (see app/core/scope.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class Level(StrEnum):
    city = "city"
    district = "district"
    street = "street"
    community = "community"
    grid = "grid"


LEVEL_ORDER = [Level.city, Level.district, Level.street, Level.community, Level.grid]


class CommunityType(StrEnum):
    """The five demonstration types (五种类型)."""

    gated = "gated"  # 封闭小区
    mixed = "mixed"  # 杂居小区
    market = "market"  # 商(市)场
    urban_village = "urban_village"  # 城中村
    fringe = "fringe"  # 城乡接合部


class DwellingKind(StrEnum):
    rental = "rental"
    own = "own"
    dormitory = "dormitory"
    other = "other"


class Division(SQLModel, table=True):
    __tablename__ = "divisions"
    __table_args__ = (
        Index("ix_divisions_parent", "parent_id"),
        Index("ix_divisions_path_prefix", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
        # Phones receive this table (app/ledger/changes.py); a division's area is its own path.
        {"info": {"sync": True, "area": "path"}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    code: str = Field(max_length=20, index=True)
    name: str = Field(max_length=100)
    level: str = Field(max_length=12)
    parent_id: str | None = Field(default=None, foreign_key="divisions.id", max_length=32)
    path: str = Field(max_length=120, unique=True)
    district_code: str | None = Field(default=None, max_length=6)
    community_type: str | None = Field(default=None, max_length=20)
    vintage: int = Field(ge=1980, le=2200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class Dwelling(SQLModel, table=True):
    __tablename__ = "dwellings"
    __table_args__ = (
        UniqueConstraint("community_id", "address", name="uq_dwellings_community_address"),
        Index("ix_dwellings_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_dwellings_district", "district_code"),
        # Phones receive this table (app/ledger/changes.py).
        {"info": {"sync": True}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    grid_id: str | None = Field(default=None, foreign_key="divisions.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    address: str = Field(max_length=200)
    kind: str = Field(max_length=12)
    lat: float | None = None
    lng: float | None = None
    landlord_id: str | None = Field(default=None, foreign_key="landlords.id", max_length=32, index=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
