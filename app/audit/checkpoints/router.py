"""Signed checkpoints of the audit chain, for auditors: make one now, list them, download one.

Signing is the ledger's (app/ledger/checkpoints.py); `migrant audit-checkpoint` makes them from cron too.
Every call is recorded in the chain.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select
from sqlmodel import col

from app.audit.checkpoints.schemas import CheckpointOut
from app.auth.deps import AuditorActor
from app.core.deps import SessionDep
from app.core.errors import NotFound
from app.core.pagination import Page, PageDep, paginate
from app.ledger import audit, checkpoints
from app.ledger.models import AuditCheckpoint

router = APIRouter(prefix="/audit/checkpoints", tags=["audit"])


@router.post("", response_model=CheckpointOut, status_code=201, summary="Sign the chain's head now (auditors)")
def create_checkpoint(session: SessionDep, actor: AuditorActor) -> CheckpointOut:
    cp = checkpoints.create(session, signed_by=actor.user_id)
    return CheckpointOut.model_validate(checkpoints.document(cp))


@router.get("", response_model=Page[CheckpointOut], summary="Signed checkpoints, newest first (auditors)")
def list_checkpoints(session: SessionDep, actor: AuditorActor, page: PageDep) -> Page[CheckpointOut]:
    stmt = select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc())
    rows, total = paginate(session, stmt, page)
    audit.record(session, "audit.checkpoints.read", target_type="audit_checkpoints",
                 detail={"returned": len(rows), "total": total})
    return Page(items=[CheckpointOut.model_validate(checkpoints.document(r)) for r in rows], total=total,
                limit=page.limit, offset=page.offset)


@router.get("/{checkpoint_id}", response_model=CheckpointOut,
            summary="One checkpoint: the file to keep outside the system (auditors)")
def get_checkpoint(checkpoint_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep,
                   actor: AuditorActor) -> CheckpointOut:
    cp = session.get(AuditCheckpoint, checkpoint_id)
    if cp is None:
        raise NotFound()
    audit.record(session, "audit.checkpoint.export", target_type="audit_checkpoints", target_id=str(cp.id))
    return CheckpointOut.model_validate(checkpoints.document(cp))
