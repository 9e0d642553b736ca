"""The one place for building test records: ID numbers, residents, visits (docs/CONVENTIONS.md, "Tests").

Every builder takes keyword overrides, so a test names only what it cares about."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.core.types import CITY_TZ, city_today
from app.people.rules import check_char
from tests.conftest import Api, World

API = "/api/v1"
RESIDENTS = f"{API}/residents"
VISITS = f"{API}/visits"
_fresh = itertools.count(1)


# --- ID numbers ----------------------------------------------------------------------------------------------

def valid_id(first17: str) -> str:
    """The 18-character ID number: the 17 digits and their GB 11643 check character."""
    return first17 + check_char(first17)


def id_number(birth: date | str = "19900315", seq: str | None = None, *, area: str = "411602", male: bool = False,
              n: int | None = None) -> str:
    """A valid ID number of someone born on `birth` (YYYYMMDD) and registered in `area`.

    With `seq` (three digits: even = female, odd = male) it is always the same number; without it each call
    gets a fresh sequence (or the `n`th), female unless `male`."""
    born = birth.strftime("%Y%m%d") if isinstance(birth, date) else birth
    if seq is None:
        k = next(_fresh) if n is None else n
        seq = f"{(2 * k + (1 if male else 0)) % 1000:03d}"
    return valid_id(f"{area}{born}{seq}")


# --- residents -----------------------------------------------------------------------------------------------

def dwelling_id(world: World, community: str = "c1", index: int = 0) -> str:
    """The id of the community's `index`th demo dwelling."""
    return world.dwellings[world.community(community)["id"]][index]


def resident_body(dwelling: str, **fields: Any) -> dict[str, Any]:
    """A registration body for the dwelling (an id). Without `id_number` it is the same person every time
    (张丽, born 1990-03-15), so a second registration meets the first."""
    body: dict[str, Any] = {
        "name": "张丽",
        "id_number": id_number(seq="002"),
        "phone": "13800138000",
        "hukou_code": "411602",
        "arrival_date": "2026-01-05",
        "dwelling_id": dwelling,
    }
    body.update(fields)
    return body


def register_resident(api: Api, user: str, dwelling: str, **fields: Any) -> dict[str, Any]:
    """`user` registers a resident in the dwelling (an id) through the API; returns the created record."""
    response = api.as_(user, "POST", RESIDENTS, json=resident_body(dwelling, **fields))
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- visits --------------------------------------------------------------------------------------------------

def iso(moment: datetime) -> str:
    return moment.isoformat()


def visit_start() -> datetime:
    """Ten minutes ago, but never before the city's midnight: the visit falls on today's city date and in this
    month whenever the suite runs."""
    midnight = datetime.combine(city_today(), time(0, 0, 30), CITY_TZ)
    return max(datetime.now(UTC) - timedelta(minutes=10), midnight)


def visit_body(who: dict[str, Any], **over: Any) -> dict[str, Any]:
    """An in-person visit that met the resident `who` (`id`, `lat`, `lng`: the coordinates of their dwelling)
    ten minutes ago (never before the city's midnight, so it falls on today's date and in this month whenever
    the suite runs), checked in at their door. It lasted five minutes, or less in the first minutes after the city's
    midnight: a visit never ends in the future (by more than the clock tolerance, it would be flagged `clock_ahead`)."""
    start = visit_start()
    end = min(start + timedelta(minutes=5), max(start, datetime.now(UTC)))
    body: dict[str, Any] = {
        "resident_id": who["id"], "mode": "in_person", "purpose": "routine", "outcome": "met",
        "started_at": iso(start), "ended_at": iso(end),
        "notes": ["address_confirmed"],
        "checkin": {"lat": who["lat"], "lng": who["lng"], "coord_system": "wgs84", "accuracy_m": 10.0,
                    "provider": "gps", "fix_time": iso(start - timedelta(seconds=20))},
    }
    body.update(over)
    return body


def phone_visit_body(resident_id: str | None = None, **over: Any) -> dict[str, Any]:
    """A phone visit (no check-in needed) that met the resident an hour ago."""
    start = datetime.now(UTC) - timedelta(hours=1)
    body: dict[str, Any] = {"mode": "phone", "purpose": "routine", "outcome": "met", "started_at": iso(start),
                            "ended_at": iso(start + timedelta(minutes=5))}
    if resident_id is not None:
        body["resident_id"] = resident_id
    body.update(over)
    return body


def post_visit(api: Api, body: dict[str, Any], user: str = "worker1", status: int = 201) -> dict[str, Any]:
    """`user` records the visit; the answer must have this status; returns its JSON."""
    response = api.as_(user, "POST", VISITS, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())
