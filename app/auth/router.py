from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from app.auth import service
from app.auth.deps import ALL_USERS, allow
from app.auth.models import User
from app.auth.schemas import LoginIn, PasswordChangeIn, RefreshIn, TokenOut
from app.core.actor import Actor
from app.core.deps import SessionDep, SettingsDep, in_unit_of_work, public
from app.core.errors import NotFound
from app.core.security import check_password

public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(prefix="/auth", tags=["auth"])

# These work even while a password change is pending (that is how the change gets made).
MeActor = Annotated[Actor, allow(*ALL_USERS, password_expired_ok=True)]


@public_router.post("/login", response_model=TokenOut, summary="Sign in with username and password",
                   responses={401: {"description": "Wrong name or password (`invalid_credentials`)"},
                              429: {"description": "Too many failed sign-ins for the name or the address "
                                                   "(`login_locked`); wait for Retry-After"},
                              503: {"description": "Busy database; nothing was counted, retry later"}})
@public
async def login(body: LoginIn, request: Request, settings: SettingsDep) -> TokenOut:
    # Three steps, the middle one with no connection held: the argon2 check takes a third of a second, and a
    # morning of sign-ins must not keep every other request from the database (docs/CONVENTIONS.md).
    async with service.one_at_a_time(body.username):  # one name's sign-ins in turn, as the row lock did
        attempt = await in_unit_of_work(request, lambda session: service.login_start(session, settings, body.username))
        ok, new_hash = await check_password(body.password, attempt.password_hash)
        user, access, refresh, expires_in = await in_unit_of_work(
            request, lambda session: service.login_finish(session, settings, attempt, ok, new_hash))
    return TokenOut(access_token=access, refresh_token=refresh, expires_in=expires_in,
                    must_change_password=user.must_change_password)


@public_router.post("/refresh", response_model=TokenOut, summary="Exchange a refresh token (rotates it)",
                   responses={401: {"description": "Unknown, used or expired refresh token (`refresh_token_invalid`)"}})
@public
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> TokenOut:
    user, access, new_refresh, expires_in = service.refresh(session, settings, body.refresh_token)
    return TokenOut(access_token=access, refresh_token=new_refresh, expires_in=expires_in,
                    must_change_password=user.must_change_password)


@router.post("/logout", status_code=204, summary="End this session (its tokens stop working at once)")
def logout(session: SessionDep, actor: MeActor) -> None:
    service.logout(session, actor.session_id)


@router.post("/password", status_code=204,
             summary="Change my password (the current one is required; other sessions end)")
def change_password(body: PasswordChangeIn, session: SessionDep, settings: SettingsDep, actor: MeActor) -> None:
    user = session.get(User, actor.user_id, with_for_update=True)
    if user is None:
        raise NotFound()
    service.change_password(session, settings, user, actor.session_id, body.old_password, body.new_password)
