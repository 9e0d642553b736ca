"""What assistance requests tell higher layers (the partners' webhooks, app/sharing/webhooks).

Emitted (`app.core.events.emit`) in the step's own transaction; the cycle never imports who listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.cycle.assistance.models import AssistanceRequest


@dataclass(frozen=True)
class AssistanceSent:
    """Our side sent an outgoing request to a partner city (its delay starts)."""

    request: AssistanceRequest


@dataclass(frozen=True)
class AssistanceAnswered:
    """A request was answered: by our side (an incoming one) or by the partner city (an outgoing one)."""

    request: AssistanceRequest
