"""API shapes of the webhook administration (admins only). A secret is shown once: when made or rotated."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import InputModel, OutputModel

EventType = Literal["resident.arrived", "resident.moved", "resident.left", "resident.moved_out",
                    "verification.recorded", "fp_document.changed", "assistance.request_sent", "assistance.answered"]
EventState = Literal["pending", "delivered", "dead"]
URL = r"^https?://[^\s/?#@]+[^\s]*$"  # the rest (no credentials, https unless loopback) is checked by the service


class WebhookCreate(InputModel):
    partner_user_id: str = Field(min_length=1, max_length=32, description="The partner's account (police or "
                                                                          "outflow city)")
    url: str = Field(min_length=8, max_length=500, pattern=URL,
                     description="https (http only to localhost, outside production)")
    event_types: list[EventType] = Field(min_length=1, max_length=8, description=(
        "Police: resident.arrived, resident.moved, resident.moved_out, resident.left; outflow city: the resident "
        "events but moved_out, verification.recorded, fp_document.changed, assistance.request_sent, "
        "assistance.answered"))
    division_id: str | None = Field(default=None, min_length=1, max_length=32, description=(
        "Police: narrows the station's jurisdiction to the residents under this division (none: all of it)"))
    hukou_prefix: str | None = Field(default=None, pattern=r"^[0-9]{2,6}$", description=(
        "Outflow city: narrows the city's 户籍地 prefix to this one (none: all of it)"))
    active: bool = True


class WebhookUpdate(InputModel):
    url: str | None = Field(default=None, min_length=8, max_length=500, pattern=URL)
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=8)
    active: bool | None = None
    version: int = Field(ge=1, le=2**31 - 1, description="The version you read (optimistic locking)")


class SecretRotate(InputModel):
    version: int = Field(ge=1, le=2**31 - 1, description="The version you read (optimistic locking)")


class WebhookOut(OutputModel):
    id: str
    partner_user_id: str
    partner_kind: str
    url: str
    area_prefix: str | None
    hukou_prefix: str | None
    event_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="The signing secret: shown only now; store it at the receiver")


class OutboxEventOut(OutputModel):
    id: str
    type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryOut(OutputModel):
    id: int
    event_id: str
    attempt: int
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    outcome: str
