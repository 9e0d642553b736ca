"""The resident's right of access (PIPL art. 45): everything held about one person, in one answer.

The dossier gathers the record, the residence history with addresses, 婚育证明, the reproductive-health
record, correction and transfer requests, duplicate flags (the other record's id only when the reader may
see it), the disclosure ledger (what went to which
partner, when, under which legal basis) and the audit events about the person's data: actions, times,
roles and purposes, never values and never staff ids. Reading it is itself audited (`resident.dossier`,
purpose `resident_request`). Retention (storage limitation) is app/people/retention.py.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.types import utcnow
from app.ledger import audit
from app.ledger.models import AuditEvent
from app.people.models import CorrectionRequest, Disclosure, DuplicateFlag, HealthRecord, Resident, TransferRequest
from app.people.records.schemas import (
    AuditEventBrief,
    DisclosureOut,
    Dossier,
    DossierCorrection,
    DossierTransfer,
    DuplicateFlagOut,
    FpDocumentOut,
)
from app.people.records.service import fp_documents, health_out, tenancies_stmt, tenancy_outs
from app.people.register.schemas import ResidentOut
from app.people.register.service import ids_in_scope

AUDIT_LIMIT = 2000

DOSSIER_GROUPS = ("identity", "residence", "fp_document", "health", "corrections", "transfers", "duplicates",
                  "disclosures", "audit_events")


def dossier(session: Session, actor: Actor, resident: Resident) -> Dossier:
    """Everything held about one resident (their right of access); the read itself is audited. Ids of other
    records outside the reader's area (the other record of a duplicate flag, a requesting community's
    dwelling) are withheld, as everywhere else."""
    rid = resident.id
    tenancies = list(session.execute(tenancies_stmt(resident)).scalars())
    docs = fp_documents(session, resident)
    health = session.get(HealthRecord, rid)
    corrections = list(session.execute(
        select(CorrectionRequest).where(col(CorrectionRequest.resident_id) == rid)
        .order_by(col(CorrectionRequest.created_at).desc())
    ).scalars())
    transfers = list(session.execute(
        select(TransferRequest).where(col(TransferRequest.resident_id) == rid)
        .order_by(col(TransferRequest.created_at).desc())
    ).scalars())
    flags = list(session.execute(
        select(DuplicateFlag).where(or_(col(DuplicateFlag.resident_a) == rid, col(DuplicateFlag.resident_b) == rid))
        .order_by(col(DuplicateFlag.created_at).desc())
    ).scalars())
    others = [(f, f.resident_b if f.resident_a == rid else f.resident_a) for f in flags]
    seen = ids_in_scope(session, actor, {other for _, other in others})
    disclosures = list(session.execute(
        select(Disclosure).where(col(Disclosure.resident_id) == rid)
        .order_by(col(Disclosure.disclosed_at).desc())
    ).scalars())
    targets = {
        "residents": [rid], "health_records": [rid], "fp_documents": [d.id for d in docs],
        "tenancies": [t.id for t in tenancies], "correction_requests": [c.id for c in corrections],
        "transfer_requests": [t.id for t in transfers], "duplicate_flags": [f.id for f in flags],
        "disclosures": [d.id for d in disclosures],
    }
    about = or_(*(and_(col(AuditEvent.target_type) == kind, col(AuditEvent.target_id).in_(ids))
                  for kind, ids in targets.items() if ids))
    events_total = session.execute(select(func.count()).select_from(AuditEvent).where(about)).scalar_one()
    events = session.execute(
        select(AuditEvent).where(about).order_by(col(AuditEvent.id).desc()).limit(AUDIT_LIMIT)
    ).scalars().all()
    audit.record(session, "resident.dossier", target_type="residents", target_id=rid,
                 fields=DOSSIER_GROUPS, purpose="resident_request", area_path=resident.area_path)
    return Dossier(
        generated_at=utcnow(),
        resident=ResidentOut.model_validate(resident),
        tenancies=tenancy_outs(session, tenancies),
        fp_documents=[FpDocumentOut.model_validate(d) for d in docs],
        health=health_out(resident, health) if health is not None else None,
        corrections=[DossierCorrection.model_validate({**c.model_dump(), "changes": _json_object(c.changes)})
                     for c in corrections],
        transfer_requests=[DossierTransfer.model_validate(
            {**t.model_dump(), "to_dwelling_id": t.to_dwelling_id if actor.sees_path(t.to_area_path) else None})
            for t in transfers],
        duplicate_flags=[DuplicateFlagOut.model_validate(
            {**f.model_dump(), "other_resident_id": other if other in seen else None})
            for f, other in others],
        disclosures=[DisclosureOut.model_validate(
            {**d.model_dump(), "field_groups": [g for g in d.field_groups.split(",") if g]}) for d in disclosures],
        audit_events=[AuditEventBrief.model_validate(
            {**e.model_dump(), "fields": [f for f in (e.fields or "").split(",") if f]}) for e in events],
        audit_events_total=events_total,
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
