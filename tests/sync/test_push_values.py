"""Push: values a phone (or a broken client) can send that no column can hold.

A value of the wrong type or beyond the calendar refuses only its record (`record_invalid`), never the push
and never with a 500; a body that is not strict JSON refuses the push (`push_invalid`) before anything runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.people.models import Resident
from app.visits.models import ServiceDelivery, Visit
from tests.conftest import Api, World
from tests.sync.helpers import rows
from tests.sync.push_helpers import PUSH, changes, codes, cursor, delivery_raw, push, resident_raw, visit_raw, wid

HEADERS = {"X-Device-Id": "phone-0001", "Content-Type": "application/json"}
# Epoch milliseconds no calendar holds (year 3,170,843), and the same as a float
BEYOND = 10**20


def _resident(engine: Engine, world: World) -> str:
    path = world.community("c1")["path"]
    return str(rows(engine, select(Resident.id).where(Resident.area_path.startswith(path)))[0][0])


@pytest.mark.parametrize("field, value", [
    ("started_at", BEYOND), ("started_at", -BEYOND), ("started_at", float(BEYOND)), ("ended_at", 2**63),
    ("started_at", "2026-12-01"), ("started_at", True), ("catalog_version", 1.5), ("catalog_version", 2**70),
    ("lat", "34.7"), ("mock_location", 1), ("notes", 7), ("notes", "not json"), ("notes", '{"a": 1}'),
])
def test_unholdable_visit_value_refuses_the_visit_and_its_deliveries(api: Api, world: World, engine: Engine,
                                                                       field: str, value: Any) -> None:
    who, last = _resident(engine, world), cursor(api, "worker1")
    good, bad, bad_delivery = wid(), wid(), wid()
    body = push(api, "worker1", changes(
        visits={"created": [visit_raw(good, who), visit_raw(bad, who, **{field: value})]},
        service_deliveries={"created": [delivery_raw(bad_delivery, bad)]}), last)
    assert codes(body) == {bad: "record_invalid", bad_delivery: "record_invalid"}
    assert body["applied"] == {"visits": 1}
    stored = {v for (v,) in rows(engine, select(Visit.id).where(Visit.id.in_([good, bad])))}
    assert stored == {good}
    assert not rows(engine, select(ServiceDelivery.id).where(ServiceDelivery.id == bad_delivery))


@pytest.mark.parametrize("value", [1.5, True, "2", BEYOND, -1, 0])
def test_unholdable_delivery_quantity_refuses_its_visit(api: Api, world: World, engine: Engine, value: Any) -> None:
    who, last = _resident(engine, world), cursor(api, "worker1")
    vid, did = wid(), wid()
    raw = {**delivery_raw(did, vid), "quantity": value}
    body = push(api, "worker1", changes(visits={"created": [visit_raw(vid, who)]},
                                        service_deliveries={"created": [raw]}), last)
    # quantity 0 falls back to the default 1 as on the phone's empty column; every other one is refused
    if value == 0:
        assert codes(body) == {} and body["applied"] == {"visits": 1, "service_deliveries": 1}
        assert rows(engine, select(ServiceDelivery.quantity).where(ServiceDelivery.id == did)) == [(1,)]
    else:
        assert set(codes(body)) == {vid, did}
        assert set(codes(body).values()) <= {"record_invalid"}
        assert not rows(engine, select(Visit.id).where(Visit.id == vid))


def test_resident_date_beyond_the_calendar_refuses_the_resident(api: Api, world: World, engine: Engine) -> None:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    body = push(api, "worker1", changes(residents={"created": [
        resident_raw(rid, dwelling, "121", arrival_date=BEYOND)]}), last)
    assert codes(body) == {rid: "record_invalid"}
    assert not rows(engine, select(Resident.id).where(Resident.id == rid))


@pytest.mark.parametrize("content", [
    b'{"changes": {"visits": {"created": [], "updated": [], "deleted": []}}, "x": NaN}',
    b'{"changes": {"visits": {"created": [{"id": "abcdefghijklmnop", "lat": Infinity}]}}}',
    b'{"changes": {"residents": {"created": [{"id": "abcdefghijklmnop", "name": "\\ud800"}]}}}',
    b'{"changes": {"residents": {"created": [{"id": "abcdefghijklmnop", "lat": 1e400}]}}}',
    b'{"changes": {"residents": {"created": [{"id": "abcdefghijklmnop", "name": "\xff\xfe"}]}}}',
], ids=["NaN", "Infinity", "lone surrogate", "overflowing number", "not UTF-8"])
def test_body_that_is_not_strict_json_refuses_the_push(api: Api, world: World, engine: Engine,
                                                       content: bytes) -> None:
    last = cursor(api, "worker1")
    before = rows(engine, select(Resident.id))
    response = api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=content, headers=HEADERS)
    assert (response.status_code, response.json()["code"]) == (422, "push_invalid")
    assert rows(engine, select(Resident.id)) == before
