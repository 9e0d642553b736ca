"""The outflow city's own webhook events, produced in the change's transaction (the transactional outbox):

- `verification.recorded`: a month's verification outcome was recorded (app/cycle/verification/recording.py);
- `fp_document.changed`: a 婚育证明 was recorded or its status changed (app/people/records/service.py);
- `assistance.request_sent`: the office sent the city a request about one of its people (app/cycle/assistance);
- `assistance.answered`: the office answered a request the city sent (its answer to its own request through
  app/sharing/outflow/assistance is not echoed back).

The lower layers emit plain events (`app.core.events`) and never import this module; app/wiring.py subscribes
the handlers. The person is shaped through the outflow profile by the function the change feed uses
(app/sharing/outflow/shaping.py): identity and the event's own group, or no event when the profile withholds that
group. An assistance event carries the request as the city's assistance API shows it (`PartnerAssistanceOut`)
and, when it names one of our residents, that person's identity; it goes to the endpoints of the city the request
is with (its cooperation agreement, as the assistance API decides), covering the person when there is one.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.core import events
from app.core.actor import Role
from app.cycle.assistance import service as assistance
from app.cycle.assistance.events import AssistanceAnswered, AssistanceSent
from app.cycle.assistance.models import AssistanceRequest, Direction
from app.cycle.verification.events import OutcomeRecorded
from app.people.events import FpDocumentChanged
from app.people.models import Resident
from app.people.shapes import ShapeExtra
from app.sharing.outflow.assistance.service import FIELD_GROUPS, city_of
from app.sharing.outflow.shaping import shape
from app.sharing.webhooks.coverage import ASSISTANCE_ANSWERED, ASSISTANCE_SENT, FP_CHANGED, VERIFIED, reaches
from app.sharing.webhooks.producer import Profiles, queue

KIND = Role.outflow_city.value


def announce(session: Session, resident: Resident, event_type: str, group: str, extra: ShapeExtra,
             month: str | None = None) -> int:
    """Queue `event_type` about `resident` for every outflow endpoint covering them; returns how many."""
    profiles, queued = Profiles(session), 0
    for reach in reaches(session, event_type):
        if reach.endpoint.partner_kind != KIND or not reach.covers(resident):
            continue
        profile = profiles.get(KIND)
        shaped = shape(profile, resident, group, extra, month) if profile is not None else None
        if profile is None or shaped is None:
            continue  # no profile, approval required, or the event's group withheld: nothing leaves
        groups, person = shaped
        queue(session, reach.endpoint, event_type, profile, groups, {"resident": person}, resident)
        queued += 1
    session.flush()
    return queued


def announce_request(session: Session, request: AssistanceRequest, event_type: str) -> int:
    """Queue an assistance event for the endpoints of the request's city (covering its resident, if any)."""
    resident = session.get(Resident, request.resident_id) if request.resident_id else None
    profiles, queued = Profiles(session), 0
    shown: dict[str, Any] | None = None
    for reach in reaches(session, event_type):
        if reach.endpoint.partner_kind != KIND or city_of(reach.scope) != request.partner_city:
            continue
        if resident is not None and not reach.covers(resident):
            continue
        profile = profiles.get(KIND)
        if profile is None:
            continue
        if shown is None:
            shown = assistance.partner_out(session, request, assistance.today()).model_dump(mode="json")
        content: dict[str, Any] = {"request": shown}
        person = shape(profile, resident, "identity", ShapeExtra()) if resident is not None else None
        if person is not None:
            content["resident"] = person[1]
        queue(session, reach.endpoint, event_type, profile, FIELD_GROUPS, content, resident)
        queued += 1
    session.flush()
    return queued


def _verified(session: Session, event: OutcomeRecorded) -> None:
    verification = event.verification
    announce(session, event.resident, VERIFIED, "verification",
             ShapeExtra(verification_status=verification.outcome), verification.month)


def _fp_changed(session: Session, event: FpDocumentChanged) -> None:
    announce(session, event.resident, FP_CHANGED, "fp_document",
             ShapeExtra(fp_document_status=event.document.status))


def _sent(session: Session, event: AssistanceSent) -> None:
    announce_request(session, event.request, ASSISTANCE_SENT)


def _answered(session: Session, event: AssistanceAnswered) -> None:
    if event.request.direction == Direction.incoming.value:  # the city's own answer is not echoed back to it
        announce_request(session, event.request, ASSISTANCE_ANSWERED)


def subscribe() -> None:
    events.subscribe(OutcomeRecorded, _verified)
    events.subscribe(FpDocumentChanged, _fp_changed)
    events.subscribe(AssistanceSent, _sent)
    events.subscribe(AssistanceAnswered, _answered)
