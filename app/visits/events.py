"""What the visits domain tells the layers above it (the monthly cycle's task list), and asks of them.

Visits never import the task list: recording emits `VisitsWritten`, and a visit's answer asks
`VisitTasksWanted` which tasks it completed or created. Both carry a place for the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.catalog import service as catalog
from app.core.actor import Actor


@dataclass
class Written:
    """A visit just stored: its row values, its deliveries' and the tasks it completed or created."""

    visit: dict[str, Any]
    deliveries: list[dict[str, Any]]
    items: dict[str, catalog.Entry]  # by item id, as the current catalogue names them
    follow_up: tuple[Any, str] | None  # (due date, reason) of the follow-up task asked for
    registered: bool  # the resident may be given a follow-up task
    resident_area: tuple[str, str, str]
    # Filled in by whoever keeps tasks, when VisitsWritten is emitted.
    tasks_completed: list[str] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VisitsWritten:
    """Visits were stored (POST /visits, a correction, a sync push), in this order."""

    actor: Actor
    written: list[Written]


@dataclass
class VisitTasksWanted:
    """A visit's answer is being built: the tasks each of these visits completed, and created."""

    visit_ids: list[str]
    completed: dict[str, list[str]] = field(default_factory=dict)
    created: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, visit_ids: list[str]) -> VisitTasksWanted:
        return cls(visit_ids, {v: [] for v in visit_ids}, {v: [] for v in visit_ids})
