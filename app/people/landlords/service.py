"""Landlords (房屋租赁户/业主) and the dwellings they let.

Scope: a landlord is visible when they own an active dwelling in the caller's area. A landlord with no dwelling
yet (registered, not attached) is visible to staff whose area touches the landlord's district, so the team can
attach them. `district_code` comes from the dwelling named at registration, else from the creator's area (its
district), and moves to the first dwelling attached to a landlord who has none. Only a landlord the caller sees
can be attached by id, and a clash on the ID number names the other record only when the caller sees it. A
landlord registered outside the caller's area is attached by registering them again with one of the caller's
dwellings and their name as registered (`create_landlord`, audited as `landlord.link`).

Reading a landlord's full ID number and phone is audited (`landlord.read.identity`); lists mask them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.errors import Conflict, NotFound, StaleVersion, Unprocessable
from app.core.queries import starts_with
from app.core.types import utcnow
from app.ledger import audit
from app.people import rules
from app.people.landlords.schemas import (
    DwellingBrief,
    DwellingLandlordIn,
    LandlordCreate,
    LandlordListItem,
    LandlordOut,
    LandlordUpdate,
)
from app.people.models import Landlord
from app.people.records.service import DEFAULT_PURPOSE, FieldRequired, flush_unique
from app.people.register import service
from app.places.models import Dwelling

DWELLINGS_SHOWN = 200


class LandlordExists(Conflict):
    code = "landlord_exists"
    en = "A landlord with this ID number is already registered; attach that landlord to the dwelling instead."
    zh = "该身份号码的房东已登记，请直接将其关联到房屋。"


class LandlordRegisteredElsewhere(Conflict):
    code = "landlord_registered_elsewhere"
    en = ("A landlord with this ID number is registered outside your area. To attach them to one of your "
          "dwellings, register them with that dwelling and their name exactly as registered.")
    zh = "该身份号码的房东已在其他辖区登记。如需关联到您辖区的房屋，请填写该房屋并按原登记姓名登记。"


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




# --- reading --------------------------------------------------------------------------------------------


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


def create_landlord(session: Session, actor: Actor, body: LandlordCreate) -> tuple[Landlord, bool]:
    """Register a landlord; (landlord, linked).

    An ID number already registered *in scope* is 409 `landlord_exists` naming that record (attach it
    instead). One registered outside the caller's area is never named: the worker who meets the landlord
    registers them with one of their own dwellings and the name as registered, and the existing record is
    attached to that dwelling (`linked`: the landlord now lets a unit here, so the record is in scope).
    Anything less is 409 `landlord_registered_elsewhere`, which names nothing.
    """
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
        return _link_existing(session, actor, existing, dwelling, body.name), True
    landlord = Landlord(name=body.name, id_number=number, phone=phone, district_code=district)
    session.add(landlord)
    flush_unique(session, LandlordExists)
    if dwelling is not None:
        _assign(dwelling, landlord.id)
        session.add(dwelling)
        session.flush()
    return landlord, False


def _visible_landlord_id(session: Session, actor: Actor, landlord_id: str) -> str | None:
    return session.execute(
        select(col(Landlord.id)).where(col(Landlord.id) == landlord_id, landlord_visible(actor))
    ).scalar_one_or_none()


def _link_existing(session: Session, actor: Actor, landlord_id: str, dwelling: Dwelling | None,
                   name: str) -> Landlord:
    if _visible_landlord_id(session, actor, landlord_id) is not None:
        raise LandlordExists({"landlord_id": landlord_id})
    landlord = session.get(Landlord, landlord_id, with_for_update=True)
    if landlord is None or dwelling is None or not rules.same_name(landlord.name, name):
        raise LandlordRegisteredElsewhere()
    _assign(dwelling, landlord.id)
    session.add(dwelling)
    session.flush()
    audit.record(session, "landlord.link", target_type="landlords", target_id=landlord.id,
                 detail={"dwelling_id": dwelling.id})
    return landlord


def update_landlord(session: Session, actor: Actor, landlord: Landlord, body: LandlordUpdate) -> Landlord:
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
            if _visible_landlord_id(session, actor, other) is None:
                raise LandlordRegisteredElsewhere()
            raise LandlordExists({"landlord_id": other})
    if "phone" in changes:
        changes["phone"] = service.normalise_phone(changes["phone"])
    for key, value in changes.items():
        setattr(landlord, key, value)
    landlord.version += 1
    landlord.updated_at = utcnow()
    session.add(landlord)
    flush_unique(session, LandlordExists)
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


def audit_landlord_read(session: Session, landlord_id: str, purpose: str | None,
                        district_code: str | None = None) -> None:
    audit.record(session, "landlord.read.identity", target_type="landlords", target_id=landlord_id,
                 fields=["id_number", "phone"], purpose=purpose or DEFAULT_PURPOSE, district_code=district_code)


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
        # A landlord the caller can see (from a search or a landlord_exists answer); one registered outside
        # the caller's area is attached by registering them with the dwelling (create_landlord), which
        # needs their name as well as their ID number.
        landlord = session.execute(
            select(Landlord).where(col(Landlord.id) == body.landlord_id, landlord_visible(actor))
            .with_for_update(of=Landlord)
        ).scalar_one_or_none()
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


