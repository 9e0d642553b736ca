"""The append-only, hash-chained audit log.

`id` is the position in the chain (assigned under the chain lock, no gaps); `hash` covers the row's
content and the previous row's hash, so any edit, deletion or reordering breaks the chain at that row.
Records hold identifiers and field names, never values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor", "actor_id", "id"),
        Index("ix_audit_target", "target_type", "target_id"),
        Index("ix_audit_action", "action", "id"),
    )

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_type=UTCDateTime)
    actor_id: str | None = Field(default=None, max_length=32)
    actor_role: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=60)
    target_type: str | None = Field(default=None, max_length=40)
    target_id: str | None = Field(default=None, max_length=100)
    fields: str | None = Field(default=None, max_length=2000)
    outcome: str = Field(max_length=12)
    status_code: int | None = None
    purpose: str | None = Field(default=None, max_length=120)
    request_id: str | None = Field(default=None, max_length=64)
    client_ip: str | None = Field(default=None, max_length=45)
    detail: str | None = Field(default=None, max_length=2000)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
