"""The assistance request's state machine and its deadline, as pure functions (docs/assistance.md).

States: draft → sent → matched → verifying → answered, and sent → unmatched. A request is `overdue` while it
is sent, matched or verifying and its due date has passed (derived, never stored: nothing has to run for a
request to become overdue, and a late answer still lands as `answered`, marked `late`).

Who moves which step: the sending side sends; the receiving side matches (or not), verifies and answers. For
an incoming request the receiving side is us (the worker of the resident's community, or an admin); for an
outgoing one it is the partner city, through its own API (app/sharing/outflow/assistance) or an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from app.core.config import Settings
from app.cycle.assistance.models import OPEN_STATES, State


class Derived(StrEnum):
    """What a client shows: the stored state, or `overdue` for an open request past its due date."""

    draft = "draft"
    sent = "sent"
    matched = "matched"
    verifying = "verifying"
    answered = "answered"
    unmatched = "unmatched"
    overdue = "overdue"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.draft: frozenset({State.sent}),
    State.sent: frozenset({State.matched, State.unmatched}),
    State.matched: frozenset({State.verifying, State.answered}),
    State.verifying: frozenset({State.answered}),
    State.answered: frozenset(),
    State.unmatched: frozenset(),
}


def can_move(current: str, target: State) -> bool:
    return target in TRANSITIONS[State(current)]


def derived(state: str, due_on: date | None, on: date) -> Derived:
    if state in OPEN_STATES and due_on is not None and due_on < on:
        return Derived.overdue
    return Derived(state)


@dataclass(frozen=True)
class Deadline:
    counted_from: date
    due_on: date


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def deadline(start: date, urgent: bool, settings: Settings) -> Deadline:
    """When the answer is due for a request sent (or received) on `start`.

    1. Send cut-off: a normal request sent after the send cut-off day joins the next month's exchange, so its
       delay counts from the 1st of the next month. An urgent one counts from the day it is sent.
    2. The delay: urgent (currently pregnant) 15 days, normal 30 (configurable).
    3. Feedback cut-off: a due date after the feedback cut-off day of its month moves back to that day, so the
       answer is in before the month closes. The answer is then never later than the delay allows.
    """
    counted_from = start
    if not urgent and start.day > settings.assistance_send_cutoff_day:
        counted_from = _first_of_next_month(start)
    days = settings.assistance_urgent_days if urgent else settings.assistance_normal_days
    due = counted_from + timedelta(days=days)
    if due.day > settings.assistance_feedback_cutoff_day:
        due = due.replace(day=settings.assistance_feedback_cutoff_day)
    return Deadline(counted_from, max(due, counted_from))


def city_of(division_code: str) -> str:
    """The city-level code of a division code (户籍地 411602 → 411600)."""
    return division_code[:4] + "00"
