"""Helpers for the assistance-request tests: residents from a partner city, requests through the API, a clock."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from app.cycle.assistance import service
from tests.conftest import Api, World
from tests.factories import dwelling_id, id_number, register_resident

URL = "/api/v1/assistance-requests"
ME = "/api/v1/me/tasks"


def woman(api: Api, world: World, seq: str, community: str = "c1", user: str = "worker1",
          hukou: str = "411602") -> dict[str, Any]:
    """A resident registered in `community` whose 户籍地 is in 周口 (411600, a partner city) by default."""
    return register_resident(api, user, dwelling_id(world, community),
                             id_number=id_number(birth="19930707", seq=seq, area=hukou), hukou_code=hukou,
                             name="刘梅", phone=None)


def draft(api: Api, resident_id: str, topic: str = "residence", urgent: bool = False,
          user: str = "worker1") -> dict[str, Any]:
    response = api.as_(user, "POST", URL, json={"resident_id": resident_id, "topic": topic, "urgent": urgent})
    assert response.status_code == 201, response.text
    return dict(response.json())


def act(api: Api, user: str, request: dict[str, Any], step: str, body: dict[str, Any] | None = None,
        status: int = 200) -> dict[str, Any]:
    response = api.as_(user, "POST", f"{URL}/{request['id']}/{step}",
                       json={"version": request["version"], **(body or {})})
    assert response.status_code == status, response.text
    return dict(response.json())


def incoming(api: Api, subject_id: str, reference: str, received_on: date, *, partner: str = "411600",
             topic: str = "fp_certificate", urgent: bool = False, status: int = 201, name: str = "刘梅",
             ) -> dict[str, Any]:
    response = api.as_("admin", "POST", f"{URL}/incoming", json={
        "partner_city": partner, "partner_reference": reference, "id_number": subject_id, "name": name,
        "topic": topic, "urgent": urgent, "received_on": received_on.isoformat()})
    assert response.status_code == status, response.text
    return dict(response.json())


def set_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """The city date the service sends and answers on (the deadline rules depend on the day of the month)."""
    monkeypatch.setattr(service, "city_today", lambda: day)
