"""Landlord accounts and dwellings: the landlord's own routes under /partner/landlord (tag `partner-landlord`,
partner shapes only), self-registration (public), and the staff routes that confirm what landlords send."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response

from app.auth.deps import StaffActor, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep, SettingsDep, in_unit_of_work, public
from app.core.pagination import Page, PageDep, paginate
from app.core.security import hash_password
from app.sharing.landlords import service
from app.sharing.landlords.models import ClaimState
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
    OwnDwelling,
    RegisterReceived,
)
from app.sharing.partners.quotas import QUOTA_RESPONSES, landlord_quota

PARTNER_TAG = "partner-landlord"
public_router = APIRouter(prefix="/partner/landlord", tags=[PARTNER_TAG])
partner_router = APIRouter(prefix="/partner/landlord", tags=[PARTNER_TAG], dependencies=[landlord_quota()],
                        responses=QUOTA_RESPONSES)
router = APIRouter(tags=["landlord-partners"])

LandlordActor = Annotated[Actor, allow(Role.landlord)]
NOT_CONFIRMED: dict[int | str, dict[str, Any]] = {
    403: {"description": "`landlord_not_confirmed`: a worker has not confirmed the account yet"}}


@public_router.post("/register", status_code=202, response_model=RegisterReceived,
                    summary="A landlord registers themselves and their first dwelling (a worker confirms)",
                    responses={429: {"description": "`registration_throttled`: too many from this address; wait "
                                                    "for Retry-After"},
                               503: {"description": "Busy database; nothing was created, retry later"}})
@public
async def register(body: LandlordRegisterIn, request: Request, settings: SettingsDep) -> RegisterReceived:
    """Always 202 `received` for valid input, whether or not the phone or ID number already has an account
    (nothing is created then). Sign in with the phone once a worker of the community has confirmed."""
    number, phone = service.check_register_input(body)
    password_hash = await anyio.to_thread.run_sync(hash_password, body.password)  # slow: no connection held
    await in_unit_of_work(request, lambda s: service.self_register(s, settings, body, number, phone, password_hash))
    return RegisterReceived(status="received")


@partner_router.get("/me", response_model=LandlordMe, summary="My landlord account and whether it is confirmed")
def me(session: SessionDep, actor: LandlordActor) -> LandlordMe:
    return service.me(session, actor)


@partner_router.post("/dwelling-registrations", response_model=MyDwelling, status_code=201, responses={
    200: {"description": "The same address was registered before: that registration", "model": MyDwelling},
    **NOT_CONFIRMED}, summary="Register a dwelling I let (pending until a worker of its community confirms)")
def add_dwelling(body: DwellingClaimIn, response: Response, session: SessionDep, actor: LandlordActor) -> MyDwelling:
    claim, created = service.add_claim(session, actor, body)
    if not created:
        response.status_code = 200
    return service.my_dwelling(claim)


@partner_router.get("/dwelling-registrations", response_model=Page[MyDwelling], responses=NOT_CONFIRMED,
                    summary="The dwellings I registered and what became of them")
def my_registrations(session: SessionDep, actor: LandlordActor, page: PageDep) -> Page[MyDwelling]:
    rows, total = paginate(session, service.my_claims(actor), page)
    return Page(items=[service.my_dwelling(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@partner_router.get("/dwellings", response_model=Page[OwnDwelling], responses=NOT_CONFIRMED,
                    summary="My confirmed dwellings (report tenants against these ids)")
def my_dwellings(session: SessionDep, actor: LandlordActor, page: PageDep) -> Page[OwnDwelling]:
    rows, total = paginate(session, service.own_dwellings(actor), page)
    return Page(items=[OwnDwelling.model_validate(r) for r in rows], total=total, limit=page.limit,
                offset=page.offset)


# --- staff ----------------------------------------------------------------------------------------------


@router.post("/landlord-accounts", response_model=LandlordAccountOut, status_code=201,
             summary="Open a sign-in for a landlord you see (confirmed; the password must be changed)",
             responses={409: {"description": "`landlord_account_exists`, `username_taken` (the phone)"}})
def create_account(body: LandlordAccountCreate, session: SessionDep, actor: StaffActor) -> LandlordAccountOut:
    return service.account_out(service.create_account(session, actor, body))


@router.get("/landlord-accounts", response_model=Page[LandlordAccountOut],
            summary="Landlord accounts kept in your area (masked identifiers)")
def list_accounts(session: SessionDep, actor: StaffActor, page: PageDep,
                  confirmed: Annotated[bool | None, Query(description="false: the queue to confirm")] = None,
                  ) -> Page[LandlordAccountOut]:
    rows, total = paginate(session, service.accounts_query(actor, confirmed_only=confirmed), page)
    return Page(items=[service.account_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/landlord-accounts/{account_id}/confirm", response_model=LandlordAccountOut,
             summary="Confirm a self-registered landlord (you have seen their ID card)",
             responses={409: {"description": "`already_decided`, `landlord_identity_mismatch` (the landlord on "
                                             "record has another name), `landlord_account_exists`"}})
def confirm_account(account_id: str, body: DecisionIn, session: SessionDep, actor: StaffActor) -> LandlordAccountOut:
    return service.account_out(service.confirm_account(session, actor, account_id, body))


@router.post("/landlord-accounts/{account_id}/reject", status_code=204,
             summary="Turn down a self-registration (removed with its dwellings; the phone is free again)",
             responses={409: {"description": "`already_decided`: a confirmed account is not a registration"}})
def reject_account(account_id: str, body: AccountRejectIn, session: SessionDep, actor: StaffActor) -> None:
    service.reject_account(session, actor, account_id, body)


@router.get("/landlord-dwelling-claims", response_model=Page[ClaimOut],
            summary="Dwellings landlords registered in your area (state=pending: the queue)")
def list_claims(session: SessionDep, actor: StaffActor, page: PageDep,
                state: ClaimState | None = None) -> Page[ClaimOut]:
    rows, total = service.paginate_rows(session, service.claims_query(actor, state), page)
    return Page(items=[service.claim_out(c, a) for c, a in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/landlord-dwelling-claims/{claim_id}/confirm", response_model=ClaimOut,
             summary="Confirm: the dwelling (named, at the address, or created there) gets the landlord",
             responses={409: {"description": "`already_decided`, `account_not_confirmed`, `dwelling_has_landlord`"}})
def confirm_claim(claim_id: str, body: ClaimConfirmIn, session: SessionDep, actor: StaffActor) -> ClaimOut:
    claim = service.confirm_claim(session, actor, claim_id, body)
    return service.claim_out_of(session, claim)


@router.post("/landlord-dwelling-claims/{claim_id}/reject", response_model=ClaimOut,
             summary="Reject with a reason code", responses={409: {"description": "`already_decided`"}})
def reject_claim(claim_id: str, body: ClaimRejectIn, session: SessionDep, actor: StaffActor) -> ClaimOut:
    claim = service.reject_claim(session, actor, claim_id, body)
    return service.claim_out_of(session, claim)

