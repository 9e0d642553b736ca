"""Webhook endpoints: made, changed and rotated by admins; their events listed and, when dead, redelivered."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlmodel import Session

from app.auth.models import User
from app.core.actor import Role
from app.core.config import get_settings
from app.core.errors import NotFound, StaleVersion
from app.core.types import utcnow
from app.ledger import audit
from app.ledger.outbox import service as outbox
from app.ledger.outbox.models import OutboxEvent, OutboxState
from app.places.models import Division
from app.sharing.webhooks.coverage import KIND_EVENTS, jurisdictions, overlaps
from app.sharing.webhooks.errors import (
    CoverageMismatch,
    EventNotDead,
    EventTypeRefused,
    NotAPartner,
    WebhookUrlRefused,
)
from app.sharing.webhooks.models import WebhookEndpoint
from app.sharing.webhooks.schemas import WebhookCreate, WebhookUpdate
from app.sharing.webhooks.sealing import seal

PARTNER_ROLES = (Role.police.value, Role.outflow_city.value)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def check_url(url: str) -> str:
    """https with a host and no credentials; http only to this machine, and never in production."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise WebhookUrlRefused() from None
    if not host or parts.username or parts.password or parts.fragment or any(c.isspace() for c in url):
        raise WebhookUrlRefused()
    local_http = parts.scheme == "http" and host in LOOPBACK and get_settings().app_env != "production"
    if parts.scheme != "https" and not local_http:
        raise WebhookUrlRefused()
    return url


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _narrowing(session: Session, partner: User, body: WebhookCreate) -> tuple[str | None, str | None]:
    """(area_prefix, hukou_prefix): the endpoint's own narrowing of its partner's jurisdiction, which it must
    overlap (the coverage is their intersection, app/sharing/webhooks/coverage.py)."""
    scope = jurisdictions(session, [partner.id]).get(partner.id)
    if partner.role == Role.police.value:
        if body.hukou_prefix is not None:
            raise CoverageMismatch({"reason": "hukou_prefix_for_police"})
        if scope is None or not scope.area_paths:
            raise CoverageMismatch({"reason": "no_jurisdiction"})
        if body.division_id is None:
            return None, None
        division = session.get(Division, body.division_id)
        if division is None:
            raise NotFound()
        if not any(overlaps(division.path, path) for path in scope.area_paths):
            raise CoverageMismatch({"reason": "outside_jurisdiction"})
        return division.path, None
    if body.division_id is not None:
        raise CoverageMismatch({"reason": "division_for_outflow_city"})
    if scope is None or not scope.hukou_prefix:
        raise CoverageMismatch({"reason": "no_jurisdiction"})
    if body.hukou_prefix is not None and not overlaps(body.hukou_prefix, scope.hukou_prefix):
        raise CoverageMismatch({"reason": "outside_jurisdiction"})
    return None, body.hukou_prefix


def _event_types(kind: str, types: Sequence[str]) -> str:
    refused = sorted(set(types) - set(KIND_EVENTS[kind]))
    if refused:
        raise EventTypeRefused({"event_types": refused})
    return ",".join(sorted(set(types)))


def create(session: Session, body: WebhookCreate) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its secret (in clear: shown once, stored sealed)."""
    partner = session.get(User, body.partner_user_id)
    if partner is None:
        raise NotFound()
    if partner.role not in PARTNER_ROLES:
        raise NotAPartner()
    area_prefix, hukou_prefix = _narrowing(session, partner, body)
    endpoint = WebhookEndpoint(partner_user_id=partner.id, partner_kind=partner.role, url=check_url(body.url),
                               secret="", area_prefix=area_prefix, hukou_prefix=hukou_prefix,
                               event_types=_event_types(partner.role, body.event_types), active=body.active)
    secret = new_secret()
    endpoint.secret = seal(secret, endpoint.id)
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def get(session: Session, endpoint_id: str, *, for_update: bool = False) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=for_update or None,
                           populate_existing=for_update)
    if endpoint is None:
        raise NotFound()
    return endpoint


def _bump(session: Session, endpoint: WebhookEndpoint, version: int) -> None:
    if endpoint.version != version:
        raise StaleVersion({"current_version": endpoint.version})
    endpoint.version += 1
    endpoint.updated_at = utcnow()
    session.add(endpoint)


def update(session: Session, endpoint: WebhookEndpoint, body: WebhookUpdate) -> WebhookEndpoint:
    _bump(session, endpoint, body.version)
    if body.url is not None:
        endpoint.url = check_url(body.url)
    if body.event_types is not None:
        endpoint.event_types = _event_types(endpoint.partner_kind, body.event_types)
    if body.active is not None:
        endpoint.active = body.active
    session.flush()
    return endpoint


def rotate_secret(session: Session, endpoint: WebhookEndpoint, version: int) -> tuple[WebhookEndpoint, str]:
    _bump(session, endpoint, version)
    secret = new_secret()
    endpoint.secret = seal(secret, endpoint.id)
    session.flush()
    return endpoint, secret


def event_of(session: Session, endpoint: WebhookEndpoint, event_id: str, *, for_update: bool = False) -> OutboxEvent:
    event = session.get(OutboxEvent, event_id, with_for_update=for_update or None, populate_existing=for_update)
    if event is None or event.endpoint_id != endpoint.id:
        raise NotFound()
    return event


def redeliver(session: Session, endpoint: WebhookEndpoint, event_id: str) -> OutboxEvent:
    event = event_of(session, endpoint, event_id, for_update=True)
    if event.state != OutboxState.dead.value:
        raise EventNotDead({"state": event.state})
    outbox.redeliver(session, event)
    audit.record(session, "webhooks.redeliver", target_type="outbox_event", target_id=event.id,
                 detail={"endpoint_id": endpoint.id, "type": event.type})
    session.flush()
    return event


def event_types(endpoint: WebhookEndpoint) -> Sequence[str]:
    return [t for t in endpoint.event_types.split(",") if t]
