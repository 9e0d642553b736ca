"""What a batch of new visits is checked against, read once for the batch (`visits.recording`): the residents
they name with their home dwelling's point (`Home`, `homes_statement`), then the rest (`known`).

Every statement is built once (`core.queries.ByKey`; the dwellings in the caller's area once per scope): a
single POST /visits runs each of them with one id (docs/CONVENTIONS.md, hot paths).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.catalog import service as catalog
from app.core.actor import Actor
from app.core.lean import run
from app.core.queries import ByKey, Statements, chunks
from app.people.models import Resident, ResidentStatus
from app.places.models import Dwelling
from app.visits import service
from app.visits.models import ServiceDelivery

Point = tuple[float | None, float | None]

_DWELLING_POINT = (col(Dwelling.id), col(Dwelling.lat), col(Dwelling.lng))
_PLACES = ByKey(lambda key: select(*_DWELLING_POINT).where(key(col(Dwelling.id))), lean=True)
_TAKEN_DELIVERIES = ByKey(lambda key: select(
    col(ServiceDelivery.id), col(ServiceDelivery.area_path), col(ServiceDelivery.resident_id))
    .where(key(col(ServiceDelivery.id))), lean=True)
_in_area = Statements()


def _dwellings_statement(actor: Actor) -> ByKey[Any]:
    return ByKey(lambda key: select(*_DWELLING_POINT).where(
        key(col(Dwelling.id)), col(Dwelling.active), actor.area_filter(col(Dwelling.area_path))), lean=True)


@dataclass(frozen=True)
class Home:
    """The resident a new visit is recorded on (after merges) and where the visit lies."""

    resident_id: str
    dwelling_id: str | None
    registered: bool  # may be given a follow-up task
    area: tuple[str, str, str]  # the resident's community_id, area_path, district_code
    # The home dwelling's point, when it was read with the resident (`homes_statement`); `known` the others.
    place: Point | None = None
    place_read: bool = False

    @classmethod
    def of(cls, resident: Any) -> Home:
        registered = (resident.status == ResidentStatus.registered.value and resident.merged_into_id is None
                      and resident.anonymised_at is None)
        return cls(resident.id, resident.dwelling_id, registered,
                   (resident.community_id, resident.area_path, resident.district_code))

    @classmethod
    def of_row(cls, row: Any) -> Home:
        """From a row of `homes_statement`, with its home dwelling's point (none: no dwelling, or not stored)."""
        place = (row.home_lat, row.home_lng) if row.home_dwelling is not None else None
        return replace(cls.of(row), place=place, place_read=True)


_HOME_COLUMNS = (col(Resident.id), col(Resident.status), col(Resident.merged_into_id), col(Resident.anonymised_at),
                 col(Resident.dwelling_id), col(Resident.community_id), col(Resident.area_path),
                 col(Resident.district_code))
# The home dwelling's point with the resident (one statement fewer a visit: `known` reads the others).
_HOME_PLACE: tuple[Any, ...] = (col(Dwelling.id).label("home_dwelling"), col(Dwelling.lat).label("home_lat"),
                                col(Dwelling.lng).label("home_lng"))
_homes_by_scope = Statements()


def homes_statement(actor: Actor, dialect: str) -> ByKey[Any]:
    """The residents a batch of visits names, in the caller's area, with their home dwelling's point (built once
    per scope and dialect; `recording._homes`)."""
    return _homes_by_scope.get((actor.scope, dialect), lambda: _homes_statement(actor, dialect))


def _homes_statement(actor: Actor, dialect: str) -> ByKey[Any]:
    # SQLite plans `id IN (…) AND district_code IN (…)` as a walk of the district index: name the districts on
    # PostgreSQL only (shard pruning), where the primary key wins anyway.
    district = None if dialect == "sqlite" else col(Resident.district_code)
    return ByKey(lambda key: select(*_HOME_COLUMNS, *_HOME_PLACE)
                 .outerjoin(Dwelling, col(Dwelling.id) == col(Resident.dwelling_id))
                 .where(key(col(Resident.id)), actor.area_filter(col(Resident.area_path), district)), lean=True)


@dataclass
class Known:
    scoped: dict[str, Point]  # dwellings named in bodies, in the caller's area
    places: dict[str, Point]  # the residents' own dwellings, wherever they lie
    current: int
    snapshots: dict[int, catalog.Snapshot]
    taken: set[str]  # delivery ids stored already
    foreign: set[str]  # … by deliveries the actor may not see: 404, not 409


def known(session: Session, actor: Actor, *, chosen: Iterable[str], homes: Iterable[str], versions: Iterable[int],
          claimed: Iterable[str]) -> Known:
    """`chosen`: dwellings the bodies name (in scope, active); `homes`: the residents' own dwellings (for the
    check-in distance, wherever they lie); `versions`: catalogue versions the bodies name; `claimed`: delivery
    ids the bodies bring. Plain columns on the connection: the caller has flushed (`recording._round`)."""
    conn = session.connection()
    scoped: dict[str, Point] = {}
    places: dict[str, Point] = {}
    in_area = _in_area.get(actor.scope, lambda: _dwellings_statement(actor))
    for chunk in chunks(chosen):
        scoped.update((d, (lat, lng)) for d, lat, lng in run(conn, *in_area(chunk)))
    for chunk in chunks(homes):
        places.update((d, (lat, lng)) for d, lat, lng in run(conn, *_PLACES(chunk)))
    current, snapshots = catalog.snapshots(session, versions)
    found = Known(scoped, places, current, snapshots, set(), set())
    for chunk in chunks(claimed):
        stored = [(d, path, resident) for d, path, resident in run(conn, *_TAKEN_DELIVERIES(chunk))]
        found.taken.update(d for d, _, _ in stored)
        found.foreign.update({d for d, _, _ in stored} - service.seen_records(session, actor, stored))
    return found
