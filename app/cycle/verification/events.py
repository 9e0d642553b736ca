"""What the monthly verification tells higher layers (the partners' webhooks, app/sharing/webhooks).

Emitted (`app.core.events.emit`) in the recording's own transaction; the cycle never imports who listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.cycle.verification.models import Verification
from app.people.models import Resident


@dataclass(frozen=True)
class OutcomeRecorded:
    """A month's outcome was recorded (after its effects on the register: a move, an end of residence)."""

    verification: Verification
    resident: Resident
