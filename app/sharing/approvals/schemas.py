"""Disclosure requests as the supervisor's queue shows them, as the partner sees them, and the answer collected."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.pagination import Page
from app.core.schemas import InputModel, OutputModel
from app.sharing.approvals.models import RequestRoute, RequestState
from app.sharing.landlords.tenants.schemas import Tenant
from app.sharing.outflow.schemas import ChangesOut, RosterOut
from app.sharing.police.schemas import FeedOut, LookupOut


class HeldOut(OutputModel):
    """A partner's request held for a supervisor's approval (202), or its state later: nothing disclosed."""

    request_id: str
    state: RequestState
    route: RequestRoute
    created_at: datetime
    expires_at: datetime = Field(description="Collect before this, or ask again (DISCLOSURE_APPROVAL_TTL_HOURS)")
    decided_at: datetime | None = None
    collected_at: datetime | None = None


class CollectedOut(OutputModel):
    """The answer of an approved request, exactly as the route it was asked on answers (partner shapes only)."""

    request_id: str
    route: RequestRoute
    answer: LookupOut | FeedOut | RosterOut | ChangesOut | Page[Tenant]


class DecisionIn(InputModel):
    version: int = Field(ge=1, le=1_000_000)


class DenyIn(DecisionIn):
    reason: str = Field(min_length=1, max_length=200, description="Why (staff only: the partner sees the state)")


class DisclosureRequestOut(OutputModel):
    """A request as staff see it: who asked what, where, and its decision."""

    id: str
    partner_id: str
    partner_kind: str
    partner_name: str | None = None
    route: RequestRoute
    asked: dict[str, str | int | None] = Field(
        description="What was asked (a look-up's ID number, a feed's cursor and limit, a page); empty once "
                    "collected, denied or expired")
    area_path: str
    state: RequestState = Field(description="expired once past expires_at while pending or approved")
    profile_version: int
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    collected_at: datetime | None
    expires_at: datetime
    created_at: datetime
    version: int
