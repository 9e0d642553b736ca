"""API shapes of the audit log (auditors only)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.schemas import OutputModel
from app.ledger.models import AuditEvent


class AuditEventOut(OutputModel):
    """One audit record. `prev_hash` and `hash` are included so an auditor can re-check an exported page
    independently: hash = SHA-256(prev_hash + JSON array of the hashed columns of its chain version), or from chain
    version 3 on HMAC-SHA-256 of the same under the AUDIT_HMAC_KEYS key `hmac_kid`."""

    id: int = Field(description="Position in the chain (no gaps)")
    at: datetime = Field(description="When the event happened (UTC)")
    actor_id: str | None
    actor_role: str | None
    action: str = Field(description="e.g. auth.login, users.update, http.denied, audit.read")
    target_type: str | None
    target_id: str | None
    fields: list[str] | None = Field(description="Names of the fields written or read; never their values")
    outcome: str = Field(description="success, failure, denied or not_found")
    status_code: int | None
    purpose: str | None
    request_id: str | None
    client_ip: str | None
    detail: dict[str, Any] | None = Field(description="Codes, ids and counts (never personal values)")
    chain_version: int = Field(description="Which columns the row's hash covers: 1, 2 with the target's area, 3 "
                                           "keyed (HMAC)")
    area_path: str | None = Field(description="Where the target lies (chain version 2)")
    district_code: str | None
    hmac_kid: str | None = Field(description="Chain version 3: the key id of the row's HMAC")
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: AuditEvent) -> AuditEventOut:
        return cls(
            id=row.id, at=row.at, actor_id=row.actor_id, actor_role=row.actor_role, action=row.action,
            target_type=row.target_type, target_id=row.target_id,
            fields=row.fields.split(",") if row.fields else ([] if row.fields == "" else None),
            outcome=row.outcome, status_code=row.status_code, purpose=row.purpose, request_id=row.request_id,
            client_ip=row.client_ip, detail=_detail(row.detail), chain_version=row.chain_version,
            area_path=row.area_path, district_code=row.district_code, hmac_kid=row.hmac_kid,
            prev_hash=row.prev_hash, hash=row.hash,
        )


def _detail(raw: str | None) -> dict[str, Any] | None:
    # A row altered outside the application may hold anything: show it rather than fail the listing.
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"unparsed": raw}
    return value if isinstance(value, dict) else {"value": value}


class ChainVerifyOut(OutputModel):
    intact: bool
    checked: int = Field(description="Rows whose link and content were checked")
    first_broken_id: int | None = Field(description="Id of the first row that is altered, unlinked or missing")
    reason: str | None
    last_id: int | None = Field(description="Newest row checked; note it elsewhere to detect later truncation")
    last_hash: str | None
