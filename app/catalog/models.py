"""The free-service catalogue (免费服务项目): items and the versions they were published in.

Never a hard-coded enum: admins add, edit and retire items without a deploy. Every change publishes a new
catalogue version whose `items` snapshot (JSON) records the whole catalogue as it then stood, so a visit
made under version N can always be shown and checked against what version N said. A retired item keeps
its row (with `effective_to` set): visits that delivered it stay valid.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class CatalogVersion(SQLModel, table=True):
    __tablename__ = "catalog_versions"

    version: int = Field(primary_key=True)
    note: str = Field(max_length=200)
    # JSON list of the items as published in this version (code, names, description, unit, order, dates).
    items: str
    published_by: str | None = Field(default=None, max_length=32)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServiceItem(SQLModel, table=True):
    __tablename__ = "service_items"
    # City-wide reference data: every phone receives the whole catalogue (app/ledger/changes.py).
    __table_args__ = ({"info": {"sync": {"everyone": True}}},)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    code: str = Field(max_length=20, unique=True)
    name_zh: str = Field(max_length=60)
    name_en: str = Field(max_length=120)
    description: str = Field(default="", max_length=500)
    unit: str = Field(default="次", max_length=10)
    sort_order: int = 0
    effective_from: date
    effective_to: date | None = None
    # Services of reproductive health (all eight statutory items are): deliveries are sensitive reads.
    sensitive: bool = True
    since_version: int = Field(foreign_key="catalog_versions.version")
    retired_in_version: int | None = Field(default=None, foreign_key="catalog_versions.version")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
