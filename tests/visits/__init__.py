"""Helpers for the visit tests: demo residents with located dwellings, visit bodies, database reads."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, text

from app.core.types import CITY_TZ, city_today
from tests.conftest import Api, World

API = "/api/v1"
VISITS = f"{API}/visits"
_seq = itertools.count(1)

# Who sees a c1 resident's visits, and who does not.
SEES_C1 = ("worker1", "sup_street", "sup_district", "admin")
BLIND_TO_C1 = ("worker2", "worker3", "sup_other")


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def resident(engine: Engine, world: World, community: str = "c1", skip: int = 0, status: str = "REGISTERED",
             located: bool = True) -> dict[str, Any]:
    """A demo resident of the community with their dwelling's coordinates."""
    c = world.community(community)
    located_sql = "d.lat IS NOT NULL" if located else "d.lat IS NULL"
    found = rows(engine, f"SELECT r.id, r.dwelling_id, r.area_path, d.lat, d.lng FROM residents r "  # noqa: S608
                         f"JOIN dwellings d ON d.id = r.dwelling_id WHERE r.community_id = :c AND r.status = :s "
                         f"AND r.merged_into_id IS NULL AND {located_sql} ORDER BY r.id",
                 c=c["id"], s=status)
    return found[skip]


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def client_id() -> str:
    return uuid.uuid4().hex[:20] + f"-{next(_seq):06d}"


def visit_start() -> datetime:
    """Ten minutes ago, but never before the city's midnight: the visit falls on today's city date and in this
    month whenever the suite runs."""
    midnight = datetime.combine(city_today(), time(0, 0, 30), CITY_TZ)
    return max(now() - timedelta(minutes=10), midnight)


def visit_body(who: dict[str, Any], **over: Any) -> dict[str, Any]:
    """An in-person visit that met the resident ten minutes ago (never before the city's midnight, so it
    falls on today's date and in this month whenever the suite runs), checked in at their door."""
    start = visit_start()
    body: dict[str, Any] = {
        "resident_id": who["id"], "mode": "in_person", "purpose": "routine", "outcome": "met",
        "started_at": iso(start), "ended_at": iso(start + timedelta(minutes=5)),
        "notes": ["address_confirmed"],
        "checkin": {"lat": who["lat"], "lng": who["lng"], "coord_system": "wgs84", "accuracy_m": 10.0,
                    "provider": "gps", "fix_time": iso(start - timedelta(seconds=20))},
    }
    body.update(over)
    return body


def post_visit(api: Api, body: dict[str, Any], user: str = "worker1", status: int = 201) -> dict[str, Any]:
    response = api.as_(user, "POST", VISITS, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def visit_row(engine: Engine, visit_id: str) -> dict[str, Any]:
    return rows(engine, "SELECT * FROM visits WHERE id = :v", v=visit_id)[0]


def count(engine: Engine, table: str) -> int:
    return int(rows(engine, f"SELECT count(*) AS n FROM {table}")[0]["n"])  # noqa: S608
