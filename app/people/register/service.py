"""The register: create (with the one-person-one-record rule), read, search, update, move, leave.

Identity checks live in app/people/rules.py; each failure is a 422 whose code names the rule.
Workflows that hang off a record (transfers, duplicate review, merges, corrections) are in workflows.py.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor, Role
from app.core.errors import Forbidden, NotFound, StaleVersion, Unprocessable
from app.core.lean import Lean
from app.core.queries import Statements
from app.core.types import city_today, utcnow
from app.ledger import audit
from app.people import rules
from app.people.events import BecameKeyPerson, ResidentLeft, ResidentMoved, ResidentRegistered
from app.people.models import (
    LONG_ACTING,
    DuplicateFlag,
    FpDocStatus,
    FpDocument,
    HealthRecord,
    PregnancyStatus,
    RequestStatus,
    Resident,
    ResidentStatus,
    Tenancy,
    TransferRequest,
)
from app.people.register.errors import (
    RULE_ERRORS,
    DateOutOfRange,
    IdBirthDateMismatch,
    IdCheckDigit,
    IdProvinceUnknown,
    IdSexMismatch,
    PhoneFormat,
    RegisteredElsewhere,
    ResidentExists,
    ResidentIdentityMismatch,
    ResidentNotActive,
)
from app.people.register.schemas import LeaveIn, MoveIn, ResidentCreate, ResidentUpdate
from app.places.models import Dwelling

# --- validation -------------------------------------------------------------------------------------


def parse_id_number(raw: str) -> rules.ParsedId:
    try:
        return rules.parse_id(raw)
    except rules.RuleError as exc:
        raise RULE_ERRORS[exc.code]() from None


def normalise_phone(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return rules.normalise_mobile(raw)
    except rules.RuleError:
        raise PhoneFormat() from None


def check_identity(actor: Actor, body: ResidentCreate) -> tuple[rules.ParsedId, bool]:
    """Parsed ID and whether it verified; enforces sex/birth-date agreement, the check digit and the province
    (a supervisor may accept a record failing either of the last two as 'ID unverified')."""
    parsed = parse_id_number(body.id_number)
    if body.sex is not None and body.sex.value != parsed.sex:
        raise IdSexMismatch()
    if body.birth_date is not None and body.birth_date != parsed.birth_date:
        raise IdBirthDateMismatch()
    if not parsed.verified:
        if not body.accept_unverified_id:
            raise unverified_error(parsed)
        if actor.role not in (Role.supervisor, Role.admin):
            raise Forbidden({"reason": "only a supervisor can accept an unverified ID"})
    return parsed, parsed.verified


def unverified_error(parsed: rules.ParsedId) -> Unprocessable:
    """Why an ID number did not verify: its check character first, then its province."""
    return IdCheckDigit() if not parsed.check_ok else IdProvinceUnknown()


def check_dates(*dates: date | None) -> None:
    today = city_today()
    for d in dates:
        if d is not None and (d > today + timedelta(days=1) or d.year < 1900):
            raise DateOutOfRange()


# --- scope ------------------------------------------------------------------------------------------


def scoped(actor: Actor) -> Select[Resident]:
    return select(Resident).where(actor.area_filter(Resident.area_path, Resident.district_code))


# One statement per scope (app/core/queries.Statements): the most frequent read of the register.
_by_id = Statements()


def _by_id_statement(actor: Actor, for_update: bool) -> Select[Resident]:
    stmt = scoped(actor).where(col(Resident.id) == bindparam("resident_id"))
    return stmt.with_for_update() if for_update else stmt


def get_resident(session: Session, actor: Actor, resident_id: str, *, for_update: bool = False) -> Resident:
    """The resident if the actor may see it, else 404. `for_update` locks the row (PostgreSQL) so two
    edits made from the same version cannot both pass the version check."""
    stmt = _by_id.get((actor.scope, for_update), lambda: _by_id_statement(actor, for_update))
    resident = session.execute(stmt, {"resident_id": resident_id}).scalar_one_or_none()
    if resident is None:
        raise NotFound()
    return resident


_read_by_id = Statements()


def _read_statement(actor: Actor) -> Select[Any]:
    residents = Resident.__table__  # type: ignore[attr-defined]
    return select(*residents.c).where(actor.area_filter(residents.c.area_path, residents.c.district_code),
                                      residents.c.id == bindparam("resident_id"))


def read_resident(session: Session, actor: Actor, resident_id: str) -> Any:
    """`get_resident` for a read that changes nothing (`GET /residents/{id}`, the register's most frequent read):
    the row's columns on the connection, no ORM entity (the session's own `execute` and the entity cost more
    than the read). Nothing is pending at the start of a read, so nothing needs flushing first."""
    row = _read_by_id.get(actor.scope, lambda: Lean(_read_statement(actor))).first(
        session.connection(), {"resident_id": resident_id})
    if row is None:
        raise NotFound()
    return row


def ids_in_scope(session: Session, actor: Actor, ids: set[str]) -> set[str]:
    """Which of these resident ids the actor may see (an id outside scope is never shown)."""
    if not ids or actor.city_wide:
        return set(ids)
    found = session.execute(select(col(Resident.id)).where(
        col(Resident.id).in_(sorted(ids)), actor.area_filter(col(Resident.area_path), col(Resident.district_code))
    )).scalars()
    return set(found)


def get_dwelling_in_scope(session: Session, actor: Actor, dwelling_id: str) -> Dwelling:
    dwelling = session.execute(
        select(Dwelling).where(col(Dwelling.id) == dwelling_id, col(Dwelling.active),
                               actor.area_filter(Dwelling.area_path))
    ).scalar_one_or_none()
    if dwelling is None:
        raise NotFound({"field": "dwelling_id"})
    return dwelling


def check_version(resident: Resident, version: int) -> None:
    if resident.version != version:
        raise StaleVersion({"current_version": resident.version})


def touch(resident: Resident) -> None:
    resident.version += 1
    resident.updated_at = utcnow()


# --- create ------------------------------------------------------------------------------------------


def create_resident(session: Session, actor: Actor, body: ResidentCreate, *, arrival_task: bool = True,
                    resident_id: str | None = None, registered_on: date | None = None) -> Resident:
    """Register a person; `arrival_task` (off for bulk import) gives them a new-arrival visit task.
    `resident_id`: a client-generated id (sync push); ignored when the person already has a record.
    `registered_on`: the city date a phone registered them offline (sync push), if not today."""
    parsed, verified = check_identity(actor, body)
    phone = normalise_phone(body.phone)
    check_dates(body.arrival_date)
    dwelling = get_dwelling_in_scope(session, actor, body.dwelling_id)
    existing = session.execute(select(Resident).where(col(Resident.id_number) == parsed.number)).scalar_one_or_none()
    if existing is not None:
        return _existing_person(session, actor, existing, dwelling, body, parsed, arrival_task, registered_on)
    resident = Resident(
        community_id=dwelling.community_id, dwelling_id=dwelling.id, area_path=dwelling.area_path,
        district_code=dwelling.district_code, name=body.name, sex=parsed.sex, birth_date=parsed.birth_date,
        id_number=parsed.number, id_verified=verified, id_accepted_by=None if verified else actor.user_id,
        phone=phone, ethnicity=body.ethnicity, hukou_code=body.hukou_code, hukou_address=body.hukou_address,
        arrival_date=body.arrival_date, marital_status=body.marital_status.value, employer=body.employer,
        occupation=body.occupation, residence_permit_no=body.residence_permit_no, created_by=actor.user_id,
    )
    if resident_id is not None:
        resident.id = resident_id
    session.add(resident)
    session.add(Tenancy(resident_id=resident.id, dwelling_id=dwelling.id, area_path=dwelling.area_path,
                        district_code=dwelling.district_code, move_in=body.arrival_date, source=body.source.value))
    session.flush()
    flag_likely_duplicates(session, resident)
    refresh_key_person(session, resident)
    if arrival_task:
        events.emit(session, ResidentRegistered(resident, fresh=True, registered_on=registered_on))
    return resident


def _existing_person(session: Session, actor: Actor, existing: Resident, dwelling: Dwelling,
                     body: ResidentCreate, parsed: rules.ParsedId, arrival_task: bool,
                     registered_on: date | None) -> Resident:
    """One person, one record: never a second row for an ID number that is already held.

    The caller learns nothing of a record outside their area: registered there or registered there before the
    person left, the details sent must match it and the holding community decides (a transfer request). A
    person who left the caller's own area is registered again on their old record at once."""
    existing = survivor_of(session, existing)
    here = actor.sees_path(existing.area_path)
    if existing.status == ResidentStatus.registered.value and here:
        raise ResidentExists({"resident_id": existing.id})
    if existing.merged_into_id is not None or existing.anonymised_at is not None:
        raise ResidentExists()
    check_same_person(existing, body, parsed)
    if not here:
        transfer = request_transfer(session, actor, existing, dwelling, body.arrival_date)
        raise RegisteredElsewhere({"transfer_request_id": transfer.id})
    register_again(session, existing, dwelling, body.arrival_date, body.source.value)
    if arrival_task:
        events.emit(session, ResidentRegistered(existing, fresh=False, registered_on=registered_on))
    return existing


def check_same_person(existing: Resident, body: ResidentCreate, parsed: rules.ParsedId) -> None:
    """The details sent must be the record's: name, and sex and birth date (from the ID number, checked
    against any sent)."""
    fields = [name for name, same in (("name", rules.same_name(existing.name, body.name)),
                                      ("sex", existing.sex == parsed.sex),
                                      ("birth_date", existing.birth_date == parsed.birth_date)) if not same]
    if fields:
        raise ResidentIdentityMismatch({"fields": fields})


def open_transfer(session: Session, resident_id: str, community_id: str) -> TransferRequest | None:
    return session.execute(
        select(TransferRequest).where(col(TransferRequest.resident_id) == resident_id,
                                      col(TransferRequest.to_community_id) == community_id,
                                      col(TransferRequest.status) == RequestStatus.pending.value)
        .order_by(col(TransferRequest.created_at), col(TransferRequest.id))
    ).scalars().first()


def request_transfer(session: Session, actor: Actor, existing: Resident, dwelling: Dwelling,
                     arrival_date: date) -> TransferRequest:
    """The open request of the dwelling's community for this person, opened now if there is none (one per
    pair: a partial unique index; a registration that races another answers with the other's request)."""
    transfer = open_transfer(session, existing.id, dwelling.community_id)
    if transfer is not None:
        return transfer
    transfer = TransferRequest(
        resident_id=existing.id, from_area_path=existing.area_path, to_community_id=dwelling.community_id,
        to_area_path=dwelling.area_path, to_dwelling_id=dwelling.id, district_code=dwelling.district_code,
        arrival_date=arrival_date, requested_by=actor.user_id,
    )
    try:
        with session.begin_nested():
            session.add(transfer)
            session.flush()
    except IntegrityError:
        raced = open_transfer(session, existing.id, dwelling.community_id)
        if raced is None:
            raise  # answered 409 concurrent_conflict
        return raced
    return transfer


def register_again(session: Session, resident: Resident, dwelling: Dwelling, arrival_date: date,
                   source: str) -> None:
    """A person who left (or was archived) and has come back: the same record is registered again at
    `dwelling` from `arrival_date`."""
    move_to(session, resident, dwelling, arrival_date, source)
    resident.status, resident.left_on, resident.left_reason = ResidentStatus.registered.value, None, None
    resident.arrival_date = arrival_date
    touch(resident)
    session.add(resident)
    session.flush()
    refresh_key_person(session, resident)


def survivor_of(session: Session, resident: Resident) -> Resident:
    """A merged record keeps its ID number as lineage; the person lives on in the record it was merged
    into (possibly through several merges)."""
    seen = {resident.id}
    while resident.merged_into_id is not None and resident.merged_into_id not in seen:
        survivor = session.get(Resident, resident.merged_into_id)
        if survivor is None:
            break
        seen.add(survivor.id)
        resident = survivor
    return resident


# Pairs flagged per registration at most: a supervisor reviews a handful, and a crafted batch of look-alike
# records must not make the work grow with the square of its size.
DUPLICATES_FLAGGED_MAX = 5


def flag_likely_duplicates(session: Session, resident: Resident) -> None:
    """Same name, birth date and phone but another ID: flag the pair for a supervisor to review."""
    if resident.phone is None:
        return
    others = session.execute(
        select(col(Resident.id)).where(
            col(Resident.name) == resident.name,
            col(Resident.birth_date) == resident.birth_date,
            col(Resident.phone) == resident.phone,
            col(Resident.id) != resident.id,
            col(Resident.merged_into_id).is_(None),
        ).order_by(col(Resident.created_at).desc()).limit(DUPLICATES_FLAGGED_MAX)
    ).scalars().all()
    for other in others:
        a, b = sorted((resident.id, other))
        exists = session.execute(select(col(DuplicateFlag.id)).where(col(DuplicateFlag.resident_a) == a,
                                                                col(DuplicateFlag.resident_b) == b)).first()
        if not exists:
            session.add(DuplicateFlag(resident_a=a, resident_b=b, area_path=resident.area_path,
                                      district_code=resident.district_code))


# --- update, move, leave ----------------------------------------------------------------------------------


def update_resident(session: Session, resident: Resident, body: ResidentUpdate) -> Resident:
    check_version(resident, body.version)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"version"})
    if "phone" in changes:
        changes["phone"] = normalise_phone(changes["phone"])
    if "marital_status" in changes and changes["marital_status"] is not None:
        changes["marital_status"] = changes["marital_status"].value
    for required in ("name", "hukou_code", "arrival_date", "marital_status"):
        if required in changes and changes[required] is None:
            raise Unprocessable({"field": required, "reason": "cannot be cleared"})
    check_dates(changes.get("arrival_date"))
    for key, value in changes.items():
        setattr(resident, key, value)
    touch(resident)
    session.add(resident)
    session.flush()
    refresh_key_person(session, resident)
    return resident


def move_to(session: Session, resident: Resident, dwelling: Dwelling, on: date, source: str) -> None:
    """Close the current tenancy and open one at `dwelling`; the resident's area follows."""
    current = session.execute(
        select(Tenancy).where(col(Tenancy.resident_id) == resident.id, col(Tenancy.move_out).is_(None))
    ).scalars().all()
    for tenancy in current:
        tenancy.move_out = max(on, tenancy.move_in)
        session.add(tenancy)
    session.add(Tenancy(resident_id=resident.id, dwelling_id=dwelling.id, area_path=dwelling.area_path,
                        district_code=dwelling.district_code, move_in=on, source=source))
    resident.dwelling_id, resident.community_id = dwelling.id, dwelling.community_id
    previous = resident.area_path
    if resident.district_code != dwelling.district_code:
        # The shard key travels with the person's records.
        for model in (FpDocument, HealthRecord):
            session.execute(update(model).where(col(model.resident_id) == resident.id)
                            .values(district_code=dwelling.district_code))
    resident.area_path, resident.district_code = dwelling.area_path, dwelling.district_code
    events.emit(session, ResidentMoved(resident, previous))


def move_resident(session: Session, actor: Actor, resident: Resident, body: MoveIn) -> Resident:
    check_version(resident, body.version)
    if resident.status != ResidentStatus.registered.value:
        raise ResidentNotActive()
    check_dates(body.moved_on)
    dwelling = get_dwelling_in_scope(session, actor, body.dwelling_id)
    move_to(session, resident, dwelling, body.moved_on, body.source.value)
    touch(resident)
    session.add(resident)
    session.flush()
    return resident


def leave(session: Session, resident: Resident, body: LeaveIn) -> Resident:
    check_version(resident, body.version)
    if resident.status != ResidentStatus.registered.value:
        raise ResidentNotActive()
    check_dates(body.left_on)
    return end_residence(session, resident, body.left_on, body.reason)


def end_residence(session: Session, resident: Resident, left_on: date, reason: str) -> Resident:
    """The residence ends (the history kept): tenancies closed, status LEFT with the reason. Also the monthly
    verification's path (app/cycle/verification), which adds the reason `whereabouts_unknown`."""
    for tenancy in session.execute(
        select(Tenancy).where(col(Tenancy.resident_id) == resident.id, col(Tenancy.move_out).is_(None))
    ).scalars():
        tenancy.move_out = max(left_on, tenancy.move_in)
        session.add(tenancy)
    resident.status, resident.left_on, resident.left_reason = ResidentStatus.left.value, left_on, reason
    touch(resident)
    session.add(resident)
    session.flush()
    refresh_key_person(session, resident)
    events.emit(session, ResidentLeft(resident))
    return resident


# --- key persons ------------------------------------------------------------------------------------------


def is_key_person(resident: Resident, health: HealthRecord | None, docs: list[FpDocument], today: date) -> bool:
    """重点对象: a registered woman aged 15–49 who is pregnant, gave birth this year, has no valid
    婚育证明, or has no long-acting contraception."""
    if resident.status != ResidentStatus.registered.value or resident.sex != "F":
        return False
    if not 15 <= rules.age_on(resident.birth_date, today) <= 49:
        return False
    valid_doc = any(d.status == FpDocStatus.valid.value and (d.expires_on is None or d.expires_on >= today)
                    for d in docs)
    if health is None:
        return True  # nothing known yet: a visit is due
    births = [c.get("birth_date", "") for c in json.loads(health.children or "[]")]
    born_this_year = any(str(b).startswith(str(today.year)) for b in births)
    long_acting = health.contraception in {c.value for c in LONG_ACTING}
    return (health.pregnancy == PregnancyStatus.pregnant.value or born_this_year or not valid_doc
            or not long_acting)


def refresh_key_person(session: Session, resident: Resident) -> None:
    health = session.get(HealthRecord, resident.id)
    docs = list(session.execute(select(FpDocument).where(col(FpDocument.resident_id) == resident.id)).scalars())
    flag = is_key_person(resident, health, docs, city_today())
    if flag != resident.key_person:
        resident.key_person = flag
        session.add(resident)
        session.flush()
        if flag:
            events.emit(session, BecameKeyPerson(resident))


def audit_read(session: Session, resident: Any, group: str, purpose: str | None) -> None:
    """Every read of sensitive fields (of a `Resident`, or a row of its columns): who (from context), whose
    record and where it lies, which field group, why."""
    audit.record(session, f"resident.read.{group}", target_type="residents", target_id=resident.id,
                 purpose=purpose or "case_work", area_path=resident.area_path, district_code=resident.district_code)
