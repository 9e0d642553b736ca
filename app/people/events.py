"""What happens in the register that higher layers act on (the monthly cycle's tasks, for one).

The register emits these (`app.core.events.emit`) in its own transaction; it never imports who listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.people.models import FpDocument, Resident


@dataclass(frozen=True)
class ResidentRegistered:
    """Registered through the API (a new arrival, or a returning person); not an import of existing stock."""

    resident: Resident
    fresh: bool  # a record created just now (it has no history yet)
    # The city date the worker registered them, when it is not today: a phone that registered them offline says
    # when (sync push). Its visits made meanwhile must count for the new-arrival visit.
    registered_on: date | None = None


@dataclass(frozen=True)
class TransferAccepted:
    """The receiving community took the resident over (the move itself is a ResidentMoved)."""

    resident: Resident


@dataclass(frozen=True)
class ResidentMoved:
    """The resident now lives in another dwelling, possibly another community or district."""

    resident: Resident
    previous_area_path: str | None = None  # where they lived before (whoever covered it is told they moved out)


@dataclass(frozen=True)
class ResidentLeft:
    resident: Resident


@dataclass(frozen=True)
class ResidentMerged:
    """`merged` was folded into another record and no longer stands for anyone."""

    merged: Resident


@dataclass(frozen=True)
class BecameKeyPerson:
    resident: Resident


@dataclass(frozen=True)
class FpDocumentChanged:
    """A 婚育证明 was recorded, or its status changed."""

    document: FpDocument
    resident: Resident
