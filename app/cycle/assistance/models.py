"""Assistance requests (协查) with the cities residents come from (区域协作), in both directions.

Outgoing: a worker asks the resident's 户籍地 city about one of our residents. Incoming: a partner city asks
about a person who may live here; it is matched by ID number against the register. A row lies where the
resident lies (`area_path`, `district_code`); an incoming request that matched nobody lies at the area of
whoever registered it (the city for an admin), so no worker sees it.

`state` stores draft, sent, matched, verifying, answered, unmatched; `overdue` is derived from `due_on` and
the city date when read (docs/assistance.md). The only health fact kept is `urgent` (currently pregnant).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class Direction(StrEnum):
    outgoing = "outgoing"  # we ask the 户籍地
    incoming = "incoming"  # a partner city asks us


class State(StrEnum):
    """Stored states; `overdue` (in AssistanceState) is derived."""

    draft = "draft"
    sent = "sent"
    matched = "matched"
    verifying = "verifying"
    answered = "answered"
    unmatched = "unmatched"


class Topic(StrEnum):
    residence = "residence"  # 居住核实: does the person live where recorded
    fp_certificate = "fp_certificate"  # 婚育证明核实
    family_planning = "family_planning"  # 计划生育情况核实 (a pregnancy follow-up when urgent)


class Finding(StrEnum):
    """The answer, as a code: the facts asked about are confirmed, or they differ (details go through the
    official channel, never as free text here)."""

    confirmed = "confirmed"
    differs = "differs"


OPEN_STATES = (State.sent.value, State.matched.value, State.verifying.value)
# One live outgoing request per resident and topic (a draft counts): a partial unique index.
LIVE_OUTGOING = "direction = 'outgoing' AND state IN ('draft', 'sent', 'matched', 'verifying')"


class AssistanceRequest(SQLModel, table=True):
    __tablename__ = "assistance_requests"
    __table_args__ = (
        Index("ix_assistance_area_state_due", "area_path", "state", "due_on",
              postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_assistance_district_state_due", "district_code", "state", "due_on"),
        Index("ix_assistance_resident", "resident_id"),
        Index("uq_assistance_live_outgoing", "resident_id", "topic", unique=True,
              sqlite_where=text(LIVE_OUTGOING), postgresql_where=text(LIVE_OUTGOING)),
        UniqueConstraint("direction", "partner_city", "partner_reference", name="uq_assistance_partner_ref"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    direction: str = Field(max_length=8)
    state: str = Field(default=State.draft.value, max_length=10)
    topic: str = Field(max_length=16)
    urgent: bool = False  # currently pregnant: answered within the urgent delay
    partner_city: str = Field(max_length=6)  # the 户籍地 city (6-digit code, e.g. 411600)
    partner_reference: str | None = Field(default=None, max_length=40)  # the partner's file number
    resident_id: str | None = Field(default=None, foreign_key="residents.id", max_length=32)
    community_id: str | None = Field(default=None, foreign_key="divisions.id", max_length=32)
    # Incoming only: what the partner asked about (the key for matching). Outgoing reads the resident.
    subject_id_number: str | None = Field(default=None, max_length=18)
    subject_name: str | None = Field(default=None, max_length=50)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    sent_on: date | None = None  # outgoing: the day it was sent; incoming: the day it was received
    counted_from: date | None = None  # the day the delay counts from (the send cut-off may move it)
    due_on: date | None = None
    answered_on: date | None = None
    finding: str | None = Field(default=None, max_length=10)
    fp_certificate_status: str | None = Field(default=None, max_length=14)
    answer_note: str | None = Field(default=None, max_length=200)  # operational text, never health details
    created_by: str = Field(max_length=32)
    sent_by: str | None = Field(default=None, max_length=32)
    answered_by: str | None = Field(default=None, max_length=32)  # who recorded the answer
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1
