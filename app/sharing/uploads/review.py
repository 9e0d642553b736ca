"""The staff side of police uploads: the rows in the caller's area, and a worker's resolution of a pending one
(new or conflicting): accept (link to the registered resident, or register the person under the register's
rules) or dismiss with a reason code. Every resolution is audited; outside the caller's area a row is 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlmodel import Session, col

from app.core import context
from app.core.actor import Actor
from app.core.config import get_settings
from app.core.errors import NotFound, StaleVersion
from app.core.types import city_date, utcnow
from app.ledger import audit
from app.people.events import ResidentRegistered
from app.people.models import Resident, ResidentStatus, TenancySource
from app.people.register import service as register
from app.people.register.schemas import ResidentCreate
from app.sharing.uploads.errors import DwellingRequired, HukouRequired, ResidentMismatch, RowNotPending
from app.sharing.uploads.handoff import settle_arrival
from app.sharing.uploads.models import Outcome, PoliceBatch, PoliceReportRow, RowState
from app.sharing.uploads.schemas import PoliceRowAccept, PoliceRowDismiss, PoliceRowOut


def scoped(actor: Actor) -> Select[Any]:
    return select(PoliceReportRow).where(
        actor.area_filter(col(PoliceReportRow.area_path), col(PoliceReportRow.district_code)))


def listing(actor: Actor, state: RowState | None, outcome: Outcome | None) -> Select[Any]:
    stmt = scoped(actor)
    if state is not None:
        stmt = stmt.where(col(PoliceReportRow.state) == state.value)
    if outcome is not None:
        stmt = stmt.where(col(PoliceReportRow.outcome) == outcome.value)
    return stmt.order_by(col(PoliceReportRow.created_at).desc(), col(PoliceReportRow.batch_id),
                         col(PoliceReportRow.row_number))


def get_row(session: Session, actor: Actor, row_id: str, *, for_update: bool = False) -> PoliceReportRow:
    stmt = scoped(actor).where(col(PoliceReportRow.id) == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound()
    return row


def rows_out(session: Session, actor: Actor, rows: list[PoliceReportRow]) -> list[PoliceRowOut]:
    """The rows as staff see them; a resident id outside the caller's area is withheld. Reading them is a
    sensitive read (ID numbers): audited per area."""
    days = get_settings().new_arrival_visit_days
    visible = register.ids_in_scope(session, actor, {r.resident_id for r in rows if r.resident_id})
    refs = dict(session.execute(select(col(PoliceBatch.id), col(PoliceBatch.reference)).where(
        col(PoliceBatch.id).in_(sorted({r.batch_id for r in rows})))).all()) if rows else {}
    return [PoliceRowOut(
        id=r.id, batch_id=r.batch_id, batch_reference=refs.get(r.batch_id, ""), station_id=r.station_id,
        row_number=r.row_number, kind=r.kind, outcome=r.outcome, state=r.state,
        conflict_fields=r.conflict_fields.split(",") if r.conflict_fields else [], id_number=r.id_number,
        name=r.name, sex=r.sex, community_id=r.community_id, address=r.address, event_date=r.event_date,
        permit_no=r.permit_no, hukou_code=r.hukou_code, dwelling_id=r.dwelling_id,
        resident_id=r.resident_id if r.resident_id in visible else None, verification_id=r.verification_id,
        task_id=r.task_id,
        visit_due=city_date(r.created_at) + timedelta(days=days) if r.outcome == Outcome.new.value else None,
        reason=r.reason,
        resolved_by=r.resolved_by, resolved_at=r.resolved_at, created_at=r.created_at, version=r.version)
        for r in rows]


def audit_read(session: Session, rows: list[PoliceReportRow]) -> None:
    for area in sorted({r.area_path for r in rows}):
        ids = [r.id for r in rows if r.area_path == area]
        audit.record(session, "sharing.police_reports.read", target_type="police_report_rows",
                     fields=["id_number", "name"], area_path=area, detail={"rows": len(ids), "ids": ids[:20]},
                     purpose="case_work")


def _pending(session: Session, actor: Actor, row_id: str, version: int) -> PoliceReportRow:
    row = get_row(session, actor, row_id, for_update=True)
    if row.state != RowState.pending.value:
        raise RowNotPending()
    if row.version != version:
        raise StaleVersion({"version": row.version})
    return row


def _resolved(session: Session, row: PoliceReportRow, by: str | None, state: RowState, detail: dict[str, Any]) -> None:
    row.state, row.resolved_by, row.resolved_at = state.value, by, utcnow()
    row.updated_at, row.version = utcnow(), row.version + 1
    session.add(row)
    session.flush()
    if row.outcome == Outcome.new.value:
        settle_arrival(session, row)
    audit.record(session, f"sharing.police_report.{state.value}", target_type="police_report_rows", target_id=row.id,
                 area_path=row.area_path, district_code=row.district_code,
                 detail={"outcome": row.outcome, **detail})


def dismiss(session: Session, actor: Actor, row_id: str, body: PoliceRowDismiss) -> PoliceReportRow:
    row = _pending(session, actor, row_id, body.version)
    row.reason = body.reason.value
    _resolved(session, row, actor.user_id, RowState.dismissed, {"reason": body.reason.value})
    return row


def accept(session: Session, actor: Actor, row_id: str, body: PoliceRowAccept) -> PoliceReportRow:
    """Link to the resident registered with the row's ID number (the one given, or the row's own if the caller
    sees it), else register the person from the row (POST /residents' rules, a new-arrival visit task)."""
    row = _pending(session, actor, row_id, body.version)
    resident_id = body.resident_id or (
        row.resident_id if row.resident_id and register.ids_in_scope(session, actor, {row.resident_id}) else None)
    if resident_id is not None:
        resident = register.get_resident(session, actor, resident_id)
        if resident.id_number != row.id_number or resident.status != ResidentStatus.registered.value:
            raise ResidentMismatch()
        how = "linked"
    else:
        resident = _register(session, actor, row, body)
        if row.state != RowState.pending.value:  # a `new` row: the registration's event settled it (same object)
            return row
        how = "registered"
    row.resident_id = resident.id
    _resolved(session, row, actor.user_id, RowState.accepted, {"how": how, "resident_id": resident.id})
    return row


def _register(session: Session, actor: Actor, row: PoliceReportRow, body: PoliceRowAccept) -> Resident:
    dwelling_id = body.dwelling_id or row.dwelling_id
    if dwelling_id is None:
        raise DwellingRequired()
    hukou = body.hukou_code or row.hukou_code
    if hukou is None:
        raise HukouRequired()
    try:
        create = ResidentCreate(name=row.name, id_number=row.id_number, dwelling_id=dwelling_id, hukou_code=hukou,
                                arrival_date=row.event_date, residence_permit_no=row.permit_no,
                                source=TenancySource.police)
    except ValidationError:  # the station's 户籍地 code names no province
        raise HukouRequired() from None
    return register.create_resident(session, actor, create)


def on_resident_registered(session: Session, event: ResidentRegistered) -> None:
    """A person registered in a community (a worker at the door, on the phone or POST /residents) whom a station
    reported there as new: their pending rows there are accepted and their visit tasks done, linked to the record.
    Rows of other communities stay pending for review (the register now has the person elsewhere)."""
    resident = event.resident
    if not resident.id_number:
        return
    rows = session.execute(select(PoliceReportRow).where(
        col(PoliceReportRow.id_number) == resident.id_number, col(PoliceReportRow.outcome) == Outcome.new.value,
        col(PoliceReportRow.state) == RowState.pending.value,
        col(PoliceReportRow.community_id) == resident.community_id).with_for_update()).scalars().all()
    for row in rows:
        row.resident_id = resident.id
        _resolved(session, row, context.current().actor_id, RowState.accepted,
                  {"how": "registered", "resident_id": resident.id})
