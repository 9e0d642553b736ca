"""Assistance requests: creating, sending, matching, answering; scoped reads; the worker's open requests.

Every query carries the caller's area filter (out of scope is 404). Writes go through the ORM, so the
ledger audits each one; reads of a request's details are audited here as sensitive reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Date, Select, and_, bindparam, case, or_, select
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor, Role
from app.core.config import get_settings
from app.core.errors import NotFound, StaleVersion
from app.core.lean import Lean
from app.core.queries import Statements, not_indexed, one_of
from app.core.types import city_today, utcnow
from app.cycle.assistance import rules
from app.cycle.assistance.errors import (
    AnswerDate,
    AnswerFields,
    DuplicateReference,
    InvalidTransition,
    NoPartnerAgreement,
    OfficeSideOnly,
    PartnerCityUnknown,
    PartnerSideOnly,
    RequestOpen,
    ResidentNotRegistered,
)
from app.cycle.assistance.events import AssistanceAnswered, AssistanceSent
from app.cycle.assistance.models import OPEN_STATES, AssistanceRequest, Direction, State, Topic
from app.cycle.assistance.rules import Derived
from app.cycle.assistance.schemas import (
    AnswerIn,
    AssistanceListItem,
    AssistanceOut,
    AssistanceTask,
    IncomingCreate,
    OutgoingCreate,
    PartnerAssistanceOut,
    ProgressIn,
    VersionIn,
)
from app.ledger import audit
from app.people import rules as people_rules
from app.people.events import ResidentMerged, ResidentMoved
from app.people.models import Resident, ResidentStatus
from app.people.register import service as people
from app.people.register.errors import IdCheckDigit
from app.places.models import Division

TASKS_LIMIT = 200


def today() -> date:
    """The city date the service acts on (one place, so tests can set the day of the month)."""
    return city_today()

# --- reads ---------------------------------------------------------------------------------------------------


def scoped(actor: Actor) -> Select[Any]:
    return select(AssistanceRequest).where(
        actor.area_filter(col(AssistanceRequest.area_path), col(AssistanceRequest.district_code)))


def get_request(session: Session, actor: Actor, request_id: str, *, for_update: bool = False) -> AssistanceRequest:
    stmt = scoped(actor).where(col(AssistanceRequest.id) == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = session.execute(stmt).scalar_one_or_none()
    if found is None:
        raise NotFound()
    return found


def state_condition(state: Derived, on: date | BindParameter[date]) -> ColumnElement[bool]:
    """SQL for a derived state: `overdue` is an open request past its due date; an open state excludes it."""
    stored, due = col(AssistanceRequest.state), col(AssistanceRequest.due_on)
    if state is Derived.overdue:
        return and_(stored.in_(OPEN_STATES), due < on)
    if state.value in OPEN_STATES:
        return and_(stored == state.value, or_(due.is_(None), due >= on))
    return stored == state.value


def list_requests(actor: Actor, *, on: date, direction: Direction | None, states: Sequence[Derived],
                  resident_id: str | None, community_id: str | None) -> Select[Any]:
    stmt = scoped(actor)
    if direction is not None:
        stmt = stmt.where(col(AssistanceRequest.direction) == direction.value)
    if states:
        stmt = stmt.where(or_(*(state_condition(s, on) for s in states)))
    if resident_id is not None:
        stmt = stmt.where(col(AssistanceRequest.resident_id) == resident_id)
    if community_id is not None:
        stmt = stmt.where(col(AssistanceRequest.community_id) == community_id)
    order_due = col(AssistanceRequest.due_on).is_(None)
    return stmt.order_by(order_due, col(AssistanceRequest.due_on), col(AssistanceRequest.created_at),
                         col(AssistanceRequest.id))


def _residents(session: Session, requests: Sequence[AssistanceRequest]) -> dict[str, Resident]:
    ids = sorted({r.resident_id for r in requests if r.resident_id and r.direction == Direction.outgoing})
    if not ids:
        return {}
    return {r.id: r for r in session.execute(select(Resident).where(col(Resident.id).in_(ids))).scalars()}


def _subject(request: AssistanceRequest, resident: Resident | None) -> tuple[str | None, str | None]:
    """Name and ID number: an outgoing request reads its resident; an incoming one, what the partner sent."""
    if request.direction == Direction.outgoing and resident is not None:
        return resident.name, resident.id_number
    return request.subject_name, request.subject_id_number


def _late(request: AssistanceRequest) -> bool:
    return bool(request.answered_on and request.due_on and request.answered_on > request.due_on)


def request_out(session: Session, request: AssistanceRequest, on: date) -> AssistanceOut:
    resident = _residents(session, [request]).get(request.resident_id or "")
    name, id_number = _subject(request, resident)
    data = request.model_dump()
    data.update(state=rules.derived(request.state, request.due_on, on), subject_name=name,
                subject_id_number=id_number, late=_late(request))
    return AssistanceOut.model_validate(data)


def list_items(session: Session, requests: Sequence[AssistanceRequest], on: date) -> list[AssistanceListItem]:
    residents = _residents(session, requests)
    items = []
    for request in requests:
        name, id_number = _subject(request, residents.get(request.resident_id or ""))
        data = request.model_dump()
        data.update(state=rules.derived(request.state, request.due_on, on), subject_name=name,
                    subject_id_masked=people_rules.mask_id(id_number), late=_late(request))
        items.append(AssistanceListItem.model_validate(data))
    return items


def partner_out(session: Session, request: AssistanceRequest, on: date) -> PartnerAssistanceOut:
    """The outflow city's shape (built from its allow-list: no resident id, place, note or author)."""
    resident = _residents(session, [request]).get(request.resident_id or "")
    name, id_number = _subject(request, resident)
    data = {key: getattr(request, key) for key in PartnerAssistanceOut.model_fields if hasattr(request, key)}
    data.update(state=rules.derived(request.state, request.due_on, on), subject_name=name,
                subject_id_number=id_number)
    return PartnerAssistanceOut.model_validate(data)


def audit_read(session: Session, request: AssistanceRequest, purpose: str | None) -> None:
    """A request's details carry identity and the pregnancy flag: every read is recorded."""
    audit.record(session, "assistance.read", target_type="assistance_requests", target_id=request.id,
                 purpose=purpose or "case_work", area_path=request.area_path, district_code=request.district_code)


def open_for_tasks(session: Session, actor: Actor, on: date, upcoming_days: int) -> list[AssistanceTask]:
    """For /me/tasks: incoming requests our side owes (matched, verifying) due by `on` + `upcoming_days`, and
    every overdue request in the caller's area (an outgoing one: chase the partner city)."""
    # One Core statement per scope, the dates bound (app/core/queries.Statements), plain rows: every phone asks at
    # the shift's start, and most days the list is empty.
    stmt = _task_statements.get(actor.scope, lambda: Lean(_tasks_statement(actor)))
    rows = stmt.rows(session.connection(), {"on": on, "due_by": on + timedelta(days=upcoming_days)})
    return [AssistanceTask(id=request_id, direction=Direction(direction), state=rules.derived(state, due_on, on),
                           topic=Topic(topic), due_on=due_on, resident_id=resident_id, community_id=community_id,
                           subject_name=name)
            for request_id, direction, state, topic, due_on, resident_id, community_id, name in rows]


_task_statements = Statements()


def _tasks_statement(actor: Actor) -> Select[Any]:
    request = AssistanceRequest
    stored, due = col(request.state), col(request.due_on)
    ours = and_(col(request.direction) == Direction.incoming.value,
                one_of(stored, (State.matched.value, State.verifying.value)), due <= bindparam("due_by", type_=Date))
    overdue = and_(one_of(stored, OPEN_STATES), due < bindparam("on", type_=Date))  # state_condition(overdue)
    # `_subject`: an outgoing request names its resident as registered now, an incoming one what the partner sent.
    name = case((and_(col(request.direction) == Direction.outgoing.value, col(Resident.id).is_not(None)),
                 col(Resident.name)), else_=col(request.subject_name))
    return (select(col(request.id), col(request.direction), stored, col(request.topic), due, col(request.resident_id),
                   col(request.community_id), name)
            .outerjoin(Resident, col(Resident.id) == col(request.resident_id))
            # The area's own index (`ix_assistance_area_state_due`), not the district's, on SQLite too.
            .where(actor.area_filter(col(request.area_path), not_indexed(col(request.district_code))),
                   or_(ours, overdue))
            .order_by(due, col(request.id)).limit(TASKS_LIMIT))


# --- writes --------------------------------------------------------------------------------------------------


def _live_outgoing(session: Session, resident_id: str, topic: Topic) -> bool:
    stmt = select(col(AssistanceRequest.id)).where(
        col(AssistanceRequest.direction) == Direction.outgoing.value, col(AssistanceRequest.resident_id) == resident_id,
        col(AssistanceRequest.topic) == topic.value,
        col(AssistanceRequest.state).in_((State.draft.value, *OPEN_STATES)))
    return session.execute(stmt.limit(1)).first() is not None


def create_outgoing(session: Session, actor: Actor, body: OutgoingCreate) -> AssistanceRequest:
    resident = people.get_resident(session, actor, body.resident_id, for_update=True)
    if resident.status != ResidentStatus.registered.value:
        raise ResidentNotRegistered()
    partner = rules.city_of(resident.hukou_code)
    if partner not in get_settings().partner_cities:
        raise NoPartnerAgreement()
    if _live_outgoing(session, resident.id, body.topic):
        raise RequestOpen()
    request = AssistanceRequest(
        direction=Direction.outgoing.value, state=State.draft.value, topic=body.topic.value, urgent=body.urgent,
        partner_city=partner, resident_id=resident.id, community_id=resident.community_id,
        area_path=resident.area_path, district_code=resident.district_code, created_by=actor.user_id)
    session.add(request)
    session.flush()
    return request


def _home_area(session: Session, actor: Actor) -> tuple[str, str]:
    """Where an unmatched incoming request lies: the caller's own area (the city for an admin)."""
    prefixes = actor.area_prefixes
    if prefixes:
        codes = actor.district_codes or [""]
        return prefixes[0], codes[0]
    city = session.execute(select(Division).where(col(Division.level) == "city")
                           .order_by(col(Division.path)).limit(1)).scalar_one()
    return city.path, city.code[:6]


def _match(session: Session, actor: Actor, id_number: str, partner_city: str) -> Resident | None:
    """The registered resident with this ID number, in the caller's area and registered in the asking city
    (a city hears only about its own registered people)."""
    stmt = select(Resident).where(
        col(Resident.id_number) == id_number, col(Resident.status) == ResidentStatus.registered.value,
        col(Resident.hukou_code).startswith(partner_city[:4], autoescape=True),
        actor.area_filter(col(Resident.area_path), col(Resident.district_code)))
    return session.execute(stmt).scalar_one_or_none()


def find_incoming(session: Session, partner_city: str, reference: str, *,
                  for_update: bool = False) -> AssistanceRequest | None:
    """A partner city's request by its file number (unique per city), whoever registered it."""
    stmt = select(AssistanceRequest).where(
        col(AssistanceRequest.direction) == Direction.incoming.value,
        col(AssistanceRequest.partner_city) == partner_city,
        col(AssistanceRequest.partner_reference) == reference)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def checked_id_number(id_number: str) -> str:
    """An asked ID number, checked like a registration (a mistyped one would match nobody, or the wrong
    person)."""
    parsed = people.parse_id_number(id_number)
    if not parsed.check_ok:
        raise IdCheckDigit()
    return parsed.number


def receive(session: Session, actor: Actor, body: IncomingCreate, id_number: str,
            resident: Resident | None) -> AssistanceRequest:
    """Store a partner city's request, matched to `resident` (the caller found them) or unmatched; the delay
    counts from `received_on` (docs/assistance.md, "Deadlines")."""
    term = rules.deadline(body.received_on, body.urgent, get_settings())
    request = AssistanceRequest(
        direction=Direction.incoming.value, topic=body.topic.value, urgent=body.urgent,
        partner_city=body.partner_city, partner_reference=body.partner_reference,
        subject_id_number=id_number, subject_name=body.name, sent_on=body.received_on,
        counted_from=term.counted_from, due_on=term.due_on, created_by=actor.user_id, sent_by=actor.user_id,
        area_path="", district_code="")
    if resident is not None:
        request.state = State.matched.value
        request.resident_id, request.community_id = resident.id, resident.community_id
        request.area_path, request.district_code = resident.area_path, resident.district_code
    else:
        request.state = State.unmatched.value
        request.area_path, request.district_code = _home_area(session, actor)
    session.add(request)
    session.flush()
    return request


def register_incoming(session: Session, actor: Actor, body: IncomingCreate) -> AssistanceRequest:
    """An admin registers a partner city's request on its behalf (the partner's own API:
    app/sharing/outflow/assistance)."""
    if body.partner_city not in get_settings().partner_cities:
        raise PartnerCityUnknown()
    id_number = checked_id_number(body.id_number)
    if find_incoming(session, body.partner_city, body.partner_reference) is not None:
        raise DuplicateReference()
    return receive(session, actor, body, id_number, _match(session, actor, id_number, body.partner_city))


def _check(request: AssistanceRequest, version: int, target: State) -> None:
    if version != request.version:
        raise StaleVersion({"current_version": request.version})
    if not rules.can_move(request.state, target):
        raise InvalidTransition({"from": request.state, "to": target.value})


def _moved(session: Session, request: AssistanceRequest, target: State) -> AssistanceRequest:
    request.state = target.value
    request.updated_at = utcnow()
    request.version += 1
    session.add(request)
    session.flush()
    return request


def send(session: Session, actor: Actor, request: AssistanceRequest, body: VersionIn) -> AssistanceRequest:
    """Our side sends an outgoing draft; the delay starts (docs/assistance.md, "Deadlines")."""
    if request.direction != Direction.outgoing.value:
        raise InvalidTransition({"from": request.state, "to": State.sent.value})
    _check(request, body.version, State.sent)
    resident = session.get(Resident, request.resident_id) if request.resident_id else None
    if resident is None or resident.status != ResidentStatus.registered.value:
        raise ResidentNotRegistered()
    on = today()
    term = rules.deadline(on, request.urgent, get_settings())
    request.sent_on, request.counted_from, request.due_on = on, term.counted_from, term.due_on
    request.sent_by = actor.user_id
    _moved(session, request, State.sent)
    events.emit(session, AssistanceSent(request))
    return request


def _receiving_side(actor: Actor, request: AssistanceRequest) -> None:
    """The receiving side's steps: ours on an incoming request, the partner city's on an outgoing one (through
    its own API, or an admin records them)."""
    if request.direction == Direction.outgoing.value and actor.role not in (Role.admin, Role.outflow_city):
        raise PartnerSideOnly()
    if request.direction == Direction.incoming.value and actor.role is Role.outflow_city:
        raise OfficeSideOnly()


def progress(session: Session, actor: Actor, request: AssistanceRequest, body: ProgressIn) -> AssistanceRequest:
    _receiving_side(actor, request)
    target = State(body.state.value)
    _check(request, body.version, target)
    return _moved(session, request, target)


LIVE_STATES = (State.draft.value, *OPEN_STATES)


def on_resident_moved(session: Session, event: ResidentMoved) -> None:
    """Live requests follow the resident to their new community (and its worker); answered and unmatched ones
    stay where the work was done."""
    resident = event.resident
    stmt = select(AssistanceRequest).where(col(AssistanceRequest.resident_id) == resident.id,
                                           col(AssistanceRequest.state).in_(LIVE_STATES))
    for request in session.execute(stmt).scalars():
        _place(session, request, resident)
    session.flush()


def on_resident_merged(session: Session, event: ResidentMerged) -> None:
    """The merged record's requests go to the surviving record, except a live outgoing request on a topic the
    survivor already has one live on (one per resident and topic): that one stays, on the merged record."""
    survivor = session.get(Resident, event.merged.merged_into_id) if event.merged.merged_into_id else None
    if survivor is None:
        return
    stmt = select(AssistanceRequest).where(col(AssistanceRequest.resident_id) == event.merged.id)
    for request in list(session.execute(stmt).scalars()):
        live_outgoing = request.direction == Direction.outgoing.value and request.state in LIVE_STATES
        if live_outgoing and _live_outgoing(session, survivor.id, Topic(request.topic)):
            continue
        _place(session, request, survivor)
        session.flush()


def _place(session: Session, request: AssistanceRequest, resident: Resident) -> None:
    """Put the request with `resident`, where they live (one version step when anything changes)."""
    if (request.resident_id, request.area_path, request.community_id, request.district_code) == (
            resident.id, resident.area_path, resident.community_id, resident.district_code):
        return
    request.resident_id = resident.id
    request.area_path, request.community_id = resident.area_path, resident.community_id
    request.district_code = resident.district_code
    request.updated_at = utcnow()
    request.version += 1
    session.add(request)


def subscribe() -> None:
    """Follow the register (called once when the application is wired, app/wiring.py)."""
    events.subscribe(ResidentMoved, on_resident_moved)
    events.subscribe(ResidentMerged, on_resident_merged)


def answer(session: Session, actor: Actor, request: AssistanceRequest, body: AnswerIn) -> AssistanceRequest:
    _receiving_side(actor, request)
    _check(request, body.version, State.answered)
    is_fp = request.topic == Topic.fp_certificate.value
    if is_fp != (body.fp_certificate_status is not None):
        raise AnswerFields()
    answered_on = body.answered_on or today()
    if answered_on > today() or (request.sent_on is not None and answered_on < request.sent_on):
        raise AnswerDate()
    request.finding = body.finding.value
    request.fp_certificate_status = body.fp_certificate_status.value if body.fp_certificate_status else None
    request.answer_note = body.note
    request.answered_on, request.answered_by = answered_on, actor.user_id
    _moved(session, request, State.answered)
    events.emit(session, AssistanceAnswered(request))
    return request
