"""An outflow city's assistance requests (协查) through its own API, both directions, on the cycle's own rules
(app/cycle/assistance: states, deadlines, cut-offs, the answer's fields).

- Outgoing (the office asks the city): the requests sent (never a draft) to the client's city about residents
  whose 户籍地 starts with the client's prefix. The city moves them (matched, verifying, unmatched) and answers
  them: the steps an admin records on its behalf otherwise.
- Incoming (the city asks the office): its own requests, matched by ID number against the registered residents
  anywhere in the city whose 户籍地 starts with its prefix; idempotent on the city's reference.

Anything else is 404. Every answer is `PartnerAssistanceOut`; every request about one of our residents that an
answer shows enters that resident's disclosure ledger (`sharing.outflow_assistance`), in the answer's own
transaction (writes) or just after the read (`side_write`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.core.config import get_settings
from app.core.db import UnitOfWork
from app.core.errors import NotFound
from app.cycle.assistance import rules
from app.cycle.assistance import service as assistance
from app.cycle.assistance.models import AssistanceRequest, Direction, State
from app.cycle.assistance.rules import Derived
from app.cycle.assistance.schemas import IncomingCreate, PartnerAssistanceOut
from app.people.models import Resident, ResidentStatus
from app.sharing.ledger import disclose
from app.sharing.outflow.assistance.errors import NoCooperationAgreement, ReferenceReused
from app.sharing.outflow.assistance.schemas import PartnerRequestIn
from app.sharing.partners.deps import JurisdictionScope, jurisdiction
from app.sharing.profiles.service import pull_profile

KIND = Role.outflow_city.value
ACTION = "sharing.outflow_assistance"
# What a request shows of a resident: who they are (the city's key) and the request's progress and answer.
FIELD_GROUPS = ("identity", "assistance")


def city_of(scope: JurisdictionScope) -> str | None:
    """The partner city a client speaks for: the city of its 户籍地 prefix (at least four digits), when it has a
    cooperation agreement."""
    prefix = scope.hukou_prefix
    if not prefix or len(prefix) < 4:
        return None
    city = rules.city_of(prefix)
    return city if city in get_settings().partner_cities else None


def _people(scope: JurisdictionScope) -> Select[Any]:
    return select(col(Resident.id)).where(scope.hukou_filter(col(Resident.hukou_code)))


def theirs(actor: Actor) -> ColumnElement[bool]:
    """The requests that are the client's: sent to its city about its people, or sent by its city."""
    scope = jurisdiction(actor.scope)
    city = city_of(scope)
    if city is None:
        return false()
    request = AssistanceRequest
    outgoing = and_(col(request.direction) == Direction.outgoing.value, col(request.state) != State.draft.value,
                    col(request.partner_city) == city, col(request.resident_id).in_(_people(scope)))
    incoming = and_(col(request.direction) == Direction.incoming.value, col(request.partner_city) == city)
    return or_(outgoing, incoming)


def list_requests(actor: Actor, direction: Direction | None, states: Sequence[Derived]) -> Select[Any]:
    on = assistance.today()
    stmt = select(AssistanceRequest).where(theirs(actor))
    if direction is not None:
        stmt = stmt.where(col(AssistanceRequest.direction) == direction.value)
    if states:
        stmt = stmt.where(or_(*(assistance.state_condition(s, on) for s in states)))
    return stmt.order_by(col(AssistanceRequest.created_at), col(AssistanceRequest.id))


def get_request(session: Session, actor: Actor, request_id: str, *, for_update: bool = False) -> AssistanceRequest:
    stmt = select(AssistanceRequest).where(theirs(actor), col(AssistanceRequest.id) == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = session.execute(stmt).scalar_one_or_none()
    if found is None:
        raise NotFound()
    return found


def _disclose(session: Session, actor: Actor, residents: list[tuple[str, str]], legal_basis: str) -> None:
    disclose(session, partner_kind=KIND, partner_id=actor.user_id, field_groups=FIELD_GROUPS,
             legal_basis=legal_basis, action=ACTION, residents=residents)


def shown(session: Session, actor: Actor, requests: Sequence[AssistanceRequest], *,
          after_read: bool = False) -> list[PartnerAssistanceOut]:
    """The requests in the partner's shape, entered in the ledger: in this transaction for a write, after the
    read transaction (`side_write`) for a read. 403 `disclosure_needs_approval` while the profile requires
    approval, 409 `profile_missing` without one."""
    legal_basis = pull_profile(session, KIND).legal_basis
    on = assistance.today()
    items = [assistance.partner_out(session, r, on) for r in requests]
    residents = [(r.resident_id, r.district_code) for r in requests if r.resident_id]
    if not residents or not after_read:
        _disclose(session, actor, residents, legal_basis)
        return items
    uow = UnitOfWork.of(session)
    assert uow is not None
    uow.side_write(lambda s: _disclose(s, actor, residents, legal_basis))
    return items


def _match(session: Session, scope: JurisdictionScope, id_number: str) -> Resident | None:
    """The registered resident with this ID number anywhere in the city, registered in the client's 户籍地."""
    return session.execute(select(Resident).where(
        col(Resident.id_number) == id_number, col(Resident.status) == ResidentStatus.registered.value,
        col(Resident.merged_into_id).is_(None), scope.hukou_filter(col(Resident.hukou_code)))
        .limit(1)).scalar_one_or_none()


def send(session: Session, actor: Actor, body: PartnerRequestIn) -> tuple[AssistanceRequest, bool]:
    """The city's request, received today (its delay counts from today); (request, created). The same reference
    again: the same request if the content is the same, else 409 `duplicate_partner_reference`."""
    scope = jurisdiction(actor.scope)
    city = city_of(scope)
    if city is None:
        raise NoCooperationAgreement()
    id_number = assistance.checked_id_number(body.id_number)
    existing = assistance.find_incoming(session, city, body.reference)
    if existing is not None:
        same = (existing.subject_id_number, existing.subject_name, existing.topic, existing.urgent) == (
            id_number, body.name, body.topic.value, body.urgent)
        if not same:
            raise ReferenceReused()
        return existing, False
    # Built, not validated: the date is the service's own today (`IncomingCreate` checks a typed one).
    incoming = IncomingCreate.model_construct(partner_city=city, partner_reference=body.reference, id_number=id_number,
                              name=body.name, topic=body.topic, urgent=body.urgent,
                              received_on=assistance.today())
    return assistance.receive(session, actor, incoming, id_number, _match(session, scope, id_number)), True
