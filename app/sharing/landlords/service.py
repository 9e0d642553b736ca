"""Landlord accounts and the dwellings landlords register (docs/sharing.md, "Landlords").

A landlord is a person: a `users` row with role `landlord` whose username is their mobile number, signing in
through POST /auth/login like staff. The account acts for a `landlords` record only once a worker has
confirmed it (`LandlordScope.landlord_id`); until then every partner route but `/partner/landlord/me` answers
403 `landlord_not_confirmed`. A worker creates an account for a landlord they see (confirmed at once, initial
password to change at first sign-in), or the landlord registers themselves with their first dwelling and a
worker of that dwelling's community confirms both.

Self-registration is public: it answers the same 202 whether or not the phone or the ID number already has an
account (nothing is created then, and the event is audited), and an address may register a few times an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.accounts.service import UsernameTaken
from app.auth.models import LoginThrottle, User
from app.auth.service import check_password_policy
from app.core import context
from app.core.actor import Actor, Role, Scope
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, StaleVersion
from app.core.pagination import PageParams
from app.core.security import hash_password, keyed_digest
from app.core.types import utcnow
from app.ledger import audit
from app.people import rules
from app.people.landlords import service as landlords
from app.people.models import Landlord
from app.people.register.service import normalise_phone, parse_id_number
from app.places import dwellings
from app.places.models import Division, Dwelling, Level
from app.places.schemas import DwellingCreate
from app.sharing.landlords.errors import (
    AccountAreaRequired,
    AlreadyConfirmed,
    DwellingHasOtherLandlord,
    DwellingNotInCommunity,
    IdentityMismatch,
    LandlordAccountExists,
    LandlordNotConfirmed,
    NotACommunity,
    PhoneRequired,
    RegistrationThrottled,
)
from app.sharing.landlords.models import ClaimState, DwellingClaim, LandlordAccount
from app.sharing.landlords.schemas import (
    AccountRejectIn,
    ClaimConfirmIn,
    ClaimOut,
    ClaimRejectIn,
    DecisionIn,
    DwellingClaimIn,
    LandlordAccountCreate,
    LandlordAccountOut,
    LandlordMe,
    LandlordRegisterIn,
    MyDwelling,
)

REGISTRATIONS_PER_HOUR = 5  # per client address


class AccountNotConfirmed(Conflict):
    code = "account_not_confirmed"
    en = "Confirm the landlord's account before their dwellings."
    zh = "请先确认房东账号，再确认其房屋。"


# --- the landlord's scope -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandlordScope:
    """A landlord sees no area: only their own landlord record's dwellings and tenants, asked by id."""

    account_id: str
    landlord_id: str | None  # None until a worker confirms the account

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]:
        return false()

    def sees_path(self, path: str) -> bool:
        return False


def landlord_scope(session: Session, user_id: str) -> Scope:
    """The scope builder registered for `Role.landlord` in app/wiring.py."""
    row = session.connection().execute(
        select(col(LandlordAccount.landlord_id), col(LandlordAccount.confirmed_at))
        .where(col(LandlordAccount.user_id) == user_id)
    ).first()
    confirmed = row is not None and row[1] is not None
    return LandlordScope(user_id, row[0] if confirmed and row is not None else None)


def confirmed(actor: Actor) -> LandlordScope:
    """The caller's scope, refused (403 `landlord_not_confirmed`) until a worker has confirmed the account."""
    scope = actor.scope
    if not isinstance(scope, LandlordScope) or scope.landlord_id is None:
        raise LandlordNotConfirmed()
    return scope


def me(session: Session, actor: Actor) -> LandlordMe:
    account = session.get(LandlordAccount, actor.user_id)
    if account is None:
        raise NotFound()
    return LandlordMe(username=actor.username, name=account.name, phone_masked=rules.mask_phone(account.phone) or "",
                      confirmed=account.confirmed_at is not None, community_id=account.community_id)


# --- accounts -------------------------------------------------------------------------------------------


def check_register_input(body: LandlordRegisterIn) -> tuple[str, str]:
    """(ID number, phone) normalised, and the password checked, before the slow hash (no database)."""
    number = id_number(body.id_number)
    phone = normalise_phone(body.phone)
    if phone is None:
        raise PhoneRequired()
    check_password_policy(body.password, phone)
    return number, phone


def id_number(raw: str) -> str:
    parsed = parse_id_number(raw)
    if not parsed.check_ok:
        raise landlords.LandlordIdCheckDigit()
    if not parsed.province_ok:
        raise landlords.LandlordIdProvince()
    return parsed.number


def community(session: Session, community_id: str) -> Division:
    found = session.execute(
        select(Division).where(col(Division.id) == community_id, col(Division.level) == Level.community.value,
                               col(Division.active))
    ).scalar_one_or_none()
    if found is None:
        raise NotACommunity()
    return found


def _throttle(session: Session, settings: Settings) -> None:
    """At most REGISTRATIONS_PER_HOUR self-registrations per client address (a keyed digest: no address kept)."""
    key = keyed_digest(settings.throttle_secret, "landlord-register:" + (context.current().client_ip or "-"))
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(key=key, failures=0, window_started_at=now)
                    .on_conflict_do_nothing(index_elements=["key"]))
    row = session.execute(select(LoginThrottle).where(col(LoginThrottle.key) == key).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one()
    if now - row.window_started_at > timedelta(hours=1):
        row.failures, row.window_started_at = 0, now
    if row.failures >= REGISTRATIONS_PER_HOUR:
        retry = max(1, int((row.window_started_at + timedelta(hours=1) - now).total_seconds()))
        raise RegistrationThrottled({"retry_after_seconds": retry}, headers={"Retry-After": str(retry)})
    row.failures += 1
    session.add(row)


def self_register(session: Session, settings: Settings, body: LandlordRegisterIn, number: str, phone: str,
                  password_hash: str) -> None:
    """A pending account and its first dwelling; nothing at all (same answer) when the phone or the ID number
    already has an account."""
    _throttle(session, settings)
    place = community(session, body.community_id)
    taken = session.execute(select(col(User.id)).where(col(User.username) == phone)).first() is not None or \
        session.execute(select(col(LandlordAccount.user_id)).where(col(LandlordAccount.id_number) == number)
                        ).first() is not None
    if not taken:
        try:
            with session.begin_nested():
                user = User(username=phone, display_name=body.name, role=Role.landlord.value,
                            password_hash=password_hash)
                session.add(user)
                session.flush()
                session.add(LandlordAccount(user_id=user.id, name=body.name, id_number=number, phone=phone,
                                            community_id=place.id, area_path=place.path,
                                            district_code=_district(place.path)))
                session.flush()
                session.add(DwellingClaim(account_id=user.id, community_id=place.id, area_path=place.path,
                                          district_code=_district(place.path), address=body.address,
                                          kind=body.kind.value))
                session.flush()
        except IntegrityError:
            taken = True  # a concurrent registration of the same phone or ID number won
    audit.record(session, "landlord.register", target_type="landlord_accounts", area_path=place.path,
                 district_code=_district(place.path), detail={"created": not taken})


def _district(path: str) -> str:
    return path.strip("/").split("/")[1]


def _account_area(session: Session, actor: Actor, landlord: Landlord) -> tuple[str | None, str]:
    """(community id, area path) where the account is kept: the community of one of the landlord's dwellings in
    the caller's area, else the caller's own first division."""
    dwelling = session.execute(
        select(Dwelling).where(col(Dwelling.landlord_id) == landlord.id, col(Dwelling.active),
                               actor.area_filter(col(Dwelling.area_path)))
        .order_by(col(Dwelling.address), col(Dwelling.id)).limit(1)
    ).scalar_one_or_none()
    if dwelling is not None:
        place = session.get(Division, dwelling.community_id)
        assert place is not None
        return place.id, place.path
    if not actor.area_prefixes:
        raise AccountAreaRequired()
    return None, actor.area_prefixes[0]


def create_account(session: Session, actor: Actor, body: LandlordAccountCreate) -> LandlordAccount:
    """A worker opens an account for a landlord they see: confirmed at once, the password to change."""
    landlord = landlords.get_landlord(session, actor, body.landlord_id, for_update=True)
    phone = normalise_phone(body.phone) if body.phone else landlord.phone
    if not phone:
        raise PhoneRequired()
    held = select(col(LandlordAccount.user_id)).where(col(LandlordAccount.landlord_id) == landlord.id)
    if landlord.id_number is not None:
        held = held.union(select(col(LandlordAccount.user_id))
                          .where(col(LandlordAccount.id_number) == landlord.id_number))  # type: ignore[assignment]
    if session.execute(held).first() is not None:
        raise LandlordAccountExists()
    if session.execute(select(col(User.id)).where(col(User.username) == phone)).first() is not None:
        raise UsernameTaken()
    check_password_policy(body.initial_password, phone)
    community_id, area_path = _account_area(session, actor, landlord)
    user = User(username=phone, display_name=landlord.name, role=Role.landlord.value,
                password_hash=hash_password(body.initial_password), must_change_password=True)
    session.add(user)
    session.flush()
    now = utcnow()
    account = LandlordAccount(user_id=user.id, landlord_id=landlord.id, name=landlord.name,
                              id_number=landlord.id_number, phone=phone, community_id=community_id,
                              area_path=area_path, district_code=_district(area_path), created_by=actor.user_id,
                              confirmed_at=now, confirmed_by=actor.user_id)
    session.add(account)
    session.flush()
    return account


def _scoped_account(session: Session, actor: Actor, user_id: str, *, for_update: bool = False) -> LandlordAccount:
    stmt = select(LandlordAccount).where(col(LandlordAccount.user_id) == user_id,
                                         actor.area_filter(col(LandlordAccount.area_path)))
    if for_update:
        stmt = stmt.with_for_update()
    account = session.execute(stmt).scalar_one_or_none()
    if account is None:
        raise NotFound()
    return account


def confirm_account(session: Session, actor: Actor, user_id: str, body: DecisionIn) -> LandlordAccount:
    """Tie a self-registered account to the landlord record with its ID number (created now if there is none).
    The worker has seen the person's ID card; the name on record must match."""
    account = _scoped_account(session, actor, user_id, for_update=True)
    if account.version != body.version:
        raise StaleVersion({"current_version": account.version})
    if account.confirmed_at is not None:
        raise AlreadyConfirmed()
    landlord = session.execute(select(Landlord).where(col(Landlord.id_number) == account.id_number)
                               .with_for_update()).scalar_one_or_none()
    if landlord is None:
        landlord = Landlord(name=account.name, id_number=account.id_number, phone=account.phone,
                            district_code=account.district_code)
        session.add(landlord)
        session.flush()
    elif not rules.same_name(landlord.name, account.name):
        raise IdentityMismatch()
    elif session.execute(select(col(LandlordAccount.user_id))
                         .where(col(LandlordAccount.landlord_id) == landlord.id)).first() is not None:
        raise LandlordAccountExists()
    account.landlord_id, account.confirmed_at, account.confirmed_by = landlord.id, utcnow(), actor.user_id
    account.version += 1
    session.add(account)
    session.flush()
    return account


def reject_account(session: Session, actor: Actor, user_id: str, body: AccountRejectIn) -> None:
    """Turn down a self-registration: the account, its dwelling registrations and its sign-in are removed (the
    phone and ID number are free again; the audit log keeps the decision and its reason code)."""
    account = _scoped_account(session, actor, user_id, for_update=True)
    if account.version != body.version:
        raise StaleVersion({"current_version": account.version})
    if account.confirmed_at is not None:
        raise AlreadyConfirmed()
    for claim in session.execute(select(DwellingClaim).where(col(DwellingClaim.account_id) == user_id)).scalars():
        session.delete(claim)
    session.delete(account)
    session.flush()
    user = session.get(User, user_id)
    assert user is not None
    session.delete(user)  # its login sessions and refresh tokens go with it (ON DELETE CASCADE)
    session.flush()
    audit.record(session, "landlord.account_rejected", target_type="landlord_accounts", target_id=user_id,
                 area_path=account.area_path, district_code=account.district_code,
                 detail={"reason": body.reason.value})


def accounts_query(actor: Actor, *, confirmed_only: bool | None) -> Any:
    stmt = select(LandlordAccount).where(actor.area_filter(col(LandlordAccount.area_path)))
    if confirmed_only is not None:
        done = col(LandlordAccount.confirmed_at).is_not(None)
        stmt = stmt.where(done if confirmed_only else ~done)
    return stmt.order_by(col(LandlordAccount.created_at), col(LandlordAccount.user_id))


def account_out(account: LandlordAccount) -> LandlordAccountOut:
    return LandlordAccountOut.model_validate({
        **account.model_dump(), "id_number_masked": rules.mask_id(account.id_number) or "",
        "phone_masked": rules.mask_phone(account.phone) or "", "self_registered": account.created_by is None})


# --- dwellings ------------------------------------------------------------------------------------------


def add_claim(session: Session, actor: Actor, body: DwellingClaimIn) -> tuple[DwellingClaim, bool]:
    """(claim, created): registering the same address again is the same registration."""
    scope = confirmed(actor)
    place = community(session, body.community_id)
    existing = session.execute(
        select(DwellingClaim).where(col(DwellingClaim.account_id) == scope.account_id,
                                    col(DwellingClaim.community_id) == place.id,
                                    col(DwellingClaim.address) == body.address)
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    claim = DwellingClaim(account_id=scope.account_id, community_id=place.id, area_path=place.path,
                          district_code=_district(place.path), address=body.address, kind=body.kind.value)
    session.add(claim)
    session.flush()
    return claim, True


def my_claims(actor: Actor) -> Any:
    scope = confirmed(actor)
    return (select(DwellingClaim).where(col(DwellingClaim.account_id) == scope.account_id)
            .order_by(col(DwellingClaim.created_at), col(DwellingClaim.id)))


def own_dwellings(actor: Actor) -> Any:
    scope = confirmed(actor)
    return (select(Dwelling).where(col(Dwelling.landlord_id) == scope.landlord_id, col(Dwelling.active))
            .order_by(col(Dwelling.address), col(Dwelling.id)))


def my_dwelling(claim: DwellingClaim) -> MyDwelling:
    return MyDwelling.model_validate(claim.model_dump())


def paginate_rows(session: Session, stmt: Any, page: PageParams) -> tuple[list[Any], int]:
    """`paginate` for a statement that selects several entities (rows, not scalars)."""
    total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    return list(session.execute(stmt.limit(page.limit).offset(page.offset)).all()), total


def claims_query(actor: Actor, state: ClaimState | None) -> Any:
    stmt = (select(DwellingClaim, LandlordAccount)
            .join(LandlordAccount, col(LandlordAccount.user_id) == col(DwellingClaim.account_id))
            .where(actor.area_filter(col(DwellingClaim.area_path))))
    if state is not None:
        stmt = stmt.where(col(DwellingClaim.state) == state.value)
    return stmt.order_by(col(DwellingClaim.created_at), col(DwellingClaim.id))


def claim_out(claim: DwellingClaim, account: LandlordAccount) -> ClaimOut:
    return ClaimOut.model_validate({**claim.model_dump(), "landlord_id": account.landlord_id,
                                    "landlord_name": account.name})


def claim_out_of(session: Session, claim: DwellingClaim) -> ClaimOut:
    account = session.get(LandlordAccount, claim.account_id)
    assert account is not None
    return claim_out(claim, account)


def _pending_claim(session: Session, actor: Actor, claim_id: str, version: int) -> DwellingClaim:
    claim = session.execute(
        select(DwellingClaim).where(col(DwellingClaim.id) == claim_id,
                                    actor.area_filter(col(DwellingClaim.area_path))).with_for_update()
    ).scalar_one_or_none()
    if claim is None:
        raise NotFound()
    if claim.version != version:
        raise StaleVersion({"current_version": claim.version})
    if claim.state != ClaimState.pending.value:
        raise AlreadyConfirmed()
    return claim


def _decided(claim: DwellingClaim, actor: Actor, state: ClaimState) -> None:
    claim.state, claim.decided_by, claim.decided_at = state.value, actor.user_id, utcnow()
    claim.version += 1


def confirm_claim(session: Session, actor: Actor, claim_id: str, body: ClaimConfirmIn) -> DwellingClaim:
    """The dwelling (named, or the one at the address, or a new one there) gets the landlord."""
    claim = _pending_claim(session, actor, claim_id, body.version)
    account = session.get(LandlordAccount, claim.account_id)
    assert account is not None
    if account.landlord_id is None:
        raise AccountNotConfirmed()
    if body.dwelling_id is not None:
        dwelling = dwellings.get_dwelling(session, actor, body.dwelling_id)
        if dwelling.community_id != claim.community_id:
            raise DwellingNotInCommunity()
    else:
        found = session.execute(
            select(Dwelling).where(col(Dwelling.community_id) == claim.community_id,
                                   col(Dwelling.address) == claim.address, actor.area_filter(col(Dwelling.area_path)))
        ).scalar_one_or_none()
        dwelling = found or dwellings.create_dwelling(session, actor, DwellingCreate(
            community_id=claim.community_id, address=claim.address, kind=claim.kind))
    dwelling = session.execute(select(Dwelling).where(col(Dwelling.id) == dwelling.id).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one()
    if dwelling.landlord_id not in (None, account.landlord_id):
        raise DwellingHasOtherLandlord()
    if dwelling.landlord_id is None:
        dwelling.landlord_id, dwelling.updated_at = account.landlord_id, utcnow()
        dwelling.version += 1
        session.add(dwelling)
    claim.dwelling_id = dwelling.id
    _decided(claim, actor, ClaimState.confirmed)
    session.add(claim)
    session.flush()
    return claim


def reject_claim(session: Session, actor: Actor, claim_id: str, body: ClaimRejectIn) -> DwellingClaim:
    claim = _pending_claim(session, actor, claim_id, body.version)
    claim.reason = body.reason.value
    _decided(claim, actor, ClaimState.rejected)
    session.add(claim)
    session.flush()
    return claim
