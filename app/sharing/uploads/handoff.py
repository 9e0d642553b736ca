"""What a police deregistration of a registered resident hands to the monthly cycle: the one place that does it.

Today: a follow-up task (`verify_residence`) for the resident's worker, with the row's id as its id (so a row
hands off once). A met visit completes it (the resident is still there); recording the departure cancels it
(`resident_left`), as the task list does for every departure.

When `app.cycle.verification.proposals.propose` is on main, this becomes the partner-proposed outcome the worker
confirms: `propose(session, actor, resident.id, Outcome.left_city, ProposalSource.police,
proposed_on=event_date)`, falling back to the task when the resident has no pending verification this month
(404 `verification_not_found`) or the month is closed (`period_closed`, `report_locked`); a recorded one
(`verification_recorded`) needs nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from app.core.actor import Actor
from app.core.types import city_today
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import TaskCreate
from app.people.models import Resident
from app.visits.models import FollowUpReason

CHECK_WITHIN_DAYS = 7
NOTE = "公安注销居住登记，请核实是否离开 / police deregistration: confirm the departure"


def propose_departure(session: Session, actor: Actor, resident: Resident, row_id: str, event_date: date) -> str:
    """Hand a station's deregistration of `resident` to their worker; returns the task's id."""
    del event_date  # the proposal's date once `propose` is called here
    task = tasks.create_follow_up(session, actor, TaskCreate(
        resident_id=resident.id, reason=FollowUpReason.verify_residence,
        due_date=city_today() + timedelta(days=CHECK_WITHIN_DAYS), note=NOTE), task_id=row_id)
    return task.id
