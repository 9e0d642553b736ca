"""The auditor's reading of the audit log: filters over the chain, newest first.

The chain itself (recording, verifying, purging) is the ledger's (`app.ledger.audit`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import col

from app.core.queries import starts_with
from app.ledger.models import AuditEvent


@dataclass(frozen=True)
class EventFilter:
    """Auditor's filters; every one optional. `action` ending in '*' is a prefix; `until` is exclusive."""

    actor_id: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_id: int | None = None
    district_code: str | None = None

    def used(self) -> list[str]:
        """Names of the filters given (what an `audit.read` record notes: names, not values)."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]


def events_query(flt: EventFilter) -> Select[Any]:
    """Events matching the filter, newest (highest chain position) first."""
    stmt = select(AuditEvent).order_by(col(AuditEvent.id).desc())
    for name in ("actor_id", "target_type", "target_id", "outcome", "request_id", "district_code"):
        value = getattr(flt, name)
        if value is not None:
            stmt = stmt.where(getattr(AuditEvent, name) == value)
    if flt.action is not None:
        if flt.action.endswith("*"):
            prefix = flt.action[:-1]
            if prefix:
                stmt = stmt.where(starts_with(col(AuditEvent.action), prefix))
        else:
            stmt = stmt.where(col(AuditEvent.action) == flt.action)
    if flt.since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(col(AuditEvent.at) < flt.until)
    if flt.max_id is not None:
        stmt = stmt.where(col(AuditEvent.id) <= flt.max_id)
    return stmt


