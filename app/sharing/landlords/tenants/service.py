"""Tenant reports from landlords, and what a landlord sees of their tenants (docs/sharing.md, "Landlords").

A move-in for one of the landlord's confirmed dwellings is kept as a report. When the ID number is a person the
register holds in the dwelling's own community (same name), the report applies at once: the tenancy is opened
(the person moved through the register's `move_to` when they lived at another dwelling) and the worker gets the
usual new-arrival visit task. Anyone else (not registered, registered in another community, another name)
waits for a worker of the community, who registers them from the report through the register's own path (its
rules: one person one record, transfers between communities) or dismisses it. A move-out closes the tenancy and
gives the worker a follow-up task to verify the residence: partner evidence, which the worker confirms.

A report is late when made more than LATE_AFTER_WORKING_DAYS working days after the date it reports: China's
official calendar (`app.core.workdays`: public holidays and make-up working weekends; Monday to Friday in a year it
does not know). A retried report (same dwelling, person or tenancy,
and date) is the same report.

What a landlord reads of their tenants enters each resident's disclosure ledger (`app.sharing.ledger.disclose`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.core import workdays
from app.core.actor import Actor, AreaScope, Role
from app.core.db import UnitOfWork
from app.core.errors import NotFound, StaleVersion
from app.core.types import city_today, utcnow
from app.cycle.models import Task, TaskKind
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import TaskCreate
from app.people import rules
from app.people.models import Resident, ResidentStatus, Tenancy, TenancySource
from app.people.register import service as register
from app.people.register.schemas import ResidentCreate
from app.places.models import Dwelling
from app.sharing.landlords.errors import DateBeforeMoveIn, ReportNotPending, TenancyClosed
from app.sharing.landlords.models import LandlordAccount, ReportKind, ReportState, TenantReport
from app.sharing.landlords.service import LandlordScope, confirmed, id_number
from app.sharing.landlords.tenants.schemas import (
    DismissIn,
    MoveInIn,
    MoveOutIn,
    MyReport,
    RegisterFromReport,
    ReportOut,
    Tenant,
)
from app.sharing.ledger import disclose
from app.sharing.profiles.service import pull_profile
from app.visits.models import FollowUpReason

LATE_AFTER_WORKING_DAYS = 3
MOVE_OUT_CHECK_DAYS = 7  # the follow-up task's due date after a move-out
PARTNER_KIND = "landlord"
TENANT_FIELDS = ("name", "id_number_masked", "phone_masked", "tenancy_dates")


def today() -> date:
    """The city date a report is made on (one function, so a test can set the day)."""
    return city_today()


def working_days_after(start: date, end: date) -> int:
    """Working days after `start`, up to and including `end` (the official calendar)."""
    return workdays.workdays_after(start, end)


def is_late(on: date, reported_on: date) -> bool:
    return working_days_after(on, reported_on) > LATE_AFTER_WORKING_DAYS


def _own_dwelling(session: Session, scope: LandlordScope, dwelling_id: str) -> Dwelling:
    dwelling = session.execute(
        select(Dwelling).where(col(Dwelling.id) == dwelling_id, col(Dwelling.landlord_id) == scope.landlord_id,
                               col(Dwelling.active))
    ).scalar_one_or_none()
    if dwelling is None:
        raise NotFound({"field": "dwelling_id"})
    return dwelling


def _same_report(session: Session, dwelling_id: str, kind: ReportKind, subject: str, on: date) -> TenantReport | None:
    return session.execute(
        select(TenantReport).where(col(TenantReport.dwelling_id) == dwelling_id, col(TenantReport.kind) == kind.value,
                                   col(TenantReport.subject) == subject, col(TenantReport.on_date) == on)
    ).scalar_one_or_none()


def _report(scope: LandlordScope, dwelling: Dwelling, kind: ReportKind, subject: str, on: date) -> TenantReport:
    assert scope.landlord_id is not None
    reported_on = today()
    return TenantReport(account_id=scope.account_id, landlord_id=scope.landlord_id, dwelling_id=dwelling.id,
                        community_id=dwelling.community_id, area_path=dwelling.area_path,
                        district_code=dwelling.district_code, kind=kind.value, subject=subject, on_date=on,
                        reported_on=reported_on, late=is_late(on, reported_on), state=ReportState.pending.value)


# --- move-in --------------------------------------------------------------------------------------------


def move_in(session: Session, actor: Actor, body: MoveInIn) -> tuple[TenantReport, bool]:
    """(report, created)."""
    scope = confirmed(actor)
    dwelling = _own_dwelling(session, scope, body.dwelling_id)
    number = id_number(body.id_number)
    phone = register.normalise_phone(body.phone)
    register.check_dates(body.moved_in_on)
    existing = _same_report(session, dwelling.id, ReportKind.move_in, number, body.moved_in_on)
    if existing is not None:
        return existing, False
    report = _report(scope, dwelling, ReportKind.move_in, number, body.moved_in_on)
    report.name, report.id_number, report.phone = body.name, number, phone
    resident = _registered_here(session, number, body.name, dwelling)
    if resident is not None:
        _apply_move_in(session, report, resident, dwelling)
    session.add(report)
    session.flush()
    return report, True


def _registered_here(session: Session, number: str, name: str, dwelling: Dwelling) -> Resident | None:
    """The registered person with this ID number and name in the dwelling's community, locked; else None."""
    resident = session.execute(
        select(Resident).where(col(Resident.id_number) == number).with_for_update()
    ).scalar_one_or_none()
    if (resident is None or resident.status != ResidentStatus.registered.value or resident.merged_into_id is not None
            or resident.community_id != dwelling.community_id or not rules.same_name(resident.name, name)):
        return None
    return resident


def _open_tenancy(session: Session, resident_id: str, dwelling_id: str) -> Tenancy | None:
    return session.execute(
        select(Tenancy).where(col(Tenancy.resident_id) == resident_id, col(Tenancy.dwelling_id) == dwelling_id,
                              col(Tenancy.move_out).is_(None)).order_by(col(Tenancy.move_in).desc())
    ).scalars().first()


def _apply_move_in(session: Session, report: TenantReport, resident: Resident, dwelling: Dwelling) -> None:
    tenancy = _open_tenancy(session, resident.id, dwelling.id)
    if tenancy is None:
        if resident.dwelling_id == dwelling.id:
            session.add(Tenancy(resident_id=resident.id, dwelling_id=dwelling.id, area_path=dwelling.area_path,
                                district_code=dwelling.district_code, move_in=report.on_date,
                                source=TenancySource.landlord.value))
        else:
            register.move_to(session, resident, dwelling, report.on_date, TenancySource.landlord.value)
            register.touch(resident)
            session.add(resident)
        session.flush()
        tenancy = _open_tenancy(session, resident.id, dwelling.id)
        assert tenancy is not None
    tasks.new_arrival_task(session, resident)
    report.state, report.resident_id, report.tenancy_id = ReportState.applied.value, resident.id, tenancy.id
    report.task_id = _arrival_task_id(session, resident.id)


def _arrival_task_id(session: Session, resident_id: str) -> str | None:
    return session.execute(
        select(col(Task.id)).where(col(Task.resident_id) == resident_id,
                                   col(Task.kind) == TaskKind.new_arrival_visit.value)
        .order_by(col(Task.created_at).desc(), col(Task.id)).limit(1)
    ).scalar_one_or_none()


# --- move-out -------------------------------------------------------------------------------------------


def move_out(session: Session, actor: Actor, body: MoveOutIn) -> tuple[TenantReport, bool]:
    """(report, created): the tenancy closes; the worker verifies the residence (a follow-up task)."""
    scope = confirmed(actor)
    row = session.execute(
        select(Tenancy, Dwelling).join(Dwelling, col(Dwelling.id) == col(Tenancy.dwelling_id))
        .where(col(Tenancy.id) == body.tenancy_id, col(Dwelling.landlord_id) == scope.landlord_id)
        .with_for_update(of=Tenancy)
    ).first()
    if row is None:
        raise NotFound({"field": "tenancy_id"})
    tenancy, dwelling = row
    existing = _same_report(session, dwelling.id, ReportKind.move_out, tenancy.id, body.moved_out_on)
    if existing is not None:
        return existing, False
    if tenancy.move_out is not None:
        raise TenancyClosed()
    register.check_dates(body.moved_out_on)
    if body.moved_out_on < tenancy.move_in:
        raise DateBeforeMoveIn()
    tenancy.move_out = body.moved_out_on
    session.add(tenancy)
    report = _report(scope, dwelling, ReportKind.move_out, tenancy.id, body.moved_out_on)
    report.state, report.resident_id, report.tenancy_id = ReportState.applied.value, tenancy.resident_id, tenancy.id
    resident = session.get(Resident, tenancy.resident_id)
    if resident is not None and resident.status == ResidentStatus.registered.value \
            and resident.dwelling_id == dwelling.id:
        report.task_id = _verify_task(session, actor, resident)
    session.add(report)
    session.flush()
    return report, True


def _verify_task(session: Session, actor: Actor, resident: Resident) -> str:
    """A follow-up visit to verify the residence, owed by the resident's community (created by the landlord's
    account: the task list's own path, asked for the resident's area)."""
    on_behalf = Actor(actor.user_id, actor.username, Role.landlord, actor.session_id,
                      AreaScope((resident.area_path,)))
    task = tasks.create_follow_up(session, on_behalf, TaskCreate(
        resident_id=resident.id, reason=FollowUpReason.verify_residence, note="landlord_move_out",
        due_date=city_today() + timedelta(days=MOVE_OUT_CHECK_DAYS)))
    return task.id


# --- what the landlord sees -----------------------------------------------------------------------------


def tenants_query(actor: Actor) -> Any:
    scope = confirmed(actor)
    return (select(Tenancy, Resident, Dwelling)
            .join(Resident, col(Resident.id) == col(Tenancy.resident_id))
            .join(Dwelling, col(Dwelling.id) == col(Tenancy.dwelling_id))
            .where(col(Dwelling.landlord_id) == scope.landlord_id, col(Dwelling.active),
                   col(Tenancy.move_out).is_(None), col(Resident.status) == ResidentStatus.registered.value,
                   col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))
            .order_by(col(Tenancy.move_in), col(Tenancy.id)))


def tenants_out(session: Session, actor: Actor, rows: list[Any], *, approved: bool = False) -> list[Tenant]:
    """The page as the landlord sees it; every resident on it enters their disclosure ledger, on the legal basis
    of the landlord profile in force (app/sharing/profiles: 403 while it requires approval unless `approved`, the
    collection of an approved request; 409 without one)."""
    scope = confirmed(actor)
    assert scope.landlord_id is not None
    legal_basis = pull_profile(session, PARTNER_KIND, approved=approved).legal_basis
    items = [Tenant(tenancy_id=t.id, dwelling_id=d.id, address=d.address, name=r.name,
                    id_number_masked=rules.mask_id(r.id_number), phone_masked=rules.mask_phone(r.phone),
                    moved_in_on=t.move_in) for t, r, d in rows]
    disclosed = [(r.id, r.district_code) for _, r, _ in rows]
    landlord_id = scope.landlord_id
    uow = UnitOfWork.of(session)
    assert uow is not None

    def enter(s: Session) -> None:
        disclose(s, partner_kind=PARTNER_KIND, partner_id=landlord_id, residents=disclosed,
                 field_groups=TENANT_FIELDS, legal_basis=legal_basis)

    uow.side_write(enter)
    return items


def account_area(session: Session, account_id: str) -> tuple[str, str]:
    """(area path, district code) of a landlord's account: where a held request of theirs is decided."""
    path, district = session.execute(select(col(LandlordAccount.area_path), col(LandlordAccount.district_code))
                                     .where(col(LandlordAccount.user_id) == account_id)).one()
    return path, district


def my_reports(actor: Actor) -> Any:
    scope = confirmed(actor)
    return (select(TenantReport).where(col(TenantReport.account_id) == scope.account_id)
            .order_by(col(TenantReport.created_at).desc(), col(TenantReport.id)))


def my_report(report: TenantReport) -> MyReport:
    return MyReport.model_validate({**report.model_dump(), "id_number_masked": rules.mask_id(report.id_number)})


# --- staff: the queue -----------------------------------------------------------------------------------


def reports_query(actor: Actor, state: ReportState | None, kind: ReportKind | None) -> Any:
    stmt = select(TenantReport).where(actor.area_filter(col(TenantReport.area_path), col(TenantReport.district_code)))
    if state is not None:
        stmt = stmt.where(col(TenantReport.state) == state.value)
    if kind is not None:
        stmt = stmt.where(col(TenantReport.kind) == kind.value)
    return stmt.order_by(col(TenantReport.created_at), col(TenantReport.id))


def report_out(report: TenantReport) -> ReportOut:
    return ReportOut.model_validate({**report.model_dump(), "id_number_masked": rules.mask_id(report.id_number),
                                     "phone_masked": rules.mask_phone(report.phone)})


def _pending(session: Session, actor: Actor, report_id: str, version: int) -> TenantReport:
    report = session.execute(
        select(TenantReport).where(col(TenantReport.id) == report_id,
                                   actor.area_filter(col(TenantReport.area_path))).with_for_update()
    ).scalar_one_or_none()
    if report is None:
        raise NotFound()
    if report.version != version:
        raise StaleVersion({"current_version": report.version})
    if report.state != ReportState.pending.value:
        raise ReportNotPending()
    return report


def register_from_report(session: Session, actor: Actor, report_id: str, body: RegisterFromReport) -> TenantReport:
    """The register's own path (`create_resident`, source `landlord`): its 409s (resident_exists,
    resident_registered_elsewhere with a transfer request) answer as they do there. The new-arrival task follows
    from the registration."""
    report = _pending(session, actor, report_id, body.version)
    fields = body.model_dump(exclude={"version", "name"})
    resident = register.create_resident(session, actor, ResidentCreate.model_validate({
        **fields, "name": body.name or report.name, "id_number": report.id_number, "phone": report.phone,
        "arrival_date": report.on_date.isoformat(), "dwelling_id": report.dwelling_id,
        "source": TenancySource.landlord.value}))
    tenancy = _open_tenancy(session, resident.id, report.dwelling_id)
    report.resident_id, report.tenancy_id = resident.id, tenancy.id if tenancy else None
    report.task_id = _arrival_task_id(session, resident.id)
    _decide(report, actor, ReportState.registered)
    session.add(report)
    session.flush()
    return report


def dismiss(session: Session, actor: Actor, report_id: str, body: DismissIn) -> TenantReport:
    report = _pending(session, actor, report_id, body.version)
    report.reason = body.reason.value
    report.name = report.phone = None  # not a person of the register: keep no more than the retry key needs
    _decide(report, actor, ReportState.dismissed)
    session.add(report)
    session.flush()
    return report


def _decide(report: TenantReport, actor: Actor, state: ReportState) -> None:
    report.state, report.decided_by, report.decided_at = state.value, actor.user_id, utcnow()
    report.version += 1

