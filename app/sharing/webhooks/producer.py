"""The producers of webhook events: residents arriving, moving (in and out) and leaving; the outflow city's
own events are in app/sharing/webhooks/outflow.py.

The register emits `ResidentRegistered`, `ResidentMoved` and `ResidentLeft` in its own transaction; the handlers
here (subscribed in app/wiring.py) add one outbox event per active endpoint that subscribes to the event type and
covers the resident (its partner's jurisdiction, narrowed by the endpoint: app/sharing/webhooks/coverage.py), in
that same transaction: a rolled-back change leaves no event. The body is built now, so every attempt sends the same
bytes, and holds only what the partner kind's disclosure profile in force allows: a police station the identity
and residence groups; an outflow city the person as its change feed shows them (app/sharing/outflow/shaping.py).
Without a profile, or while it requires a supervisor's approval of each disclosure, nothing is queued (fail
closed, as the partner routes).

A move is `resident.moved` to the endpoints covering where the resident lives now, and `resident.moved_out`
(identity only, as the police feed's departure) to those that covered where they lived before and not now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlmodel import Session

from app.core import events
from app.core.actor import Role
from app.core.types import new_id, utcnow
from app.ledger.outbox.service import enqueue
from app.people.events import ResidentLeft, ResidentMoved, ResidentRegistered
from app.people.models import Resident
from app.people.shapes import ShapeExtra
from app.places.models import Division, Dwelling
from app.sharing.outflow.shaping import shape
from app.sharing.profiles.service import ApprovalRequired, Profile, ProfileMissing, pull_profile
from app.sharing.webhooks.coverage import ARRIVED, EVENT_TYPES, LEFT, MOVED, MOVED_OUT, Reach, reaches
from app.sharing.webhooks.models import WebhookEndpoint

__all__ = ["EVENT_TYPES", "announce", "pushed_groups", "subscribe"]

# A police event carries the resident's identity and residence groups at most, as the police profile in force
# allows them (app/sharing/profiles); never contact, health, visits or services.
PUSHED_GROUPS = ("identity", "residence")


def pushed_groups(profile: Profile) -> tuple[str, ...]:
    return tuple(g for g in PUSHED_GROUPS if profile.allows(g))


def document(event_id: str, event_type: str, created_at: datetime, profile: Profile, groups: Sequence[str],
             content: dict[str, Any]) -> str:
    """The event as the receiver gets it; `field_groups` names what it shows (and what the ledger enters)."""
    return orjson.dumps({"id": event_id, "type": event_type,
                         "created_at": created_at.isoformat().replace("+00:00", "Z"), **content,
                         "profile_version": profile.version, "field_groups": list(groups)}).decode()


class Profiles:
    """The profiles a push may leave under, read once per change: None when a kind has none or it requires
    approval (fail closed)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._found: dict[str, Profile | None] = {}

    def get(self, kind: str) -> Profile | None:
        if kind not in self._found:
            try:
                self._found[kind] = pull_profile(self.session, kind)
            except (ProfileMissing, ApprovalRequired):
                self._found[kind] = None
        return self._found[kind]


def queue(session: Session, endpoint: WebhookEndpoint, event_type: str, profile: Profile, groups: Sequence[str],
          content: dict[str, Any], resident: Resident | None) -> None:
    """One event for one endpoint, in the caller's transaction (`resident`: whom it discloses, for the ledger)."""
    event_id = new_id()
    enqueue(session, type=event_type, endpoint_id=endpoint.id, event_id=event_id,
            body=document(event_id, event_type, utcnow(), profile, groups, content),
            subject=("resident", resident.id, resident.district_code) if resident is not None else None)


def _police_person(profile: Profile, resident: Resident, address: str | None,
                   groups: tuple[str, ...]) -> dict[str, Any]:
    person = profile.shape(resident, ShapeExtra(dwelling_address=address), groups)
    person["id"] = resident.id  # the receiver's key for the person (the record id, in the identity group too)
    return person


def _send(session: Session, targets: list[Reach], resident: Resident, event_type: str) -> int:
    profiles, queued = Profiles(session), 0
    address = community = None
    for reach in targets:
        kind = reach.endpoint.partner_kind
        profile = profiles.get(kind)
        if profile is None:
            continue  # no profile, or one that needs a supervisor's approval of each disclosure: nothing leaves
        if kind == Role.police.value:
            groups = pushed_groups(profile)
            if address is None and resident.dwelling_id:
                dwelling = session.get(Dwelling, resident.dwelling_id)
                address = dwelling.address if dwelling else None
            person = _police_person(profile, resident, address, groups)
        else:
            if community is None:
                division = session.get(Division, resident.community_id)
                community = division.name if division else ""
            shaped = shape(profile, resident, "residence", ShapeExtra(community_name=community or None))
            if shaped is None:
                continue  # the profile withholds residence: the city's feed does not show this event either
            groups, person = shaped
        queue(session, reach.endpoint, event_type, profile, groups, {"resident": person}, resident)
        queued += 1
    session.flush()
    return queued


def announce(session: Session, resident: Resident, event_type: str) -> int:
    """Queue `event_type` about `resident` for every endpoint covering them; returns how many events."""
    return _send(session, [r for r in reaches(session, event_type) if r.covers(resident)], resident, event_type)


def announce_moved_out(session: Session, resident: Resident, previous_path: str) -> int:
    """Tell the endpoints that covered `previous_path`, and do not cover where the resident lives now, that
    they moved out: identity only (where they went is outside the jurisdiction)."""
    profiles, queued = Profiles(session), 0
    for reach in reaches(session, MOVED_OUT):
        if not reach.covers_path(previous_path) or reach.covers_path(resident.area_path):
            continue
        profile = profiles.get(reach.endpoint.partner_kind)
        if profile is None or not profile.allows("identity"):
            continue
        queue(session, reach.endpoint, MOVED_OUT, profile, ("identity",),
              {"resident": _police_person(profile, resident, None, ("identity",))}, resident)
        queued += 1
    session.flush()
    return queued


def _arrived(session: Session, event: ResidentRegistered) -> None:
    announce(session, event.resident, ARRIVED)


def _moved(session: Session, event: ResidentMoved) -> None:
    announce(session, event.resident, MOVED)
    if event.previous_area_path and event.previous_area_path != event.resident.area_path:
        announce_moved_out(session, event.resident, event.previous_area_path)


def _left(session: Session, event: ResidentLeft) -> None:
    announce(session, event.resident, LEFT)


def subscribe() -> None:
    events.subscribe(ResidentRegistered, _arrived)
    events.subscribe(ResidentMoved, _moved)
    events.subscribe(ResidentLeft, _left)
