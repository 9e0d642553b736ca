"""Corrections (PIPL art. 46): a resident asks, through a worker, for fields to be corrected; a worker accepts
(applied with register.service.update_resident's semantics) or rejects, with a reason.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.types import utcnow
from app.ledger import audit
from app.people.models import (
    CorrectionRequest,
    RequestStatus,
    Resident,
    ResidentStatus,
)
from app.people.register import service
from app.people.register.schemas import ResidentUpdate
from app.people.workflows.errors import (
    CorrectionNoLongerValid,
    CorrectionNotPending,
    CorrectionRecordArchived,
    ResidentAnonymised,
)
from app.people.workflows.schemas import (
    CorrectionCreate,
    CorrectionDecide,
)

# --- corrections ------------------------------------------------------------------------------------------


def _correctable(resident: Resident) -> None:
    if resident.anonymised_at is not None:
        raise ResidentAnonymised({"resident_id": resident.id})
    if resident.merged_into_id is not None or resident.status == ResidentStatus.archived.value:
        raise CorrectionRecordArchived({"resident_id": resident.merged_into_id} if resident.merged_into_id else None)


def create_correction(session: Session, actor: Actor, resident_id: str, body: CorrectionCreate) -> CorrectionRequest:
    resident = service.get_resident(session, actor, resident_id)
    _correctable(resident)
    changes = body.changes.model_dump(mode="json", exclude_unset=True)
    correction = CorrectionRequest(
        resident_id=resident.id,
        area_path=resident.area_path,
        district_code=resident.district_code,
        changes=json.dumps(changes, ensure_ascii=False, sort_keys=True),
        note=body.note,
        requested_by=actor.user_id,
    )
    session.add(correction)
    session.flush()
    audit.record(
        session,
        "correction.create",
        target_type="correction_requests",
        target_id=correction.id,
        fields=changes.keys(),
        detail={"resident_id": resident.id},
    )
    return correction


def corrections_of(session: Session, actor: Actor, resident_id: str) -> Select[Any]:
    resident = service.get_resident(session, actor, resident_id)
    return (
        select(CorrectionRequest)
        .where(col(CorrectionRequest.resident_id) == resident.id)
        .order_by(col(CorrectionRequest.created_at).desc(), col(CorrectionRequest.id))
    )


def visible_corrections(actor: Actor) -> Select[Any]:
    """Scope follows the resident's current area, so a request moves with the person."""
    return (
        select(CorrectionRequest)
        .join(Resident, col(Resident.id) == col(CorrectionRequest.resident_id))
        .where(actor.area_filter(col(Resident.area_path)))
    )


def list_corrections(actor: Actor, status: RequestStatus | None) -> Select[Any]:
    stmt = visible_corrections(actor)
    if status is not None:
        stmt = stmt.where(col(CorrectionRequest.status) == status.value)
    return stmt.order_by(col(CorrectionRequest.created_at).desc(), col(CorrectionRequest.id))


def decide_correction(session: Session, actor: Actor, correction_id: str, body: CorrectionDecide) -> CorrectionRequest:
    correction = session.execute(
        visible_corrections(actor)
        .where(col(CorrectionRequest.id) == correction_id)
        .with_for_update(of=CorrectionRequest)
    ).scalar_one_or_none()
    if correction is None:
        raise NotFound()
    if correction.status != RequestStatus.pending.value:
        raise CorrectionNotPending()
    changes = requested_changes(correction)
    if body.accept:
        resident = session.execute(
            select(Resident).where(col(Resident.id) == correction.resident_id).with_for_update()
        ).scalar_one()
        _correctable(resident)
        try:
            update = ResidentUpdate.model_validate({**changes, "version": resident.version})
        except ValidationError:
            raise CorrectionNoLongerValid() from None
        service.update_resident(session, resident, update)
        if {"name", "phone"} & changes.keys():
            service.flag_likely_duplicates(session, resident)
    correction.status = (RequestStatus.accepted if body.accept else RequestStatus.rejected).value
    correction.decision_reason, correction.decided_by, correction.decided_at = body.reason, actor.user_id, utcnow()
    session.add(correction)
    session.flush()
    audit.record(
        session,
        "correction.accept" if body.accept else "correction.reject",
        target_type="correction_requests",
        target_id=correction.id,
        fields=changes.keys(),
        detail={"resident_id": correction.resident_id},
    )
    return correction


def requested_changes(correction: CorrectionRequest) -> dict[str, Any]:
    value = json.loads(correction.changes)
    return value if isinstance(value, dict) else {}
