"""Merging a duplicate record into the one kept: lineage kept, history re-pointed, flags and requests settled.

A merge keeps lineage: the merged record is archived with `merged_into_id` and its history (tenancies, 婚育证明,
health record where possible) is re-pointed to the survivor. Supervisors only, both records in scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.errors import NotFound, StaleVersion
from app.core.types import city_today
from app.ledger import audit
from app.people.events import ResidentMerged
from app.people.models import (
    CorrectionRequest,
    DuplicateFlag,
    FpDocument,
    HealthRecord,
    RequestStatus,
    Resident,
    ResidentStatus,
    Tenancy,
    TransferRequest,
)
from app.people.register import service
from app.people.workflows.errors import (
    MergeKeepNotRegistered,
    MergeSameRecord,
    ResidentAlreadyMerged,
    ResidentAnonymised,
)
from app.people.workflows.schemas import (
    DuplicateStatus,
    MergeIn,
)
from app.people.workflows.service import close_flag, decide_transfer

HealthOutcome = Literal["none", "moved", "kept_on_merged"]

@dataclass
class MergeResult:
    survivor: Resident
    merged: Resident
    tenancies_moved: int = 0
    fp_documents_moved: int = 0
    health_record: HealthOutcome = "none"
    duplicate_flags_closed: int = 0
    duplicate_flags_repointed: int = 0
    transfers_cancelled: int = 0
    corrections_moved: int = 0


def merge(session: Session, actor: Actor, keep_id: str, body: MergeIn) -> MergeResult:
    """Fold `body.merged_id` into `keep_id`; the merged record stays, archived, as lineage."""
    if body.merged_id == keep_id:
        service.get_resident(session, actor, keep_id)  # out of scope stays a 404
        raise MergeSameRecord()
    rows = (
        session.execute(
            service.scoped(actor)
            .where(col(Resident.id).in_((keep_id, body.merged_id)))
            .order_by(col(Resident.id))
            .with_for_update()
        )
        .scalars()
        .all()
    )
    by_id = {r.id: r for r in rows}
    if keep_id not in by_id or body.merged_id not in by_id:
        raise NotFound()
    keep, merged = by_id[keep_id], by_id[body.merged_id]
    for record in (keep, merged):
        if record.merged_into_id is not None:
            raise ResidentAlreadyMerged({"resident_id": record.id})
        if record.anonymised_at is not None:
            raise ResidentAnonymised({"resident_id": record.id})
    for record, version in ((keep, body.version_keep), (merged, body.version_merged)):
        if record.version != version:
            raise StaleVersion({"resident_id": record.id, "current_version": record.version})
    if keep.status != ResidentStatus.registered.value and merged.status == ResidentStatus.registered.value:
        raise MergeKeepNotRegistered()

    result = MergeResult(survivor=keep, merged=merged)
    _carry_id_number(session, keep, merged)
    _move_history(session, result)
    _settle_flags(session, actor, result)
    _settle_requests(session, actor, result)

    merged.status, merged.merged_into_id = ResidentStatus.archived.value, keep.id
    for record in (keep, merged):
        service.touch(record)
        session.add(record)
    session.flush()
    service.refresh_key_person(session, keep)
    service.refresh_key_person(session, merged)
    events.emit(session, ResidentMerged(merged))
    audit.record(
        session,
        "resident.merge",
        target_type="residents",
        target_id=keep.id,
        detail={
            "kept_id": keep.id,
            "merged_id": merged.id,
            "reason": body.reason.value,
            "health_record": result.health_record,
            "tenancies": result.tenancies_moved,
            "fp_documents": result.fp_documents_moved,
        },
    )
    return result


def _carry_id_number(session: Session, keep: Resident, merged: Resident) -> None:
    """The survivor keeps its own ID number. Should it have none, it takes the merged record's, so the
    number stays held by exactly one live record (a later registration with it finds the person)."""
    if keep.id_number is not None or merged.id_number is None:
        return
    number, verified, accepted_by = merged.id_number, merged.id_verified, merged.id_accepted_by
    merged.id_number = None
    session.add(merged)
    session.flush()  # release the unique number before the survivor takes it
    keep.id_number, keep.id_verified, keep.id_accepted_by = number, verified, accepted_by


def _move_history(session: Session, result: MergeResult) -> None:
    keep, merged = result.survivor, result.merged
    today = city_today()
    for tenancy in session.execute(select(Tenancy).where(col(Tenancy.resident_id) == merged.id)).scalars().all():
        if tenancy.move_out is None:  # the survivor's current dwelling is the one that stands
            tenancy.move_out = max(today, tenancy.move_in)
        tenancy.resident_id = keep.id
        session.add(tenancy)
        result.tenancies_moved += 1
    for doc in session.execute(select(FpDocument).where(col(FpDocument.resident_id) == merged.id)).scalars().all():
        doc.resident_id, doc.district_code = keep.id, keep.district_code
        session.add(doc)
        result.fp_documents_moved += 1
    health = session.get(HealthRecord, merged.id)
    if health is None:
        return
    if session.get(HealthRecord, keep.id) is None:
        health.resident_id, health.district_code = keep.id, keep.district_code
        session.add(health)
        result.health_record = "moved"
    else:
        # Two health records cannot be merged field by field without a person deciding; the merged one
        # stays on the archived record (reachable through merged_into_id) and the caller is told.
        result.health_record = "kept_on_merged"


def _settle_flags(session: Session, actor: Actor, result: MergeResult) -> None:
    """Open flags for the pair are resolved by this merge; flags of the merged record with a third
    record now concern the survivor."""
    keep_id, merged_id = result.survivor.id, result.merged.id
    flags = (
        session.execute(
            select(DuplicateFlag).where(
                col(DuplicateFlag.status) == DuplicateStatus.open.value,
                or_(
                    col(DuplicateFlag.resident_a).in_((keep_id, merged_id)),
                    col(DuplicateFlag.resident_b).in_((keep_id, merged_id)),
                ),
            )
        )
        .scalars()
        .all()
    )
    for flag in flags:
        pair = {flag.resident_a, flag.resident_b}
        if merged_id not in pair:
            continue
        other = next(iter(pair - {merged_id}), keep_id)
        if other == keep_id:
            close_flag(actor, flag, DuplicateStatus.merged)
            result.duplicate_flags_closed += 1
        else:
            a, b = sorted((keep_id, other))
            taken = session.execute(
                select(col(DuplicateFlag.id)).where(
                    col(DuplicateFlag.resident_a) == a, col(DuplicateFlag.resident_b) == b
                )
            ).first()
            if taken:
                close_flag(actor, flag, DuplicateStatus.merged)
                result.duplicate_flags_closed += 1
            else:
                flag.resident_a, flag.resident_b = a, b
                result.duplicate_flags_repointed += 1
        session.add(flag)


def _settle_requests(session: Session, actor: Actor, result: MergeResult) -> None:
    """Pending transfers of the merged record lapse (registering again finds the survivor); pending
    corrections follow the person to the survivor."""
    keep, merged = result.survivor, result.merged
    for transfer in (
        session.execute(
            select(TransferRequest).where(
                col(TransferRequest.resident_id) == merged.id,
                col(TransferRequest.status) == RequestStatus.pending.value,
            )
        )
        .scalars()
        .all()
    ):
        decide_transfer(actor, transfer, RequestStatus.cancelled, "resident_merged")
        session.add(transfer)
        result.transfers_cancelled += 1
    for correction in (
        session.execute(
            select(CorrectionRequest).where(
                col(CorrectionRequest.resident_id) == merged.id,
                col(CorrectionRequest.status) == RequestStatus.pending.value,
            )
        )
        .scalars()
        .all()
    ):
        correction.resident_id, correction.area_path = keep.id, keep.area_path
        correction.district_code = keep.district_code
        session.add(correction)
        result.corrections_moved += 1
