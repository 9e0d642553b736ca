"""Workflows that hang off a resident record.

- Transfers: a worker registered an ID number that another community holds, as a registered person or
  one who left from there (service.create_resident opened the request; the name matched the record).
  The holding side accepts (the record moves to the requester's dwelling; a person who had left is
  registered again there) or rejects with a reason; the requesting side may cancel. Until it is accepted
  the requester sees nothing of the record, its history included. Who is which side comes from the request's
  `from_area_path` (holder) and `to_area_path` (requester) against the caller's scope.
- Duplicate review: pairs flagged by service.flag_likely_duplicates are dismissed or merged by a
  supervisor. A merge keeps lineage: the merged record is archived with `merged_into_id` and its
  history (tenancies, 婚育证明, health record where possible) is re-pointed to the survivor.
- Corrections (PIPL art. 46): a resident asks, through a worker, for fields to be corrected; a worker
  accepts (applied with service.update_resident's semantics) or rejects, with a reason.

Audit: decisions are recorded as explicit events with ids, field names and reason codes, never values;
the row changes themselves are recorded by the audit listener like every ORM write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.errors import Conflict, Forbidden, NotFound, StaleVersion
from app.core.types import city_today, utcnow
from app.ledger import audit
from app.people.events import ResidentMerged, TransferAccepted
from app.people.models import (
    CorrectionRequest,
    DuplicateFlag,
    FpDocument,
    HealthRecord,
    RequestStatus,
    Resident,
    ResidentStatus,
    Tenancy,
    TenancySource,
    TransferRequest,
)
from app.people.register import service
from app.people.register.schemas import ResidentUpdate
from app.people.workflows.schemas import (
    CorrectionCreate,
    CorrectionDecide,
    DismissReason,
    DuplicateStatus,
    MergeIn,
    TransferDirection,
    TransferSide,
)
from app.places.models import Dwelling

HealthOutcome = Literal["none", "moved", "kept_on_merged"]

# --- errors -----------------------------------------------------------------------------------------------


class TransferNotPending(Conflict):
    code = "transfer_not_pending"
    en = "This transfer request has already been decided or cancelled."
    zh = "该转移申请已处理或已撤销。"


class TransferHolderOnly(Forbidden):
    code = "transfer_holder_only"
    en = "Only the community that holds the record can accept or reject this transfer."
    zh = "只有原登记社区可以同意或拒绝该转移申请。"


class TransferRequesterOnly(Forbidden):
    code = "transfer_requester_only"
    en = "Only the requesting community can cancel this transfer."
    zh = "只有申请社区可以撤销该转移申请。"


class TransferStale(Conflict):
    code = "transfer_stale"
    en = (
        "The record is no longer in your area, or can no longer be handed over (it moved, was merged or was "
        "anonymised since the request); reject the request."
    )
    zh = "该档案已不在您的辖区或已无法转移（申请后已迁移、合并或匿名化），请拒绝该申请。"


class TransferDwellingUnavailable(Conflict):
    code = "transfer_dwelling_unavailable"
    en = "The dwelling named in the request is no longer in use; the requester should register again."
    zh = "申请中的房屋已停用，请申请方重新登记。"


class DuplicateNotOpen(Conflict):
    code = "duplicate_not_open"
    en = "This duplicate flag has already been merged or dismissed."
    zh = "该疑似重复记录已处理。"


class MergeSameRecord(Conflict):
    code = "merge_same_record"
    en = "A record cannot be merged into itself."
    zh = "不能将记录与其自身合并。"


class ResidentAlreadyMerged(Conflict):
    code = "resident_already_merged"
    en = "One of the records has already been merged into another."
    zh = "其中一条记录已被合并。"


class ResidentAnonymised(Conflict):
    code = "resident_anonymised"
    en = "An anonymised record cannot be merged or corrected."
    zh = "已匿名化的记录不能合并或更正。"


class MergeKeepNotRegistered(Conflict):
    code = "merge_keep_not_registered"
    en = "Keep the registered record: merge the left or archived one into it, not the other way round."
    zh = "请保留在册记录，将已离开或已归档的记录并入其中。"


class CorrectionNotPending(Conflict):
    code = "correction_not_pending"
    en = "This correction request has already been decided."
    zh = "该更正申请已处理。"


class CorrectionRecordArchived(Conflict):
    code = "resident_archived"
    en = "The record is archived (merged or anonymised); correct the surviving record instead."
    zh = "该记录已归档（已合并或已匿名化），请更正保留的记录。"


class CorrectionNoLongerValid(Conflict):
    code = "correction_invalid"
    en = "The requested values no longer pass the current rules; reject the request and ask again."
    zh = "申请的值已不符合当前规则，请拒绝后重新申请。"


# --- transfers ---------------------------------------------------------------------------------------------


def visible_transfers(actor: Actor) -> Select[Any]:
    return select(TransferRequest).where(
        or_(
            actor.area_filter(col(TransferRequest.from_area_path)), actor.area_filter(col(TransferRequest.to_area_path))
        )
    )


def list_transfers(actor: Actor, *, direction: TransferDirection | None, status: RequestStatus | None) -> Select[Any]:
    if direction is TransferDirection.incoming:
        stmt = select(TransferRequest).where(actor.area_filter(col(TransferRequest.from_area_path)))
    elif direction is TransferDirection.outgoing:
        stmt = select(TransferRequest).where(actor.area_filter(col(TransferRequest.to_area_path)))
    else:
        stmt = visible_transfers(actor)
    if status is not None:
        stmt = stmt.where(col(TransferRequest.status) == status.value)
    return stmt.order_by(col(TransferRequest.created_at).desc(), col(TransferRequest.id))


def get_transfer(session: Session, actor: Actor, transfer_id: str, *, lock: bool = False) -> TransferRequest:
    stmt = visible_transfers(actor).where(col(TransferRequest.id) == transfer_id)
    transfer = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if transfer is None:
        raise NotFound()
    return transfer


def side(actor: Actor, transfer: TransferRequest) -> TransferSide:
    holder, requester = actor.sees_path(transfer.from_area_path), actor.sees_path(transfer.to_area_path)
    if holder and requester:
        return "both"
    return "holder" if holder else "requester"


def _decide_transfer(actor: Actor, transfer: TransferRequest, status: RequestStatus, reason: str | None) -> None:
    if transfer.status != RequestStatus.pending.value:
        raise TransferNotPending()
    transfer.status, transfer.reason = status.value, reason
    transfer.decided_by, transfer.decided_at = actor.user_id, utcnow()


def _audited(session: Session, transfer: TransferRequest, action: str) -> TransferRequest:
    session.add(transfer)
    session.flush()
    audit.record(
        session,
        action,
        target_type="transfer_requests",
        target_id=transfer.id,
        detail={"resident_id": transfer.resident_id},
    )
    return transfer


def accept_transfer(session: Session, actor: Actor, transfer_id: str) -> TransferRequest:
    """The holder hands the record over: a registered person moves to the requested dwelling today; a person
    who had left is registered again there from the arrival date the requester gave."""
    transfer = get_transfer(session, actor, transfer_id, lock=True)
    if not actor.sees_path(transfer.from_area_path):
        raise TransferHolderOnly()
    if transfer.status != RequestStatus.pending.value:
        raise TransferNotPending()
    resident = session.execute(
        select(Resident).where(col(Resident.id) == transfer.resident_id).with_for_update()
    ).scalar_one()
    if (resident.status not in (ResidentStatus.registered.value, ResidentStatus.left.value)
            or resident.merged_into_id is not None or resident.anonymised_at is not None
            or not actor.sees_path(resident.area_path)):
        raise TransferStale()
    dwelling = session.get(Dwelling, transfer.to_dwelling_id) if transfer.to_dwelling_id else None
    if dwelling is None or not dwelling.active:
        raise TransferDwellingUnavailable()
    if resident.status == ResidentStatus.registered.value:
        service.move_to(session, resident, dwelling, city_today(), TenancySource.worker.value)
        service.touch(resident)
        session.add(resident)
    else:
        service.register_again(session, resident, dwelling, transfer.arrival_date or city_today(),
                               TenancySource.worker.value)
    _decide_transfer(actor, transfer, RequestStatus.accepted, None)
    _reroute_pending(session, actor, transfer, resident)
    events.emit(session, TransferAccepted(resident))
    return _audited(session, transfer, "transfer.accept")


def _reroute_pending(session: Session, actor: Actor, accepted: TransferRequest, resident: Resident) -> None:
    """Other pending requests for the person now go to the new holder (or lapse if they asked for it)."""
    others = (
        session.execute(
            select(TransferRequest).where(
                col(TransferRequest.resident_id) == resident.id,
                col(TransferRequest.status) == RequestStatus.pending.value,
                col(TransferRequest.id) != accepted.id,
            )
        )
        .scalars()
        .all()
    )
    for other in others:
        if other.to_community_id == resident.community_id:
            _decide_transfer(actor, other, RequestStatus.cancelled, "resident_already_here")
        else:
            other.from_area_path = resident.area_path
        session.add(other)


def reject_transfer(session: Session, actor: Actor, transfer_id: str, reason: str) -> TransferRequest:
    transfer = get_transfer(session, actor, transfer_id, lock=True)
    if not actor.sees_path(transfer.from_area_path):
        raise TransferHolderOnly()
    _decide_transfer(actor, transfer, RequestStatus.rejected, reason)
    return _audited(session, transfer, "transfer.reject")


def cancel_transfer(session: Session, actor: Actor, transfer_id: str, reason: str | None) -> TransferRequest:
    transfer = get_transfer(session, actor, transfer_id, lock=True)
    if not actor.sees_path(transfer.to_area_path):
        raise TransferRequesterOnly()
    _decide_transfer(actor, transfer, RequestStatus.cancelled, reason)
    return _audited(session, transfer, "transfer.cancel")


# --- duplicate review ------------------------------------------------------------------------------------------


def flag_visible(actor: Actor) -> ColumnElement[bool]:
    """A flag is shown to whoever sees at least one record of its pair (where the records are now)."""
    def seen(column: Any) -> ColumnElement[bool]:
        return exists().where(col(Resident.id) == column,
                              actor.area_filter(col(Resident.area_path), col(Resident.district_code)))

    if actor.city_wide:
        return true()
    return or_(seen(col(DuplicateFlag.resident_a)), seen(col(DuplicateFlag.resident_b)))


def list_duplicates(actor: Actor, status: DuplicateStatus | None) -> Select[Any]:
    stmt = select(DuplicateFlag).where(flag_visible(actor))
    if status is not None:
        stmt = stmt.where(col(DuplicateFlag.status) == status.value)
    return stmt.order_by(col(DuplicateFlag.created_at).desc(), col(DuplicateFlag.id))


def dismiss_duplicate(session: Session, actor: Actor, flag_id: str, reason: DismissReason) -> DuplicateFlag:
    flag = session.execute(
        select(DuplicateFlag)
        .where(col(DuplicateFlag.id) == flag_id, flag_visible(actor))
        .with_for_update(of=DuplicateFlag)
    ).scalar_one_or_none()
    if flag is None:
        raise NotFound()
    if flag.status != DuplicateStatus.open.value:
        raise DuplicateNotOpen()
    _close_flag(actor, flag, DuplicateStatus.dismissed)
    session.add(flag)
    session.flush()
    audit.record(
        session,
        "duplicate.dismiss",
        target_type="duplicate_flags",
        target_id=flag.id,
        detail={"reason": reason.value, "resident_a": flag.resident_a, "resident_b": flag.resident_b},
    )
    return flag


def _close_flag(actor: Actor, flag: DuplicateFlag, status: DuplicateStatus) -> None:
    flag.status, flag.decided_by, flag.decided_at = status.value, actor.user_id, utcnow()


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
            _close_flag(actor, flag, DuplicateStatus.merged)
            result.duplicate_flags_closed += 1
        else:
            a, b = sorted((keep_id, other))
            taken = session.execute(
                select(col(DuplicateFlag.id)).where(
                    col(DuplicateFlag.resident_a) == a, col(DuplicateFlag.resident_b) == b
                )
            ).first()
            if taken:
                _close_flag(actor, flag, DuplicateStatus.merged)
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
        _decide_transfer(actor, transfer, RequestStatus.cancelled, "resident_merged")
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
