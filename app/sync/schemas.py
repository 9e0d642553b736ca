"""Sync API shapes: the pull and push responses (WatermelonDB's), devices and conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.schemas import InputModel, OutputModel
from app.sync.conflicts import ResolveOutcome


class TableChanges(OutputModel):
    created: list[dict[str, Any]] = Field(description="Always empty: changes come under `updated`")
    updated: list[dict[str, Any]] = Field(description="Raw records (docs/sync.md lists the columns)")
    deleted: list[str] = Field(description="Ids deleted on the server or no longer in your scope")


class PullOut(OutputModel):
    changes: dict[str, TableChanges]
    timestamp: int = Field(description="The cursor: pass it as last_pulled_at next time (not a clock)")


class DeviceOut(OutputModel):
    id: str
    user_id: str
    username: str
    device_id: str
    app_version: str | None
    schema_version: int | None
    first_seen_at: datetime
    last_pull_at: datetime | None
    last_push_at: datetime | None
    last_cursor: int | None
    cursor_lag: int | None
    pulls: int
    pushes: int
    rejected_total: int
    last_rejected: int
    clock_skew_ms: int | None
    revoked_at: datetime | None
    revoked_by: str | None


class RejectedOut(OutputModel):
    table: str
    id: str = Field(description="The record id (empty when the pushed id itself was invalid)")
    code: str = Field(description="Why: an error code of the REST API, or a sync code (docs/sync.md)")
    message: str


class PushOut(OutputModel):
    ok: bool = Field(description="Always true: the push was applied, except the records in `rejected`")
    rejected: list[RejectedOut] = Field(description="Records refused; the next pull brings the server's truth")
    applied: dict[str, int] = Field(description="Records written, per table")
    unchanged: int = Field(description="Records equal to the stored ones (a retried push), or deletes of nothing")


class ConflictOut(OutputModel):
    id: str
    table_name: str
    record_id: str
    fields: list[str]
    server_values: dict[str, Any] = Field(description="The server's values the phone's edit overwrote (wire form)")
    client_values: dict[str, Any] = Field(description="The phone's values, now stored (wire form)")
    user_id: str
    username: str
    device_row_id: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class ResolveIn(InputModel):
    outcome: ResolveOutcome = Field(default=ResolveOutcome.acknowledged,
                                    description="What was decided (a code; no free text)")
