"""What a police upload hands to the monthly cycle: the one place that does it.

A registration of a person the register does not have (`new`) gives the community's worker a `reported_arrival`
task (its id the row's), in the row's area, at the dwelling the address matched (if any), naming the person in its
note (name and masked ID: the worker reads the full row, an audited read, under `GET /sharing/police-reports/{id}`).
Accepting the row (or registering the person in that community any other way: `on_resident_registered`) completes
the task and links it to the resident; dismissing the row cancels it.

A deregistration of a registered resident:

A proposed outcome (`LEFT_CITY`, source `police`, on the deregistration's date) on the resident's pending
verification of this month (`app.cycle.verification.proposals.propose`): the worker confirms it by recording
that outcome with the evidence `partner`, or records what they find. When there is no such verification to
propose on (the month is not opened, closed or locked, or its verification is already recorded), the worker gets
a follow-up task (`verify_residence`, with the row's id as its id, so a row hands off once): a met visit
completes it, recording the departure cancels it (`resident_left`), as the task list does for every departure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session

from app.core.actor import Actor
from app.core.errors import AppError
from app.core.types import city_today
from app.cycle.reports.errors import ReportLocked
from app.cycle.tasks import reported
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import TaskCreate
from app.cycle.verification.errors import PeriodClosed, VerificationNotFound, VerificationRecorded
from app.cycle.verification.models import Outcome, ProposalSource
from app.cycle.verification.proposals import propose
from app.ledger.service import savepoint
from app.people import rules as people_rules
from app.people.models import Resident
from app.sharing.uploads.models import PoliceReportRow, RowState
from app.visits.models import FollowUpReason

CHECK_WITHIN_DAYS = 7
NOTE = "公安注销居住登记，请核实是否离开 / police deregistration: confirm the departure"
ARRIVAL_NOTE = "公安登记新来人员，请走访登记 / police registration: visit and register"
NO_PROPOSAL: tuple[type[AppError], ...] = (VerificationNotFound, PeriodClosed, ReportLocked, VerificationRecorded)


@dataclass(frozen=True)
class Handoff:
    verification_id: str | None = None
    task_id: str | None = None


def propose_departure(session: Session, actor: Actor, resident: Resident, row_id: str, event_date: date) -> Handoff:
    """Hand a station's deregistration of `resident` to their worker: a proposal, else a task."""
    try:
        with savepoint(session):
            verification, _ = propose(session, actor, resident.id, Outcome.left_city, ProposalSource.police,
                                      proposed_on=event_date)
        return Handoff(verification_id=verification.id)
    except NO_PROPOSAL:
        pass
    task = tasks.create_follow_up(session, actor, TaskCreate(
        resident_id=resident.id, reason=FollowUpReason.verify_residence,
        due_date=city_today() + timedelta(days=CHECK_WITHIN_DAYS), note=NOTE), task_id=row_id)
    return Handoff(task_id=task.id)


def report_arrival(session: Session, row: PoliceReportRow) -> str:
    """The worker's task to visit a reported person the register does not have; returns its id (the row's)."""
    place = f" @ {row.address}" if row.address else ""
    note = f"{ARRIVAL_NOTE}: {row.name} {people_rules.mask_id(row.id_number)}{place}"
    task = reported.reported_arrival_task(session, task_id=row.id, community_id=row.community_id,
                                          area_path=row.area_path, district_code=row.district_code,
                                          dwelling_id=row.dwelling_id, note=note)
    return task.id


def settle_arrival(session: Session, row: PoliceReportRow) -> None:
    """A new row resolved: accepted (its resident registered) completes its task, dismissed cancels it."""
    if row.task_id is not None:
        accepted = row.state == RowState.accepted.value
        reported.settle_reported_arrival(session, row.task_id, row.resident_id if accepted else None)
