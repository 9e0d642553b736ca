"""The first producer of webhook events: residents arriving, moving and leaving.

The register emits `ResidentRegistered`, `ResidentMoved` and `ResidentLeft` in its own transaction; the handlers
here (subscribed in app/wiring.py) add one outbox event per active endpoint that subscribes to the event type and
covers the resident, in that same transaction: a rolled-back change leaves no event. The body holds only what the
partner kind's disclosure profile in force allows of the identity and residence groups (never contact, health,
visits or services), built now, so every attempt sends the same bytes. Without a profile, or while it requires a
supervisor's approval of each disclosure, nothing is queued (fail closed, as the partner routes).

A move is announced to the endpoints covering where the resident lives now; the ones covering where they lived
before are not told yet (docs/sharing.md, "Not built yet").
"""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.core import events
from app.core.types import new_id, utcnow
from app.ledger.outbox.service import enqueue
from app.people.events import ResidentLeft, ResidentMoved, ResidentRegistered
from app.people.models import Resident
from app.people.shapes import ShapeExtra
from app.places.models import Dwelling
from app.sharing.profiles.service import ApprovalRequired, Profile, ProfileMissing, pull_profile
from app.sharing.webhooks.models import WebhookEndpoint

ARRIVED, MOVED, LEFT = "resident.arrived", "resident.moved", "resident.left"
EVENT_TYPES = (ARRIVED, MOVED, LEFT)


# A pushed event carries the resident's identity and residence groups at most, as the partner kind's disclosure
# profile in force allows them (app/sharing/profiles); never contact, health, visits or services.
PUSHED_GROUPS = ("identity", "residence")


def pushed_groups(profile: Profile) -> tuple[str, ...]:
    return tuple(g for g in PUSHED_GROUPS if profile.allows(g))


def covers(endpoint: WebhookEndpoint, resident: Resident, event_type: str) -> bool:
    if not endpoint.active or event_type not in endpoint.event_types.split(","):
        return False
    if endpoint.area_prefix is not None:
        return resident.area_path.startswith(endpoint.area_prefix)
    return endpoint.hukou_prefix is not None and resident.hukou_code.startswith(endpoint.hukou_prefix)


def body(event_id: str, event_type: str, created_at: datetime, resident: Resident, address: str | None,
         profile: Profile) -> str:
    """The event as the receiver gets it: the resident shaped by the profile, field by field."""
    person = profile.shape(resident, ShapeExtra(dwelling_address=address), pushed_groups(profile))
    person["id"] = resident.id  # the receiver's key for the person (the record id, in the identity group too)
    document = {"id": event_id, "type": event_type, "created_at": created_at.isoformat().replace("+00:00", "Z"),
                "resident": person, "profile_version": profile.version}
    return orjson.dumps(document).decode()


def announce(session: Session, resident: Resident, event_type: str) -> int:
    """Queue `event_type` about `resident` for every endpoint covering them; returns how many events."""
    endpoints = [e for e in session.execute(select(WebhookEndpoint).where(col(WebhookEndpoint.active))).scalars()
                 if covers(e, resident, event_type)]
    if not endpoints:
        return 0
    dwelling = session.get(Dwelling, resident.dwelling_id) if resident.dwelling_id else None
    address, now = (dwelling.address if dwelling else None), utcnow()
    profiles: dict[str, Profile | None] = {}
    queued = 0
    for endpoint in endpoints:
        kind = endpoint.partner_kind
        if kind not in profiles:
            profiles[kind] = _pushable(session, kind)
        profile = profiles[kind]
        if profile is None:
            continue  # no profile, or one that needs a supervisor's approval of each disclosure: nothing leaves
        event_id = new_id()
        enqueue(session, type=event_type, endpoint_id=endpoint.id, event_id=event_id,
                body=body(event_id, event_type, now, resident, address, profile),
                subject=("resident", resident.id, resident.district_code))
        queued += 1
    session.flush()
    return queued


def _pushable(session: Session, kind: str) -> Profile | None:
    """The profile a push may leave under: None when there is none or it requires approval (fail closed)."""
    try:
        return pull_profile(session, kind)
    except (ProfileMissing, ApprovalRequired):
        return None


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
