"""Sync bookkeeping: devices, conflicts and rejected records (the change log itself is the ledger's)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class SyncDevice(SQLModel, table=True):
    __tablename__ = "sync_devices"
    __table_args__ = (
        UniqueConstraint("user_id", "device_id", name="uq_sync_devices_user_device"),
        Index("ix_sync_devices_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", max_length=32, index=True)
    device_id: str = Field(max_length=64)
    app_version: str | None = Field(default=None, max_length=40)
    schema_version: int | None = None
    # The user's area when the device last synced (first assigned division), for supervisors' scoping.
    area_path: str = Field(default="/", max_length=120)
    district_code: str | None = Field(default=None, max_length=6)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_push_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_cursor: int | None = Field(default=None, sa_type=BigInteger)  # the cursor last handed out
    cursor_lag: int | None = Field(default=None, sa_type=BigInteger)  # counter minus last_pulled_at at a pull
    pulls: int = 0
    pushes: int = 0
    rejected_total: int = 0
    last_rejected: int = 0
    clock_skew_ms: int | None = Field(default=None, sa_type=BigInteger)
    # The scope (division path prefixes, JSON list) whose records the device is known to hold, and its hash.
    scope_key: str | None = Field(default=None, max_length=64)
    scope_prefixes: str | None = Field(default=None, max_length=4000)
    # A scope sent but not yet acknowledged: acknowledged by a later pull with last_pulled_at >= pending_cursor
    # and > pending_from (a retried pull of a lost response presents the old cursor and gets it again).
    pending_scope: str | None = Field(default=None, max_length=4000)
    pending_cursor: int | None = Field(default=None, sa_type=BigInteger)
    pending_from: int | None = Field(default=None, sa_type=BigInteger)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = Field(default=None, max_length=32)


class SyncConflict(SQLModel, table=True):
    """A field changed both on the server and on a phone: the overwritten server values, for supervisors."""

    __tablename__ = "sync_conflicts"
    __table_args__ = (
        Index("ix_sync_conflicts_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_sync_conflicts_record", "table_name", "record_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    table_name: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    device_row_id: str = Field(foreign_key="sync_devices.id", max_length=32)
    user_id: str = Field(foreign_key="users.id", max_length=32)
    fields: str = Field(max_length=500)  # JSON list of field names
    server_values: str = Field(max_length=8000)  # JSON object
    client_values: str = Field(max_length=8000)  # JSON object
    area_path: str = Field(max_length=120)
    district_code: str | None = Field(default=None, max_length=6)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=32)


class RejectionKind(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"


class SyncRejection(SQLModel, table=True):
    """A pushed record the server refused: the device's next pulls send the server's truth for it.

    `seq_at` is stamped at commit like sync_log rows (a push that rejects something always takes a fresh
    sequence number), so a pull whose `last_pulled_at >= seq_at` proves the device holds a later cursor
    than the rejection and the row is reconciled.
    """

    __tablename__ = "sync_rejections"
    __table_args__ = (
        Index("ix_sync_rejections_device", "device_row_id", "reconciled"),
        {"info": {"stamp": "seq_at"}},  # the ledger gives seq_at the push's sequence number at commit
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    device_row_id: str = Field(foreign_key="sync_devices.id", max_length=32)
    table_name: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    kind: str = Field(max_length=6)
    code: str = Field(max_length=60)
    seq_at: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reconciled: bool = False
