"""Helpers shared by the monthly-report and roll-up tests: last month's calendar, the frozen clock, building
residents and visits through the API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from app.core.types import CITY_TZ, city_today
from app.cycle.assistance import service as assistance_service
from app.cycle.tasks import completion as task_completion
from app.cycle.tasks import service as task_service
from app.people.records import service as records_service
from tests.assertions import ok
from tests.conftest import Api
from tests.cycle.verify_helpers import set_today

V1 = "/api/v1"
REPORTS = f"{V1}/cycle/reports"
TODAY = city_today()
P_LAST = TODAY.replace(day=1) - timedelta(days=1)  # last month: the report under test is complete
P_FIRST = P_LAST.replace(day=1)
P = P_FIRST.strftime("%Y-%m")
D = P_FIRST.replace(day=10)  # the day the cycle, the task list and the 婚育证明 checks act on
NOON_D = datetime.combine(D, time(12), CITY_TZ)


def day(n: int) -> date:
    return P_FIRST.replace(day=n)


def at(n: int, hour: int = 10, on: date | None = None) -> datetime:
    return datetime.combine(on or day(n), time(hour), CITY_TZ)


def freeze_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle, the task list, 婚育证明 checks and assistance requests act on days of last month."""
    set_today(monkeypatch, D)
    monkeypatch.setattr(task_service, "city_today", lambda: D)
    monkeypatch.setattr(task_service, "utcnow", lambda: NOON_D)
    monkeypatch.setattr(task_completion, "utcnow", lambda: NOON_D)
    monkeypatch.setattr(records_service, "utcnow", lambda: NOON_D)
    monkeypatch.setattr(assistance_service, "today", lambda: day(2))


def visit(api: Api, who: str, mode: str, outcome: str, started: datetime, user: str = "sup_street",
          **extra: Any) -> dict[str, Any]:
    ended = started + timedelta(minutes=10)
    body: dict[str, Any] = {"resident_id": who, "mode": mode, "purpose": "routine", "outcome": outcome,
                            "started_at": started.isoformat(), "ended_at": ended.isoformat(), **extra}
    if mode == "in_person":
        body["no_coordinates_reason"] = "gps_unavailable"
    return dict(ok(api.as_(user, "POST", f"{V1}/visits", json=body), 201))
