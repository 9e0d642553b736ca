"""The first producer of webhook events: residents arriving, moving and leaving.

The register emits `ResidentRegistered`, `ResidentMoved` and `ResidentLeft` in its own transaction; the handlers
here (subscribed in app/wiring.py) add one outbox event per active endpoint that subscribes to the event type and
covers the resident, in that same transaction: a rolled-back change leaves no event. The body holds only what the
partner kind's profile allows (identity and residence fields: never health, visits or services), built now, so
every attempt sends the same bytes.

A move is announced to the endpoints covering where the resident lives now; the ones covering where they lived
before are not told yet (docs/sharing.md, "Not built yet").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.core import events
from app.core.types import new_id, utcnow
from app.ledger.outbox.service import enqueue
from app.people.events import ResidentLeft, ResidentMoved, ResidentRegistered
from app.people.models import Resident
from app.places.models import Dwelling
from app.sharing.webhooks.models import WebhookEndpoint

ARRIVED, MOVED, LEFT = "resident.arrived", "resident.moved", "resident.left"
EVENT_TYPES = (ARRIVED, MOVED, LEFT)


@dataclass(frozen=True)
class Profile:
    """What a partner kind may receive in a pushed event, and on which basis (to come from the partners'
    disclosure profiles; until then fixed here)."""

    field_groups: tuple[str, ...]
    identity: tuple[str, ...]
    residence: tuple[str, ...]
    legal_basis: str


_IDENTITY = ("name", "sex", "birth_date", "id_number", "hukou_code")
_RESIDENCE = ("status", "arrival_date", "left_on", "left_reason", "residence_permit_no", "area_path",
              "district_code", "dwelling_id")
PROFILES = {
    "police": Profile(("identity", "residence"), _IDENTITY, _RESIDENCE, "《居住证暂行条例》第十二条"),
    "outflow_city": Profile(("identity", "residence"), _IDENTITY, _RESIDENCE, "区域协作协议"),
}


def covers(endpoint: WebhookEndpoint, resident: Resident, event_type: str) -> bool:
    if not endpoint.active or event_type not in endpoint.event_types.split(","):
        return False
    if endpoint.area_prefix is not None:
        return resident.area_path.startswith(endpoint.area_prefix)
    return endpoint.hukou_prefix is not None and resident.hukou_code.startswith(endpoint.hukou_prefix)


def body(event_id: str, event_type: str, created_at: datetime, resident: Resident, address: str | None,
         profile: Profile) -> str:
    person: dict[str, Any] = {"id": resident.id}
    person.update({name: getattr(resident, name) for name in profile.identity})
    person.update({name: getattr(resident, name) for name in profile.residence})
    if "residence" in profile.field_groups:
        person["address"] = address
    document = {"id": event_id, "type": event_type, "created_at": created_at.isoformat().replace("+00:00", "Z"),
                "resident": person}
    return orjson.dumps(document).decode()


def announce(session: Session, resident: Resident, event_type: str) -> int:
    """Queue `event_type` about `resident` for every endpoint covering them; returns how many events."""
    endpoints = [e for e in session.execute(select(WebhookEndpoint).where(col(WebhookEndpoint.active))).scalars()
                 if covers(e, resident, event_type)]
    if not endpoints:
        return 0
    dwelling = session.get(Dwelling, resident.dwelling_id) if resident.dwelling_id else None
    address, now = (dwelling.address if dwelling else None), utcnow()
    for endpoint in endpoints:
        event_id = new_id()
        enqueue(session, type=event_type, endpoint_id=endpoint.id, event_id=event_id,
                body=body(event_id, event_type, now, resident, address, PROFILES[endpoint.partner_kind]),
                subject=("resident", resident.id, resident.district_code))
    session.flush()
    return len(endpoints)


def _arrived(session: Session, event: ResidentRegistered) -> None:
    announce(session, event.resident, ARRIVED)


def _moved(session: Session, event: ResidentMoved) -> None:
    announce(session, event.resident, MOVED)


def _left(session: Session, event: ResidentLeft) -> None:
    announce(session, event.resident, LEFT)


def subscribe() -> None:
    events.subscribe(ResidentRegistered, _arrived)
    events.subscribe(ResidentMoved, _moved)
    events.subscribe(ResidentLeft, _left)
