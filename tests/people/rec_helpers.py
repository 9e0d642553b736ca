"""Helpers for the records, shapes, rights and retention tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.types import city_today
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import id_number

API = "/api/v1"
RESIDENTS = f"{API}/residents"
LANDLORDS = f"{API}/landlords"
# Every endpoint that takes a resident, with the callers that see a c1 resident and those that do not.
SEES_C1 = ("worker1", "sup_street", "sup_district", "admin")
BLIND_TO_C1 = ("worker2", "worker3", "sup_other")


def years_ago(years: int, *, days: int = 0) -> date:
    today = city_today()
    try:
        d = today.replace(year=today.year - years)
    except ValueError:
        d = today.replace(year=today.year - years, day=28)
    return d - timedelta(days=days)


def resident_fields(birth: date | str = "19900315", *, male: bool = False, **over: Any) -> dict[str, Any]:
    """The fields these tests register a resident with (李娜, a fresh ID number each call), for
    `tests.factories.register_resident`."""
    fields: dict[str, Any] = {
        "name": "李娜", "id_number": id_number(birth, male=male), "phone": "13912345678", "hukou_code": "411602",
        "hukou_address": "周口市川汇区人民路1号", "arrival_date": (city_today() - timedelta(days=30)).isoformat(),
    }
    fields.update(over)
    return fields


def dwelling_version(engine: Engine, dwelling_id: str) -> int:
    return int(rows(engine, "SELECT version FROM dwellings WHERE id = :d", d=dwelling_id)[0]["version"])


def health_body(version: int = 0, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"version": version, "contraception": "iud",
                            "contraception_since": "2020-05-01", "pregnancy": "not_pregnant", "children": []}
    body.update(over)
    return body


def put_health(api: Api, resident_id: str, user: str = "worker1", purpose: str = "visit", **over: Any) -> Any:
    return api.as_(user, "PUT", f"{RESIDENTS}/{resident_id}/health", params={"purpose": purpose},
                   json=health_body(**over))


def valid_doc(**over: Any) -> dict[str, Any]:
    today = city_today()
    body: dict[str, Any] = {"number": "豫周婚育2024-000123", "issuing_division": "411602",
                            "issued_on": (today - timedelta(days=400)).isoformat(),
                            "expires_on": (today + timedelta(days=700)).isoformat(), "status": "valid"}
    body.update(over)
    return body


def key_person(api: Api, resident_id: str) -> bool:
    response = api.as_("worker1", "GET", f"{RESIDENTS}/{resident_id}")
    assert response.status_code == 200, response.text
    return bool(response.json()["key_person"])


def free_dwelling(engine: Engine, world: World, community: str = "c1", skip: int = 0) -> str:
    """A dwelling of the community with no landlord yet (the demo gives many dwellings a landlord)."""
    ids = rows(engine, "SELECT id FROM dwellings WHERE community_id = :c AND landlord_id IS NULL AND active "
                       "ORDER BY id", c=world.community(community)["id"])
    return str(ids[skip]["id"])


def landlord_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "王建国", "id_number": id_number("19700101", male=True), "phone": "137-0000-1111"}
    body.update(over)
    return body
