"""Helpers for the monthly-verification tests: open a month, find and record verifications, set the city date."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from app.cycle.verification import opening, recording
from tests.conftest import Api

OPEN = "/api/v1/cycle/open"
PERIODS = "/api/v1/cycle/periods"
VERIFICATIONS = "/api/v1/cycle/verifications"


def set_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """The city date the cycle opens and records on (months are checked against it)."""
    monkeypatch.setattr(recording, "city_today", lambda: day)
    monkeypatch.setattr(opening, "city_today", lambda: day)


def open_month(api: Api, month: str, status: int = 200, **body: Any) -> dict[str, Any]:
    response = api.as_("admin", "POST", OPEN, json={"month": month, **body})
    assert response.status_code == status, response.text
    return dict(response.json())


def verifications(api: Api, user: str, **params: Any) -> list[dict[str, Any]]:
    response = api.as_(user, "GET", VERIFICATIONS, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def record(api: Api, user: str, verification: dict[str, Any], outcome: str, status: int = 200,
           evidence: str = "phone", **extra: Any) -> dict[str, Any]:
    response = api.as_(user, "PUT", f"{VERIFICATIONS}/{verification['id']}", json={
        "version": verification["version"], "outcome": outcome, "evidence": evidence, **extra})
    assert response.status_code == status, response.text
    return dict(response.json())
