"""Sync API shapes: the pull response (WatermelonDB's) and the devices list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.schemas import OutputModel


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
