"""Disclosure requests: a partner's pull held for a supervisor's approval while its kind's disclosure profile
requires one (docs/sharing.md, "Approval queue").

A request keeps what was asked only as long as it is needed to answer: the parameters (a look-up's ID number, a
feed's cursor) are blanked once the answer is collected, or the request is denied or expires.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class RequestState(StrEnum):
    pending = "pending"  # waiting for a supervisor
    approved = "approved"  # the partner may collect the answer, once
    denied = "denied"
    collected = "collected"  # the disclosure happened (its ledger entries are written then)
    expired = "expired"  # not decided or not collected within DISCLOSURE_APPROVAL_TTL_HOURS


class RequestRoute(StrEnum):
    """The partner route a request was made on: the one whose service answers it at collection."""

    police_lookup = "police_lookup"
    police_feed = "police_feed"
    outflow_roster = "outflow_roster"
    outflow_feed = "outflow_feed"
    landlord_tenants = "landlord_tenants"


OPEN_STATES = (RequestState.pending.value, RequestState.approved.value)


class DisclosureRequest(SQLModel, table=True):
    __tablename__ = "disclosure_requests"
    __table_args__ = (
        Index("ix_disclosure_requests_area_state", "area_path", "state",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_disclosure_requests_district_state", "district_code", "state"),
        Index("ix_disclosure_requests_partner", "partner_id", "created_at"),
        Index("ix_disclosure_requests_state_expires", "state", "expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    partner_id: str = Field(foreign_key="users.id", max_length=32)  # the client or landlord's user
    partner_kind: str = Field(max_length=20)  # police | outflow_city | landlord
    route: str = Field(max_length=20)
    # What was asked, as JSON (`{"id_number"}`, `{"cursor", "limit"}`, `{"limit", "offset"}`); blanked ("{}") once
    # it is no longer needed (collected, denied, expired).
    params: str = Field(default="{}", max_length=400)
    # Where the supervisor who decides sees it: the looked-up resident's area, the station's jurisdiction, the
    # landlord account's community; the whole city for an outflow city.
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    state: str = Field(default=RequestState.pending.value, max_length=10)
    profile_version: int  # the profile in force when it was asked; collection needs the same one
    reason: str | None = Field(default=None, max_length=200)  # a denial's reason
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    collected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
