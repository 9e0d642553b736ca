"""Who is calling: the actor from a verified token and the database, and every route's access rule.

Every authenticated route declares who may call it with `allow(...)` (tests fail for a route that does
not); what the caller may *see* is the actor's scope (`app.core.actor`), applied in SQL by every query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.models import AuthSession, User, UserScope
from app.core import context
from app.core.actor import AREA_ROLES, CITY_WIDE_ROLES, Actor, AreaScope, Role
from app.core.db import UnitOfWork
from app.core.deps import ACCESS_RULE, SessionDep, SettingsDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import TokenInvalid, decode_access_token
from app.core.types import utcnow
from app.ledger import audit

LAST_SEEN_RESOLUTION = timedelta(seconds=60)
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


class SessionExpired(Unauthorized):
    code = "session_expired"
    en = "Your session has ended; sign in again."
    zh = "会话已结束，请重新登录。"
    keep_changes = True

    def __init__(self) -> None:
        super().__init__(headers=BEARER_CHALLENGE)


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"
    en = "You must change your password before continuing."
    zh = "请先修改密码再继续。"


def get_actor(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller, from a verified access token *and* the database.

    The token only names the user and the login session; the account (active?), the session (revoked,
    expired, idle?), the role and the scope are read on every request, so logging out, disabling an
    account, changing a role or an assignment takes effect on the very next request.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(headers=BEARER_CHALLENGE)
    try:
        claims = decode_access_token(settings, credentials.credentials)
    except TokenInvalid:
        raise Unauthorized(headers=BEARER_CHALLENGE) from None
    rows = session.execute(
        select(User, col(AuthSession.revoked_at), col(AuthSession.expires_at), col(AuthSession.last_seen_at),
               col(UserScope.area_path))
        .join(AuthSession, col(AuthSession.user_id) == col(User.id))
        .outerjoin(UserScope, col(UserScope.user_id) == col(User.id))
        .where(col(User.id) == claims["sub"], col(AuthSession.id) == claims["sid"])
        .order_by(col(UserScope.area_path))
    ).all()
    if not rows:
        raise Unauthorized(headers=BEARER_CHALLENGE)
    user, revoked_at, expires_at, last_seen_at, _ = rows[0]
    _check_login(session, settings.idle_timeout_minutes, claims["sid"], user, revoked_at, expires_at, last_seen_at)
    try:
        role = Role(user.role)
    except ValueError:  # a role this code does not know: no access at all
        raise Forbidden() from None
    prefixes: tuple[str, ...] | None = None if role in CITY_WIDE_ROLES else ()
    if role in AREA_ROLES:
        prefixes = tuple(path for *_, path in rows if path is not None)
    ctx = context.current()
    ctx.actor_id, ctx.actor_role = user.id, role.value
    return Actor(user.id, user.username, role, claims["sid"], AreaScope(prefixes), user.must_change_password)


def _check_login(session: Session, idle_minutes: int, session_id: str, user: User, revoked_at: datetime | None,
                 expires_at: datetime, last_seen_at: datetime) -> None:
    """The account and the login must be live; record activity (at most once a minute) or an idle end."""
    now = utcnow()
    if not user.active or revoked_at is not None or expires_at <= now:
        raise SessionExpired()
    idle = now - last_seen_at > timedelta(minutes=idle_minutes)
    if idle or now - last_seen_at > LAST_SEEN_RESOLUTION:
        uow = UnitOfWork.of(session)
        assert uow is not None, "get_actor runs in a request's unit of work"
        uow.side_write(lambda s: _touch(s, session_id, "idle" if idle else None))
    if idle:
        raise SessionExpired()


def _touch(session: Session, session_id: str, revoke: str | None) -> None:
    login = session.get(AuthSession, session_id)
    if login is None:
        return
    login.last_seen_at = utcnow()
    if revoke and login.revoked_at is None:
        login.revoked_at, login.revoked_reason = utcnow(), revoke
        audit.record(session, "auth.session_" + revoke, target_type="auth_session", target_id=session_id,
                     outcome="denied")
    session.add(login)


CurrentActor = Annotated[Actor, Depends(get_actor)]


def allow(*roles: Role, password_expired_ok: bool = False) -> Any:
    """The access rule of a route: the roles that may call it at all (others get 403)."""
    allowed = frozenset(roles)

    async def rule(actor: CurrentActor) -> Actor:  # async: no I/O, so no hop to the thread pool
        if actor.must_change_password and not password_expired_ok:
            raise PasswordChangeRequired()
        if actor.role not in allowed:
            raise Forbidden()
        return actor

    setattr(rule, ACCESS_RULE, allowed)
    return Depends(rule)


ALL_USERS = tuple(Role)
AdminActor = Annotated[Actor, allow(Role.admin)]
StaffActor = Annotated[Actor, allow(Role.worker, Role.supervisor, Role.admin)]
AuditorActor = Annotated[Actor, allow(Role.auditor)]
AnyActor = Annotated[Actor, allow(*ALL_USERS)]
