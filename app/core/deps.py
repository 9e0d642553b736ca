"""Request dependencies: the unit of work, the authenticated actor and access rules.

Every authenticated route declares who may call it with `allow(...)` (tests fail for a route that does
not); what the caller may *see* is the actor's area scope, applied in SQL by `Actor.area_filter`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from app.audit import service as audit
from app.auth.models import AREA_ROLES, AuthSession, Role, User, UserScope
from app.core import context
from app.core.config import Settings, get_settings
from app.core.db import begin, get_engine, unit_of_work, writing
from app.core.errors import AppError, Forbidden, Unauthorized
from app.core.queries import starts_with
from app.core.security import TokenInvalid, decode_access_token
from app.core.types import utcnow
from app.places.models import Division

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
WRITE = "write_request"
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# Roles that see the whole city. Area roles see their assigned subtrees; any other role (the partner
# kinds, until the sharing domain gives them their own scope) sees nothing: scope fails closed.
CITY_WIDE_ROLES = frozenset({Role.admin, Role.auditor})
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent.

    Async, so opening it costs no hop to the thread pool: the Session object is created here without I/O and
    its transaction begins at its first statement, in the thread that runs it (a write request's with BEGIN
    IMMEDIATE on SQLite, through `writing`). Commit or rollback run in the thread pool.
    """
    write = request.method not in SAFE_METHODS
    engine = get_engine()
    session = Session(writing(engine) if write else engine, expire_on_commit=False)
    session.info[WRITE] = write
    try:
        yield session
    except AppError as exc:
        await run_in_threadpool(_failed, request, session, write, exc)
        raise
    except BaseException:
        session.close()  # here, not in the pool: a cancelled request must not leave its connection open
        raise
    else:
        await run_in_threadpool(_finish, session, write)


def _finish(session: Session, write: bool) -> None:
    try:
        if write:
            audit.seal_pending(session)
            session.commit()
        else:
            # Reads run in a read-only transaction; their audit records (sensitive reads) are
            # appended in a short write transaction before the response leaves.
            pending = audit.take_pending(session)
            session.rollback()
            if pending:
                begin(session, write=True)
                audit.seal_pending(session, pending)
                session.commit()
    finally:
        session.close()


def _failed(request: Request, session: Session, write: bool, exc: AppError) -> None:
    try:
        if exc.keep_changes and write:
            audit.seal_pending(session)
            session.commit()
    finally:
        session.close()  # rolls back whatever was not committed
    if exc.audit_outcome:
        _audit_failure(request, exc)


def _audit_failure(request: Request, exc: AppError) -> None:
    with unit_of_work() as side:
        audit.record(
            side,
            "http." + (exc.audit_outcome or "denied"),
            target_type="route",
            target_id=f"{request.method} {request.url.path}"[:100],
            outcome=exc.audit_outcome or "denied",
            status_code=exc.status,
            detail={"code": exc.code},
        )


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
async def _settings() -> Settings:  # async: a cached object, no hop to the thread pool
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]
bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/login")


@dataclass(frozen=True)
class Actor:
    user_id: str
    username: str
    role: Role
    session_id: str
    # Materialised division paths the actor works in; None means the whole city.
    area_prefixes: tuple[str, ...] | None
    must_change_password: bool = False

    @property
    def city_wide(self) -> bool:
        return self.area_prefixes is None

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]:
        """SQL condition: the row's area path lies inside the actor's scope.

        Given the row's `district_code` column too, the condition also names the districts, so the
        database can use (district_code, …) indexes and a distributed deployment prunes to those shards.
        """
        if self.area_prefixes is None:
            return true()
        if not self.area_prefixes:
            return false()
        inside = or_(*(starts_with(column, p) for p in self.area_prefixes))
        districts = self.district_codes
        if district_column is None or districts is None:
            return inside
        return and_(district_column.in_(districts), inside)

    @property
    def district_codes(self) -> list[str] | None:
        """The districts the scope lies in (None when it covers a whole city)."""
        if self.area_prefixes is None:
            return None
        codes = set()
        for prefix in self.area_prefixes:
            parts = [p for p in prefix.split("/") if p]
            if len(parts) < 2:
                return None
            codes.add(parts[1])
        return sorted(codes)

    def sees_path(self, path: str) -> bool:
        return self.area_prefixes is None or any(path.startswith(p) for p in self.area_prefixes)


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
    row = session.execute(
        select(User, AuthSession)
        .join(AuthSession, col(AuthSession.user_id) == col(User.id))
        .where(col(User.id) == claims["sub"], col(AuthSession.id) == claims["sid"])
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthorized(headers=BEARER_CHALLENGE)
    user, login = row
    if not user.active or login.revoked_at is not None or login.expires_at <= now:
        raise SessionExpired()
    if now - login.last_seen_at > timedelta(minutes=settings.idle_timeout_minutes):
        _touch_session(session, login.id, revoke="idle")
        raise SessionExpired()
    if now - login.last_seen_at > LAST_SEEN_RESOLUTION:
        _touch_session(session, login.id)
    try:
        role = Role(user.role)
    except ValueError:  # a role this code does not know: no access at all
        raise Forbidden() from None
    prefixes: tuple[str, ...] | None = None
    if role not in CITY_WIDE_ROLES:
        prefixes = ()
    if role in AREA_ROLES:
        prefixes = tuple(
            session.execute(
                select(col(Division.path))
                .join(UserScope, col(UserScope.division_id) == col(Division.id))
                .where(col(UserScope.user_id) == user.id)
                .order_by(col(Division.path))
            ).scalars()
        )
    ctx = context.current()
    ctx.actor_id, ctx.actor_role = user.id, role.value
    return Actor(user.id, user.username, role, login.id, prefixes, user.must_change_password)


def _touch_session(request_session: Session, session_id: str, revoke: str | None = None) -> None:
    """Record activity (or an idle revocation).

    A write request does it in its own transaction (which already holds the write lock); a read request,
    whose transaction is read-only, in a short side transaction.
    """
    if request_session.info.get(WRITE):
        _touch(request_session, session_id, revoke)
        return
    with unit_of_work() as side:
        _touch(side, session_id, revoke)


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
ACCESS_RULE = "__access_rule__"


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


def public(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint as deliberately unauthenticated (tests check the list)."""
    setattr(func, ACCESS_RULE, "public")
    return func


ALL_USERS = tuple(Role)
AdminActor = Annotated[Actor, allow(Role.admin)]
StaffActor = Annotated[Actor, allow(Role.worker, Role.supervisor, Role.admin)]
AuditorActor = Annotated[Actor, allow(Role.auditor)]
AnyActor = Annotated[Actor, allow(*ALL_USERS)]
