"""Webhook administration (admins only): endpoints, their events, the delivery log, redelivery of dead events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select
from sqlmodel import col

from app.auth.deps import AdminActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep, paginate
from app.ledger.outbox.models import OutboxDelivery, OutboxEvent
from app.sharing.webhooks import service
from app.sharing.webhooks.models import WebhookEndpoint
from app.sharing.webhooks.schemas import (
    DeliveryOut,
    EventState,
    OutboxEventOut,
    SecretRotate,
    WebhookCreate,
    WebhookOut,
    WebhookSecretOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(max_length=32, description="Webhook endpoint id")]
EventId = Annotated[str, Path(max_length=32, description="Outbox event id (the X-Webhook-Id receivers see)")]


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut.model_validate({**endpoint.model_dump(), "event_types": service.event_types(endpoint)})


def _with_secret(made: tuple[WebhookEndpoint, str]) -> WebhookSecretOut:
    endpoint, secret = made
    return WebhookSecretOut.model_validate({**_out(endpoint).model_dump(), "secret": secret})


@router.post("", response_model=WebhookSecretOut, status_code=201, summary="Make a partner's webhook endpoint")
def create_webhook(body: WebhookCreate, session: SessionDep, actor: AdminActor) -> WebhookSecretOut:
    return _with_secret(service.create(session, body))


@router.get("", response_model=Page[WebhookOut], summary="List webhook endpoints")
def list_webhooks(session: SessionDep, actor: AdminActor, page: PageDep) -> Page[WebhookOut]:
    stmt = select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    items, total = paginate(session, stmt, page)
    return Page(items=[_out(e) for e in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One webhook endpoint (never its secret)")
def get_webhook(webhook_id: WebhookId, session: SessionDep, actor: AdminActor) -> WebhookOut:
    return _out(service.get(session, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, summary="Change URL, event types or active")
def update_webhook(webhook_id: WebhookId, body: WebhookUpdate, session: SessionDep, actor: AdminActor) -> WebhookOut:
    return _out(service.update(session, service.get(session, webhook_id, for_update=True), body))


@router.post("/{webhook_id}/secret", response_model=WebhookSecretOut, summary="Rotate the signing secret")
def rotate_secret(webhook_id: WebhookId, body: SecretRotate, session: SessionDep,
                  actor: AdminActor) -> WebhookSecretOut:
    endpoint = service.get(session, webhook_id, for_update=True)
    return _with_secret(service.rotate_secret(session, endpoint, body.version))


@router.get("/{webhook_id}/events", response_model=Page[OutboxEventOut], summary="The endpoint's events")
def list_events(webhook_id: WebhookId, session: SessionDep, actor: AdminActor, page: PageDep,
                state: EventState | None = None) -> Page[OutboxEventOut]:
    endpoint = service.get(session, webhook_id)
    stmt = select(OutboxEvent).where(col(OutboxEvent.endpoint_id) == endpoint.id)
    if state is not None:
        stmt = stmt.where(col(OutboxEvent.state) == state)
    items, total = paginate(session, stmt.order_by(col(OutboxEvent.created_at), col(OutboxEvent.id)), page)
    return Page(items=[OutboxEventOut.model_validate(e) for e in items], total=total, limit=page.limit,
                offset=page.offset)


@router.get("/{webhook_id}/events/{event_id}/deliveries", response_model=Page[DeliveryOut],
            summary="The delivery log of one event: every attempt, its status code, duration and error code")
def list_deliveries(webhook_id: WebhookId, event_id: EventId, session: SessionDep, actor: AdminActor,
                    page: PageDep) -> Page[DeliveryOut]:
    event = service.event_of(session, service.get(session, webhook_id), event_id)
    stmt = select(OutboxDelivery).where(col(OutboxDelivery.event_id) == event.id).order_by(col(OutboxDelivery.id))
    items, total = paginate(session, stmt, page)
    return Page(items=[DeliveryOut.model_validate(d) for d in items], total=total, limit=page.limit,
                offset=page.offset)


@router.post("/{webhook_id}/events/{event_id}/redeliver", response_model=OutboxEventOut,
             summary="Try a dead event again from the start (same id: receivers deduplicate)")
def redeliver(webhook_id: WebhookId, event_id: EventId, session: SessionDep, actor: AdminActor) -> OutboxEventOut:
    return OutboxEventOut.model_validate(service.redeliver(session, service.get(session, webhook_id), event_id))
