"""Which events an endpoint may hear, and about whom: its partner's jurisdiction, narrowed by the endpoint.

An endpoint belongs to a machine client (its `partner_user_id` is the client's account, whose jurisdiction is in
`partner_clients`/`partner_areas`, app/sharing/partners). What it covers is the **intersection** of that
jurisdiction and the endpoint's own `area_prefix` (police) or `hukou_prefix` (outflow city), when it names one:
never wider than the jurisdiction, whatever the endpoint says, and following the jurisdiction when an admin
changes it. A disabled client, or one without a jurisdiction, covers nobody (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.models import User
from app.core.actor import Role
from app.people.models import Resident
from app.sharing.partners.deps import NOTHING, JurisdictionScope
from app.sharing.partners.models import PartnerArea, PartnerClient
from app.sharing.webhooks.models import WebhookEndpoint

ARRIVED, MOVED, LEFT, MOVED_OUT = "resident.arrived", "resident.moved", "resident.left", "resident.moved_out"
VERIFIED, FP_CHANGED = "verification.recorded", "fp_document.changed"
ASSISTANCE_SENT, ASSISTANCE_ANSWERED = "assistance.request_sent", "assistance.answered"
# The events each partner kind may subscribe to: moving out of an area is a police matter (an outflow city's
# coverage, the 户籍地, does not change with a move); the monthly cycle's events are the outflow city's.
KIND_EVENTS = MappingProxyType({
    Role.police.value: (ARRIVED, MOVED, LEFT, MOVED_OUT),
    Role.outflow_city.value: (ARRIVED, MOVED, LEFT, VERIFIED, FP_CHANGED, ASSISTANCE_SENT, ASSISTANCE_ANSWERED),
})
EVENT_TYPES = tuple(dict.fromkeys(t for types in KIND_EVENTS.values() for t in types))


def overlaps(a: str, b: str) -> bool:
    """Two prefixes (paths or codes) have someone in common: one lies within the other."""
    return a.startswith(b) or b.startswith(a)


@dataclass(frozen=True)
class Reach:
    """An active endpoint and its partner's jurisdiction."""

    endpoint: WebhookEndpoint
    scope: JurisdictionScope

    def covers_path(self, path: str) -> bool:
        prefix = self.endpoint.area_prefix
        return self.scope.sees_path(path) and (prefix is None or path.startswith(prefix))

    def covers_hukou(self, code: str | None) -> bool:
        prefix = self.endpoint.hukou_prefix
        return self.scope.sees_hukou(code) and (prefix is None or bool(code and code.startswith(prefix)))

    def covers(self, resident: Resident) -> bool:
        return self.covers_path(resident.area_path) or self.covers_hukou(resident.hukou_code)


def jurisdictions(session: Session, user_ids: Iterable[str]) -> dict[str, JurisdictionScope]:
    """The jurisdiction of each active client among `user_ids`, in one statement (a missing one: nothing)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(col(PartnerClient.user_id), col(PartnerClient.hukou_prefix), col(PartnerArea.area_path))
        .join(User, col(User.id) == col(PartnerClient.user_id))
        .outerjoin(PartnerArea, col(PartnerArea.user_id) == col(PartnerClient.user_id))
        .where(col(PartnerClient.user_id).in_(ids), col(User.active))
        .order_by(col(PartnerClient.user_id), col(PartnerArea.area_path))).all()
    paths: dict[str, list[str]] = {}
    prefixes: dict[str, str | None] = {}
    for user_id, hukou_prefix, path in rows:
        prefixes[user_id] = hukou_prefix
        paths.setdefault(user_id, [])
        if path is not None:
            paths[user_id].append(path)
    return {uid: JurisdictionScope(tuple(paths[uid]), prefixes[uid]) for uid in prefixes}


def reaches(session: Session, event_type: str) -> list[Reach]:
    """The active endpoints subscribed to `event_type`, each with its partner's jurisdiction."""
    endpoints = [e for e in session.execute(select(WebhookEndpoint).where(col(WebhookEndpoint.active))
                                            .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id)))
                 .scalars() if event_type in e.event_types.split(",")]
    if not endpoints:
        return []
    scopes = jurisdictions(session, (e.partner_user_id for e in endpoints))
    return [Reach(e, scopes.get(e.partner_user_id, NOTHING)) for e in endpoints]
