"""A visit recorded in GCJ-02 (the datum of Chinese map SDKs) is stored in WGS-84 and goes back to the phone
in GCJ-02, so the phone's map shows the point the worker stood on."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from app.people.models import Resident
from app.places.models import Dwelling
from app.visits.geo import gcj02_to_wgs84, wgs84_to_gcj02
from app.visits.models import Visit
from tests.conftest import Api, World
from tests.sync.helpers import pull, rows
from tests.sync.push_helpers import changes, cursor, push, visit_raw, wid


def test_gcj02_visit_round_trip(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    resident_id, lat, lng = rows(engine, select(Resident.id, Dwelling.lat, Dwelling.lng)
                                 .join(Dwelling, Dwelling.id == Resident.dwelling_id)
                                 .where(Resident.community_id == c1["id"], Resident.status == "REGISTERED",
                                        Dwelling.lat.is_not(None)).order_by(Resident.id))[0]  # type: ignore[union-attr]
    g_lat, g_lng = wgs84_to_gcj02(lat, lng)  # where the phone's AMap SDK says the door is
    last = cursor(api, "worker1")
    visit_id = wid()
    body = push(api, "worker1", changes(visits={"created": [visit_raw(
        visit_id, resident_id, mode="in_person", lat=g_lat, lng=g_lng, coord_system="gcj02", accuracy_m=8.0,
        provider="gps")]}), last)
    assert body["rejected"] == []
    stored = rows(engine, select(Visit.lat, Visit.lng, Visit.coord_system, Visit.distance_m)
                  .where(Visit.id == visit_id))[0]
    assert (stored[0], stored[1]) == pytest.approx(gcj02_to_wgs84(g_lat, g_lng), abs=1e-9)
    assert stored[2] == "gcj02" and stored[3] is not None and stored[3] < 1.0  # at the door, in WGS-84

    back = pull(api, "worker1", last)
    raw = next(r for r in back["changes"]["visits"]["updated"] if r["id"] == visit_id)
    assert raw["coord_system"] == "gcj02"
    assert (raw["lat"], raw["lng"]) == pytest.approx((g_lat, g_lng), abs=1e-7)
