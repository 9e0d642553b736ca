"""What a batch of new visits is checked against, read once for the batch (`visits.recording.write`).

Every statement is built once (`core.queries.ByKey`; the dwellings in the caller's area once per scope): a
single POST /visits runs each of them with one id (docs/CONVENTIONS.md, hot paths).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.catalog import service as catalog
from app.core.actor import Actor
from app.core.lean import run
from app.core.queries import ByKey, Statements, chunks
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
