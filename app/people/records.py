"""Records around a resident: landlords and their dwellings, tenancies, 婚育证明 (family-planning documents)
and the reproductive-health record. The dossier (PIPL access) is in rights.py, retention in retention.py.

Scope:
- a resident's records follow the resident (`service.get_resident`: in the caller's area or 404);
- a landlord is visible when they own an active dwelling in the caller's area. A landlord with no
  dwelling yet (registered, not attached) is visible to staff whose area touches the landlord's district,
  so the team can attach them. `district_code` comes from the dwelling named at registration, else from
  the creator's area (its district), and moves to the first dwelling attached to a landlord who has none.

Sensitive reads (ID numbers, 婚育证明, reproductive health, the dossier) are audited with a field group and
a purpose; writes are audited automatically (field names only), health writes also with their purpose.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.audit import service as audit
from app.core.deps import Actor
from app.core.errors import Conflict, NotFound, StaleVersion, Unprocessable
from app.core.queries import starts_with
from app.core.types import city_today, utcnow
from app.people import rules, service
from app.people.models import (
    FpDocStatus,
    FpDocument,
    HealthRecord,
    Landlord,
    PregnancyStatus,
    Resident,
    ResidentStatus,
    Tenancy,
)
from app.people.record_schemas import (
    ChildOut,
    DwellingBrief,
    DwellingLandlordIn,
    FpDocumentCreate,
    FpDocumentUpdate,
    HealthIn,
    HealthOut,
    HealthPurpose,
    LandlordCreate,
    LandlordListItem,
    LandlordOut,
    LandlordUpdate,
    TenancyOut,
)
from app.places.models import Dwelling

DWELLINGS_SHOWN = 200
DEFAULT_PURPOSE = "case_work"

# --- errors ---------------------------------------------------------------------------------------------


class LandlordExists(Conflict):
    code = "landlord_exists"
    en = "A landlord with this ID number is already registered; attach that landlord to the dwelling instead."
    zh = "该身份号码的房东已登记，请直接将其关联到房屋。"


class LandlordIdCheckDigit(Unprocessable):
    code = "id_check_digit"
    en = "The ID number's check character is wrong."
    zh = "身份号码校验位错误。"


class LandlordIdProvince(Unprocessable):
    code = "id_province_unknown"
    en = "The ID number's first two digits name no province (GB/T 2260)."
    zh = "身份号码前两位不是有效的省级行政区划代码（GB/T 2260）。"


class LandlordDistrictRequired(Unprocessable):
    code = "landlord_dwelling_required"
    en = "Name a dwelling for the new landlord: your account is not tied to one district."
    zh = "您的账号不属于某一区县，请为新房东指定一处房屋。"


class DwellingHasLandlord(Conflict):
    code = "dwelling_has_landlord"
    en = "The dwelling already has a landlord; change it with PUT /dwellings/{id}/landlord."
    zh = "该房屋已有房东，请通过更换房东接口修改。"


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
        raise service.ResidentNotActive()


def _flush_unique(session: Session, error: type[Conflict], details: Any = None) -> None:
    """Flush inside a savepoint so a unique-constraint race is a 409, not a 500 (PostgreSQL aborts the
    transaction on an error outside a savepoint)."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise error(details) from None


# --- landlords --------------------------------------------------------------------------------------------


def actor_districts(actor: Actor) -> set[str] | None:
    """District codes the actor's area touches; None when it is the whole city (or a city-level scope)."""
    if actor.area_prefixes is None:
        return None
    codes: set[str] = set()
    for prefix in actor.area_prefixes:
        parts = [p for p in prefix.split("/") if p]
        if len(parts) < 2:
            return None
        codes.add(parts[1])
    return codes


def landlord_visible(actor: Actor) -> ColumnElement[bool]:
    if actor.city_wide:
        return true()
    # Driven by the dwellings' area index (one hashed sub-plan), not a probe per landlord.
    owns_here = col(Landlord.id).in_(
        select(col(Dwelling.landlord_id)).where(col(Dwelling.landlord_id).is_not(None), col(Dwelling.active),
                                               actor.area_filter(col(Dwelling.area_path)))
    )
    owns_any = (select(col(Dwelling.id))
                .where(col(Dwelling.landlord_id) == col(Landlord.id), col(Dwelling.active)).exists())
    districts = actor_districts(actor)
    unattached: ColumnElement[bool] = ~owns_any
    if districts is not None:
        unattached = and_(~owns_any, col(Landlord.district_code).in_(sorted(districts)))
    return or_(owns_here, unattached)


def get_landlord(session: Session, actor: Actor, landlord_id: str, *, for_update: bool = False) -> Landlord:
    stmt = select(Landlord).where(col(Landlord.id) == landlord_id, landlord_visible(actor))
    if for_update:
        stmt = stmt.with_for_update(of=Landlord)
    landlord = session.execute(stmt).scalar_one_or_none()
    if landlord is None:
        raise NotFound()
    return landlord


def search_landlords(actor: Actor, *, q: str | None = None, id_number: str | None = None) -> Any:
    stmt = select(Landlord).where(landlord_visible(actor))
    if id_number:
        stmt = stmt.where(col(Landlord.id_number) == _normalised_id(id_number))
    if q:
        stmt = stmt.where(starts_with(col(Landlord.name), q))
    return stmt.order_by(col(Landlord.name), col(Landlord.id))


def _normalised_id(raw: str) -> str:
    value = rules.normalise_digits(raw).upper()
    return rules.upgrade_15(value) if rules.ID15.match(value) else value


def _landlord_id_number(raw: str) -> str:
    parsed = service.parse_id_number(raw)
    if not parsed.check_ok:
        raise LandlordIdCheckDigit()
    if not parsed.province_ok:
        raise LandlordIdProvince()
    return parsed.number


def _creator_district(actor: Actor) -> str:
    districts = actor_districts(actor)
    if not districts:
        raise LandlordDistrictRequired()
    return sorted(districts)[0]


def create_landlord(session: Session, actor: Actor, body: LandlordCreate) -> Landlord:
    number = _landlord_id_number(body.id_number)
    phone = service.normalise_phone(body.phone)
    dwelling = None
    if body.dwelling_id:
        dwelling = _dwelling_for_update(session, actor, body.dwelling_id)
        if dwelling.landlord_id is not None:
            raise DwellingHasLandlord({"landlord_id": dwelling.landlord_id})
    district = dwelling.district_code if dwelling else _creator_district(actor)
    existing = session.execute(select(col(Landlord.id)).where(col(Landlord.id_number) == number)).scalar_one_or_none()
    if existing is not None:
        raise LandlordExists({"landlord_id": existing})
    landlord = Landlord(name=body.name, id_number=number, phone=phone, district_code=district)
    session.add(landlord)
    _flush_unique(session, LandlordExists)
    if dwelling is not None:
        _assign(dwelling, landlord.id)
        session.add(dwelling)
        session.flush()
    return landlord


def update_landlord(session: Session, landlord: Landlord, body: LandlordUpdate) -> Landlord:
    if landlord.version != body.version:
        raise StaleVersion({"current_version": landlord.version})
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if "name" in changes and changes["name"] is None:
        raise FieldRequired({"field": "name"})
    if "id_number" in changes:
        if changes["id_number"] is None:
            raise FieldRequired({"field": "id_number"})
        changes["id_number"] = _landlord_id_number(changes["id_number"])
        other = session.execute(
            select(col(Landlord.id)).where(col(Landlord.id_number) == changes["id_number"],
                                           col(Landlord.id) != landlord.id)
        ).scalar_one_or_none()
        if other is not None:
            raise LandlordExists({"landlord_id": other})
    if "phone" in changes:
        changes["phone"] = service.normalise_phone(changes["phone"])
    for key, value in changes.items():
        setattr(landlord, key, value)
    landlord.version += 1
    landlord.updated_at = utcnow()
    session.add(landlord)
    _flush_unique(session, LandlordExists)
    return landlord


def landlord_out(session: Session, actor: Actor, landlord: Landlord) -> LandlordOut:
    dwellings = session.execute(
        select(Dwelling)
        .where(col(Dwelling.landlord_id) == landlord.id, col(Dwelling.active),
               actor.area_filter(col(Dwelling.area_path)))
        .order_by(col(Dwelling.address), col(Dwelling.id))
        .limit(DWELLINGS_SHOWN)
    ).scalars().all()
    return LandlordOut.model_validate(
        {**landlord.model_dump(), "dwellings": [DwellingBrief.model_validate(d) for d in dwellings]}
    )


def landlord_list_item(landlord: Landlord) -> LandlordListItem:
    return LandlordListItem.model_validate(
        {**landlord.model_dump(), "id_number_masked": rules.mask_id(landlord.id_number),
         "phone_masked": rules.mask_phone(landlord.phone)}
    )


def audit_landlord_read(session: Session, landlord_id: str, purpose: str | None) -> None:
    audit.record(session, "landlord.read.identity", target_type="landlords", target_id=landlord_id,
                 fields=["id_number", "phone"], purpose=purpose or DEFAULT_PURPOSE)


def audit_landlord_search(session: Session, results: int) -> None:
    audit.record(session, "landlord.search", target_type="landlords", fields=["id_number"],
                 detail={"results": results}, purpose="lookup")


def _dwelling_for_update(session: Session, actor: Actor, dwelling_id: str) -> Dwelling:
    dwelling = session.execute(
        select(Dwelling)
        .where(col(Dwelling.id) == dwelling_id, col(Dwelling.active), actor.area_filter(col(Dwelling.area_path)))
        .with_for_update()
    ).scalar_one_or_none()
    if dwelling is None:
        raise NotFound({"field": "dwelling_id"})
    return dwelling


def _assign(dwelling: Dwelling, landlord_id: str | None) -> None:
    dwelling.landlord_id = landlord_id
    dwelling.version += 1
    dwelling.updated_at = utcnow()


def set_dwelling_landlord(session: Session, actor: Actor, dwelling_id: str, body: DwellingLandlordIn) -> Dwelling:
    dwelling = _dwelling_for_update(session, actor, dwelling_id)
    if dwelling.version != body.version:
        raise StaleVersion({"current_version": dwelling.version})
    if body.landlord_id == dwelling.landlord_id:
        return dwelling
    if body.landlord_id is not None:
        # Any registered landlord may be attached (the id comes from a search or a landlord_exists answer):
        # one landlord often lets units in several communities.
        landlord = session.get(Landlord, body.landlord_id, with_for_update=True)
        if landlord is None:
            raise NotFound({"field": "landlord_id"})
        has_dwelling = session.execute(
            select(col(Dwelling.id)).where(col(Dwelling.landlord_id) == landlord.id, col(Dwelling.active)).limit(1)
        ).first()
        if has_dwelling is None and landlord.district_code != dwelling.district_code:
            landlord.district_code = dwelling.district_code  # listed where their first dwelling is
            session.add(landlord)
    _assign(dwelling, body.landlord_id)
    session.add(dwelling)
    session.flush()
    return dwelling


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
        raise service.DateOutOfRange()
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
    service.audit_read(session, resident.id, "health", purpose.value)
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
