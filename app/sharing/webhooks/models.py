"""A partner's webhook endpoint: where its events go, how they are signed, which residents it covers."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    partner_user_id: str = Field(foreign_key="users.id", max_length=32, index=True)
    partner_kind: str = Field(max_length=20)  # the partner's role when the endpoint was made: police, outflow_city
    url: str = Field(max_length=500)
    # The HMAC key, shown once when made or rotated. Every delivery is signed with it, so it is kept sealed (AES-GCM
    # under WEBHOOK_SECRET_KEYS, app/sharing/webhooks/sealing.py), not hashed.
    secret: str = Field(max_length=200)
    # Which residents it covers (until the partner's jurisdiction comes from the partners' scope): a police
    # station's division path prefix, or an outflow city's 户籍地 code prefix.
    area_prefix: str | None = Field(default=None, max_length=120)
    hukou_prefix: str | None = Field(default=None, max_length=6)
    event_types: str = Field(max_length=200)  # comma-separated
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
