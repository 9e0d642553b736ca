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

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.types import city_today, utcnow
from app.ledger import audit
from app.people.events import TransferAccepted
from app.people.models import (
    DuplicateFlag,
    RequestStatus,
    Resident,
    ResidentStatus,
    TenancySource,
    TransferRequest,
)
from app.people.register import service
from app.people.workflows.errors import (
    DuplicateNotOpen,
    TransferDwellingUnavailable,
    TransferHolderOnly,
    TransferNotPending,
    TransferRequesterOnly,
    TransferStale,
)
from app.people.workflows.schemas import (
    DismissReason,
    DuplicateStatus,
    TransferDirection,
    TransferSide,
)
from app.places.models import Dwelling

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


def decide_transfer(actor: Actor, transfer: TransferRequest, status: RequestStatus, reason: str | None) -> None:
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
    decide_transfer(actor, transfer, RequestStatus.accepted, None)
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
            decide_transfer(actor, other, RequestStatus.cancelled, "resident_already_here")
        else:
            other.from_area_path = resident.area_path
        session.add(other)


def reject_transfer(session: Session, actor: Actor, transfer_id: str, reason: str) -> TransferRequest:
    transfer = get_transfer(session, actor, transfer_id, lock=True)
    if not actor.sees_path(transfer.from_area_path):
        raise TransferHolderOnly()
    decide_transfer(actor, transfer, RequestStatus.rejected, reason)
    return _audited(session, transfer, "transfer.reject")


def cancel_transfer(session: Session, actor: Actor, transfer_id: str, reason: str | None) -> TransferRequest:
    transfer = get_transfer(session, actor, transfer_id, lock=True)
    if not actor.sees_path(transfer.to_area_path):
        raise TransferRequesterOnly()
    decide_transfer(actor, transfer, RequestStatus.cancelled, reason)
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
    close_flag(actor, flag, DuplicateStatus.dismissed)
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


def close_flag(actor: Actor, flag: DuplicateFlag, status: DuplicateStatus) -> None:
    flag.status, flag.decided_by, flag.decided_at = status.value, actor.user_id, utcnow()
