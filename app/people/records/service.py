"""Records around a resident: landlords and their dwellings, tenancies, 婚育证明 (family-planning documents)
and the reproductive-health record. The dossier (PIPL access) is in rights.py, retention in retention.py.

Scope:
- a resident's records follow the resident (`service.get_resident`: in the caller's area or 404);
- a landlord is visible when they own an active dwelling in the caller's area. A landlord with no
  dwelling yet (registered, not attached) is visible to staff whose area touches the landlord's district,
  so the team can attach them. `district_code` comes from the dwelling named at registration, else from
  the creator's area (its district), and moves to the first dwelling attached to a landlord who has none.
  Only a landlord the caller sees can be attached by id, and a clash on the ID number names the other record
  only when the caller sees it. A landlord registered outside the caller's area is attached by registering
  them again with one of the caller's dwellings and their name as registered (`create_landlord`).

Sensitive reads (ID numbers, 婚育证明, reproductive health, the dossier) are audited with a field group and
a purpose; writes are audited automatically (field names only), health writes also with their purpose.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.core import events
from app.core.actor import Actor
from app.core.errors import Conflict, NotFound, StaleVersion, Unprocessable
from app.core.types import city_today, utcnow
from app.ledger import audit
from app.people import rules
from app.people.events import FpDocumentChanged
from app.people.models import (
    FpDocStatus,
    FpDocument,
    HealthRecord,
    PregnancyStatus,
    Resident,
    ResidentStatus,
    Tenancy,
)
from app.people.records.schemas import (
    ChildOut,
    FpDocumentCreate,
    FpDocumentUpdate,
    HealthIn,
    HealthOut,
    HealthPurpose,
    TenancyOut,
)
from app.people.register import errors as register_errors
from app.people.register import service
from app.places.models import Dwelling

DWELLINGS_SHOWN = 200
DEFAULT_PURPOSE = "case_work"

# --- errors ---------------------------------------------------------------------------------------------


class FpDatesOrder(Unprocessable):
    code = "fp_dates_order"
    en = "The issue date must not be after the expiry date."
    zh = "签发日期不能晚于有效期截止日期。"


class FpStatusExpired(Unprocessable):
    code = "fp_status_expired"
    en = "A certificate past its expiry date cannot be valid or temporary; record it as expired."
    zh = "已过有效期的婚育证明不能登记为有效或临时，请登记为已过期。"


class PregnancySex(Unprocessable):
    code = "pregnancy_sex"
    en = "Pregnancy can only be recorded for a woman."
    zh = "只能为女性登记孕情。"


class ChildBirthDate(Unprocessable):
    code = "child_birth_date"
    en = "A child's birth date must be after the resident's own birth date."
    zh = "子女出生日期应晚于本人出生日期。"


class FieldRequired(Unprocessable):
    code = "field_required"
    en = "This field cannot be cleared."
    zh = "该字段不能清空。"


# --- helpers ----------------------------------------------------------------------------------------------


def lock_resident(session: Session, actor: Actor, resident_id: str) -> Resident:
    """The resident in scope, row-locked for the rest of the transaction (writes that must not interleave)."""
    resident = session.execute(
        service.scoped(actor).where(col(Resident.id) == resident_id).with_for_update()
    ).scalar_one_or_none()
    if resident is None:
        raise NotFound()
    return resident


def require_registered(resident: Resident) -> None:
    if resident.status != ResidentStatus.registered.value or resident.anonymised_at is not None:
        raise register_errors.ResidentNotActive()


def flush_unique(session: Session, error: type[Conflict], details: Any = None) -> None:
    """Flush inside a savepoint so a unique-constraint race is a 409, not a 500 (PostgreSQL aborts the
    transaction on an error outside a savepoint)."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise error(details) from None


# --- tenancies --------------------------------------------------------------------------------------------


def tenancies_stmt(resident: Resident) -> Any:
    return (select(Tenancy).where(col(Tenancy.resident_id) == resident.id)
            .order_by(col(Tenancy.move_in).desc(), col(Tenancy.created_at).desc(), col(Tenancy.id)))


def tenancy_outs(session: Session, tenancies: list[Tenancy]) -> list[TenancyOut]:
    ids = {t.dwelling_id for t in tenancies}
    dwellings = {d.id: d for d in session.execute(
        select(Dwelling).where(col(Dwelling.id).in_(ids))
    ).scalars()} if ids else {}
    return [
        TenancyOut(id=t.id, dwelling_id=t.dwelling_id, address=dwellings[t.dwelling_id].address,
                   community_id=dwellings[t.dwelling_id].community_id, move_in=t.move_in, move_out=t.move_out,
                   current=t.move_out is None, source=t.source, created_at=t.created_at)
        for t in tenancies
    ]


def current_tenants_stmt(actor: Actor, dwelling: Dwelling) -> Any:
    return (
        select(Tenancy)
        .join(Resident, col(Resident.id) == col(Tenancy.resident_id))
        .where(col(Tenancy.dwelling_id) == dwelling.id, col(Tenancy.move_out).is_(None),
               actor.area_filter(col(Resident.area_path)))
        .order_by(col(Tenancy.move_in), col(Tenancy.id))
    )


def residents_by_id(session: Session, ids: set[str]) -> dict[str, Resident]:
    if not ids:
        return {}
    return {r.id: r for r in session.execute(select(Resident).where(col(Resident.id).in_(ids))).scalars()}


# --- 婚育证明 ---------------------------------------------------------------------------------------------


def fp_documents_stmt(resident: Resident) -> Any:
    return (select(FpDocument).where(col(FpDocument.resident_id) == resident.id)
            .order_by(col(FpDocument.created_at).desc(), col(FpDocument.id)))


def fp_documents(session: Session, resident: Resident) -> list[FpDocument]:
    return list(session.execute(fp_documents_stmt(resident)).scalars())


def _check_fp(issued_on: date | None, expires_on: date | None, status: str) -> None:
    service.check_dates(issued_on)
    today = city_today()
    if expires_on is not None and not 1900 <= expires_on.year <= today.year + 100:
        raise register_errors.DateOutOfRange()
    if issued_on is not None and expires_on is not None and issued_on > expires_on:
        raise FpDatesOrder()
    if status in (FpDocStatus.valid.value, FpDocStatus.temporary.value) and expires_on is not None \
            and expires_on < today:
        raise FpStatusExpired()


def create_fp_document(session: Session, actor: Actor, resident: Resident, body: FpDocumentCreate) -> FpDocument:
    require_registered(resident)
    _check_fp(body.issued_on, body.expires_on, body.status.value)
    now = utcnow()
    doc = FpDocument(resident_id=resident.id, district_code=resident.district_code, number=body.number,
                     issuing_division=body.issuing_division, issued_on=body.issued_on, expires_on=body.expires_on,
                     status=body.status.value, checked_at=now, checked_by=actor.user_id)
    session.add(doc)
    session.flush()
    service.refresh_key_person(session, resident)
    events.emit(session, FpDocumentChanged(doc, resident))
    return doc


def get_fp_document(session: Session, actor: Actor, doc_id: str) -> tuple[FpDocument, Resident]:
    row = session.execute(
        select(FpDocument, Resident)
        .join(Resident, col(Resident.id) == col(FpDocument.resident_id))
        .where(col(FpDocument.id) == doc_id, actor.area_filter(col(Resident.area_path)))
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound()
    return row[0], row[1]


def update_fp_document(session: Session, actor: Actor, doc: FpDocument, resident: Resident,
                       body: FpDocumentUpdate) -> FpDocument:
    if doc.version != body.version:
        raise StaleVersion({"current_version": doc.version})
    require_registered(resident)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"version"})
    if "status" in changes:
        if changes["status"] is None:
            raise FieldRequired({"field": "status"})
        changes["status"] = changes["status"].value
    merged = {k: changes.get(k, getattr(doc, k)) for k in ("issued_on", "expires_on", "status")}
    if {"issued_on", "expires_on", "status"} & changes.keys():
        _check_fp(merged["issued_on"], merged["expires_on"], merged["status"])
    status_changed = "status" in changes and changes["status"] != doc.status
    for key, value in changes.items():
        setattr(doc, key, value)
    now = utcnow()
    if status_changed:
        doc.checked_at, doc.checked_by = now, actor.user_id
    doc.version += 1
    doc.updated_at = now
    session.add(doc)
    session.flush()
    service.refresh_key_person(session, resident)
    if status_changed:
        events.emit(session, FpDocumentChanged(doc, resident))
    return doc


# --- reproductive health ----------------------------------------------------------------------------------


def health_out(resident: Resident, record: HealthRecord | None, today: date | None = None) -> HealthOut:
    today = today or city_today()
    children = []
    if record is not None:
        for child in json.loads(record.children or "[]"):
            born = date.fromisoformat(child["birth_date"])
            children.append(ChildOut(birth_date=born, sex=child["sex"], under_14=rules.age_on(born, today) < 14))
    return HealthOut(
        resident_id=resident.id,
        recorded=record is not None,
        contraception=record.contraception if record else None,
        contraception_since=record.contraception_since if record else None,
        pregnancy=record.pregnancy if record else PregnancyStatus.unknown,
        pregnancy_noted_on=record.pregnancy_noted_on if record else None,
        children=children,
        children_under_14=sum(c.under_14 for c in children),
        key_person=resident.key_person,
        updated_by=record.updated_by if record else None,
        updated_at=record.updated_at if record else None,
        version=record.version if record else 0,
    )


def read_health(session: Session, resident: Resident, purpose: HealthPurpose) -> HealthOut:
    record = session.get(HealthRecord, resident.id)
    service.audit_read(session, resident, "health", purpose.value)
    return health_out(resident, record)


HEALTH_FIELDS = ("contraception", "contraception_since", "pregnancy", "pregnancy_noted_on", "children")


def write_health(session: Session, actor: Actor, resident: Resident, body: HealthIn,
                 purpose: HealthPurpose) -> HealthOut:
    """Replace the record (the caller holds the resident's row lock, so creates cannot race)."""
    require_registered(resident)
    record = session.get(HealthRecord, resident.id)
    current = record.version if record is not None else 0
    if body.version != current:
        raise StaleVersion({"current_version": current})
    service.check_dates(body.contraception_since, body.pregnancy_noted_on, *(c.birth_date for c in body.children))
    if body.pregnancy == PregnancyStatus.pregnant and resident.sex != "F":
        raise PregnancySex()
    if any(c.birth_date <= resident.birth_date for c in body.children):
        raise ChildBirthDate()
    children = json.dumps(
        [{"birth_date": c.birth_date.isoformat(), "sex": c.sex.value}
         for c in sorted(body.children, key=lambda c: (c.birth_date, c.sex.value))],
        separators=(",", ":"),
    )
    values: dict[str, Any] = {
        "contraception": body.contraception.value if body.contraception else None,
        "contraception_since": body.contraception_since,
        "pregnancy": body.pregnancy.value,
        "pregnancy_noted_on": body.pregnancy_noted_on,
        "children": children,
    }
    if record is None:
        record = HealthRecord(resident_id=resident.id, district_code=resident.district_code, **values)
        changed = [k for k, v in values.items() if v not in (None, "[]")]
    else:
        changed = [k for k, v in values.items() if getattr(record, k) != v]
        for key, value in values.items():
            setattr(record, key, value)
        record.version += 1
        record.district_code = resident.district_code
    record.updated_by, record.updated_at = actor.user_id, utcnow()
    session.add(record)
    session.flush()
    audit.record(session, "resident.write.health", target_type="residents", target_id=resident.id,
                 fields=changed, purpose=purpose.value)
    service.refresh_key_person(session, resident)
    return health_out(resident, record)
