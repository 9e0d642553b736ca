"""The outbox's tables: events waiting for delivery (or delivered, or dead), and the log of every attempt.

An event's `id` is the id receivers deduplicate on: every attempt sends the same id and the same body. Neither
table is audited row by row (the worker would flood the chain): a delivery is recorded as a disclosure, an
admin's redelivery by an explicit audit event. The log holds status codes, durations and error codes, never a
body or a personal value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class OutboxState(StrEnum):
    pending = "pending"  # waiting for its next attempt (or being attempted under a lease)
    delivered = "delivered"  # a 2xx came back
    dead = "dead"  # the tries ran out (or the endpoint is gone): an admin may redeliver it


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_endpoint", "endpoint_id", "created_at"),
        {"info": {"audited": False}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    type: str = Field(max_length=40)
    endpoint_id: str = Field(max_length=32)
    # What the event is about (for the disclosure ledger once delivered): ids and codes only.
    subject_type: str | None = Field(default=None, max_length=20)
    subject_id: str | None = Field(default=None, max_length=32)
    district_code: str | None = Field(default=None, max_length=6)
    body: str  # the JSON document sent, byte for byte the same on every attempt
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str = Field(default=OutboxState.pending.value, max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=32)  # the lease of the worker attempting it
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=40)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxDelivery(SQLModel, table=True):
    """One attempt to deliver one event."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (Index("ix_outbox_deliveries_event", "event_id", "id"), {"info": {"audited": False}})

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    event_id: str = Field(max_length=32)
    endpoint_id: str = Field(max_length=32)
    attempt: int
    at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    duration_ms: int
    error: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=10)  # delivered, retry, dead
