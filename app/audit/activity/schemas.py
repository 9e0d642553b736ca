"""API shapes of worker activity (supervisors)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.core.schemas import OutputModel


class Level(StrEnum):
    worker = "worker"
    community = "community"
    street = "street"
    district = "district"


class VisitCounts(OutputModel):
    total: int
    in_person: int
    phone: int


class TaskCounts(OutputModel):
    due: int = Field(description="Due in the period, not cancelled")
    on_time: int = Field(description="Done by the due date")
    late: int = Field(description="Done after the due date")
    overdue: int = Field(description="Still open past the due date")
    open: int = Field(description="Open, not yet due")


class DeviceHealth(OutputModel):
    id: str = Field(description="The device's row id (POST /sync/devices/{id}/revoke)")
    device_id: str
    app_version: str | None
    last_sync_at: datetime | None = Field(description="The later of the last pull and the last push")
    last_pull_at: datetime | None
    last_push_at: datetime | None
    cursor_lag: int | None = Field(description="Changes the device had not pulled yet at its last pull")
    pulls: int
    pushes: int
    rejected_total: int = Field(description="Pushed records the server refused, all time")
    last_rejected: int = Field(description="Refused in the last push")
    clock_skew_ms: int | None = Field(description="Device clock minus the server's at the last sync")
    revoked: bool


class Figures(OutputModel):
    visits: VisitCounts
    flagged: int = Field(description="Visits the quality rules found something on (score > 0)")
    flagged_share: float | None = Field(description="flagged / visits (None without visits)")
    tasks: TaskCounts


class ActivityRow(Figures):
    id: str
    level: Level
    code: str | None = Field(description="Division code, or the worker's user name")
    name: str
    verification_coverage: float | None = Field(
        description="Share of the period's months' verifications recorded in the row's area; null where no "
                    "month was opened")
    report_timeliness: dict[str, Any] | None = Field(
        description="The monthly reports of the communities in the row's area for the period's ended months: "
                    "{months, due, submitted, on_time, completeness, timeliness}; null where none was due")
    devices: list[DeviceHealth] | None = Field(description="Workers: every device they synced from")


class ActivityOut(OutputModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    group: Level
    rows: list[ActivityRow]
    totals: Figures = Field(description="The whole area (a task shared by several workers counted once)")
