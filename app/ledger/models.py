"""The ledger's tables: the audit chain, and the sync change log with its sequence counter.

`audit_events.id` is the position in the chain (assigned under the chain lock, no gaps); `hash` covers the
row's content and the previous row's hash, so any edit, deletion or reordering breaks the chain at that row.
Records hold identifiers and field names, never values. `chain_version` says which columns a row's hash
covers: version 1 rows (before the target's area was recorded) still verify as they were written.

`sync_log` rows are staged by the writing transaction and stamped at commit, under the chain lock, with the
next value of the single-row `sync_counter`; a pull's cursor is the counter it read in its snapshot.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor", "actor_id", "id"),
        Index("ix_audit_target", "target_type", "target_id"),
        Index("ix_audit_action", "action", "id"),
        Index("ix_audit_district", "district_code", "id"),
        # Where something was read or written is history: relocating divisions does not rewrite it.
        {"info": {"area_history": True, "audited": False}},
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
    # Chain format 2: the target's area, so a district reads its own part of the log.
    chain_version: int = Field(default=1)
    area_path: str | None = Field(default=None, max_length=120)
    district_code: str | None = Field(default=None, max_length=6)
    # Chain format 3: the row hash is an HMAC under this key of AUDIT_HMAC_KEYS.
    hmac_kid: str | None = Field(default=None, max_length=20)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of the chain's head (app/ledger/checkpoints.py). Exported and kept outside the system,
    it proves later that no row up to `last_id` was altered, deleted, reordered or cut off. Append-only like
    the chain (database triggers); recorded in the chain by an explicit `audit.checkpoint` event."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_last", "last_id"), {"info": {"audited": False}})

    # Numbered under the chain lock (the number is part of the signed statement, and rows are never updated).
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    signed_at: datetime = Field(sa_type=UTCDateTime)
    first_id: int = Field(sa_type=BigInteger)  # the first row of the kept chain then (after purges, not 1)
    last_id: int = Field(sa_type=BigInteger)
    last_hash: str = Field(max_length=64)
    rows: int = Field(sa_type=BigInteger)
    chain_version: int
    keyed_from: int | None = Field(default=None, sa_type=BigInteger)  # the first keyed (format 3) row
    key_id: str = Field(max_length=20)
    public_key: str = Field(max_length=64)  # base64 of the raw Ed25519 public key
    signature: str = Field(max_length=128)  # base64 of the Ed25519 signature over the canonical statement
    signed_by: str | None = Field(default=None, max_length=32)  # the actor (None: the CLI)


class SyncOp(StrEnum):
    upsert = "upsert"
    delete = "delete"
    exit = "exit"  # the record left this area (logged with the old area_path)


class SyncCounter(SQLModel, table=True):
    __tablename__ = "sync_counter"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, sa_type=BigInteger)


class SyncLog(SQLModel, table=True):
    __tablename__ = "sync_log"
    __table_args__ = (
        # (seq, id): the order of the partner feeds' cursors (a page may end inside one transaction's entries);
        # the sync pull and the stamp use the leading seq alone (docs/performance.md, "Indexes for the partner
        # feeds").
        Index("ix_sync_log_seq_id", "seq", "id"),
        Index("ix_sync_log_district_seq_id", "district_code", "seq", "id"),
        Index("ix_sync_log_record", "table_name", "record_id", "seq"),  # push: changed since last_pulled_at?
        # Entries record where a change happened: a later relocation of divisions must not rewrite them.
        {"info": {"area_history": True}},
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    seq: int | None = Field(default=None, sa_type=BigInteger)
    table_name: str = Field(max_length=40)
    record_id: str = Field(max_length=36)
    area_path: str = Field(max_length=120)
    district_code: str | None = Field(default=None, max_length=6)
    op: str = Field(max_length=6)
    fields: str | None = Field(default=None, max_length=500)
    # The device whose push wrote the change (NULL: any other writer): its own edits are no conflict.
    device_row_id: str | None = Field(default=None, max_length=32)
