"""What an outflow city sends about assistance requests. Answers and steps reuse the cycle's own inputs
(`ProgressIn`, `AnswerIn`); every answer is `PartnerAssistanceOut` (app/cycle/assistance/schemas.py), never a
staff shape."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import InputModel
from app.cycle.assistance.models import Topic


class PartnerRequestIn(InputModel):
    """The city's own request about one of its registered people who may live here."""

    reference: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$",
                           description="The city's file number: sending it again with the same content is "
                                       "answered with the same request")
    id_number: str = Field(min_length=15, max_length=20, description="The person's resident ID number")
    name: str = Field(min_length=1, max_length=50)
    topic: Topic
    urgent: bool = Field(default=False, description="Currently pregnant: answered within the urgent delay")
