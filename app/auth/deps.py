"""Who is calling: the actor from a verified token and the database, and every route's access rule.

Every authenticated route declares who may call it with `allow(...)` (tests fail for a route that does
not); what the caller may *see* is the actor's scope (`app.core.actor`), applied in SQL by every query.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from app.auth.models import AuthSession, User, UserScope
from app.core import context
from app.core.actor import AREA_ROLES, CITY_WIDE_ROLES, NO_AREA, Actor, AreaScope, Role, Scope
from app.core.batches import RunAlone, batches_of
from app.core.config import Settings, get_settings
from app.core.db import UnitOfWork
from app.core.deps import ACCESS_RULE, OPENS_UNIT_OF_WORK, SessionDep, SettingsDep, request_unit_of_work
from app.core.errors import Forbidden, Unauthorized
from app.core.lean import Lean
from app.core.security import TokenInvalid, decode_access_token
from app.core.threads import durable, run_short
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


async def bearer_claims(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> dict[str, Any]:
    """The verified access token's claims (signature, algorithm, key id, issuer, audience, expiry, type).
    Async: CPU only, no hop to the thread pool."""
    return verified_claims(settings, credentials)


def verified_claims(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> dict[str, Any]:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(headers=BEARER_CHALLENGE)
    try:
        return decode_access_token(settings, credentials.credentials)
    except TokenInvalid:
        raise Unauthorized(headers=BEARER_CHALLENGE) from None


Claims = Annotated[dict[str, Any], Depends(bearer_claims)]


def get_actor(session: SessionDep, settings: SettingsDep, claims: Claims) -> Actor:
    """The caller, from a verified access token *and* the database (`load_actor`)."""
    return load_actor(session, settings, claims)


def load_actor(session: Session, settings: Settings, claims: dict[str, Any]) -> Actor:
    """The token only names the user and the login session; the account (active?), the session (revoked,
    expired, idle?), the role and the scope are read on every request, so logging out, disabling an
    account, changing a role or an assignment takes effect on the very next request.
    """
    # Core, not ORM entities: this runs on every request (one cached statement, plain rows).
    rows = ACTOR_QUERY.rows(session.connection(), {"user_id": claims["sub"], "session_id": claims["sid"]})
    if not rows:
        raise Unauthorized(headers=BEARER_CHALLENGE)
    user_id, username, display_name, role_name, active, must_change, revoked_at, expires_at, last_seen_at, _ = rows[0]
    _check_login(session, settings.idle_timeout_minutes, claims["sid"], active, revoked_at, expires_at, last_seen_at)
    try:
        role = Role(role_name)
    except ValueError:  # a role this code does not know: no access at all
        raise Forbidden() from None
    scope: Scope
    if role in CITY_WIDE_ROLES:
        scope = AreaScope(None)
    elif role in AREA_ROLES:
        scope = AreaScope(tuple(row[-1] for row in rows if row[-1] is not None))
    else:
        builder = PARTNER_SCOPES.get(role)
        scope = builder(session, user_id) if builder is not None else NO_AREA
    ctx = context.current()
    ctx.actor_id, ctx.actor_role = user_id, role.value
    return Actor(user_id, username, role, claims["sid"], scope, bool(must_change), display_name)


# A partner role's scope (a landlord's own dwellings, a police station's jurisdiction) comes from the sharing
# domain, which registers a builder here in `app/wiring.py`; a partner role without one sees nothing.
ScopeBuilder = Callable[[Session, str], Scope]
PARTNER_SCOPES: dict[Role, ScopeBuilder] = {}


def register_partner_scope(role: Role, builder: ScopeBuilder) -> None:
    """Called from `app/wiring.py` only: how a partner role's scope is read for a user id."""
    assert role not in AREA_ROLES and role not in CITY_WIDE_ROLES, "staff scopes are built here"
    PARTNER_SCOPES[role] = builder


# The user, the login session and the scope in one statement.
ACTOR_QUERY = Lean(
    select(col(User.id), col(User.username), col(User.display_name), col(User.role), col(User.active),
           col(User.must_change_password),
           col(AuthSession.revoked_at), col(AuthSession.expires_at), col(AuthSession.last_seen_at),
           col(UserScope.area_path))
    .join(AuthSession, col(AuthSession.user_id) == col(User.id))
    .outerjoin(UserScope, col(UserScope.user_id) == col(User.id))
    .where(col(User.id) == bindparam("user_id"), col(AuthSession.id) == bindparam("session_id"))
    .order_by(col(UserScope.area_path))
)


def _check_login(session: Session, idle_minutes: int, session_id: str, active: bool, revoked_at: datetime | None,
                 expires_at: datetime, last_seen_at: datetime) -> None:
    """The account and the login must be live; record activity (at most once a minute) or an idle end."""
    now = utcnow()
    if not active or revoked_at is not None or expires_at <= now:
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


def check_rule(actor: Actor, allowed: frozenset[Role], password_expired_ok: bool) -> Actor:
    if actor.must_change_password and not password_expired_ok:
        raise PasswordChangeRequired()
    if actor.role not in allowed:
        raise Forbidden()
    return actor


def allow(*roles: Role, password_expired_ok: bool = False) -> Any:
    """The access rule of a route: the roles that may call it at all (others get 403)."""
    allowed = frozenset(roles)

    async def rule(actor: CurrentActor) -> Actor:  # async: no I/O, so no hop to the thread pool
        return check_rule(actor, allowed, password_expired_ok)

    setattr(rule, ACCESS_RULE, allowed)
    return Depends(rule)


# --- one hop: the hot routes' whole synchronous part in one trip to the thread pool ------------------------

Work = Callable[[Session, Actor], Any]


@dataclass(frozen=True)
class Hop:
    """A route's database work — the caller's check, the route's own statements, the response's encoding and
    the commit — in one trip to the thread pool instead of four (the actor, the endpoint, the response's
    validation and the unit of work's end each take one otherwise; docs/performance.md).

    For the routes every phone calls all day. The route is `async def`, declares `hop: SomeHop` in place of
    `actor: SomeActor`, and answers `await hop.run(work, status)`: `work(session, actor)` returns the response
    model (encoded with its own `model_dump_json`, so it must be the declared `response_model`) or a Response.
    """

    session: Session
    settings: Settings
    claims: dict[str, Any]
    allowed: frozenset[Role]
    password_expired_ok: bool

    async def run(self, work: Work, status: int = 200, headers: dict[str, str] | None = None, *,
                  long: bool = False, batched: bool = False) -> Response:
        """The hop, on the short lane (app.core.threads); `long=True` for work that may hold its thread for a
        good part of a second (a push), which runs on the common pool instead. `batched=True` for a write of one
        record: it shares a transaction and a commit with the others arriving meanwhile
        (app.core.batches), the caller's check included; if it fails there, it runs here alone."""
        uow = UnitOfWork.of(self.session)
        assert uow is not None
        batches = batches_of(uow.engine) if batched else None
        if batches is not None:
            try:
                response: Response = await asyncio.wrap_future(
                    batches.submit(lambda session: self._answer(session, work, status, headers)))
            except RunAlone:
                pass
            else:
                uow.close_unused()
                return response
        hop_ = run_in_threadpool if long else run_short
        response, pending = await hop_(self._run, work, status, headers)
        await durable(pending)  # a read's audit record, until the group commit has written it
        return response

    def _answer(self, session: Session, work: Work, status: int, headers: dict[str, str] | None) -> Response:
        actor = check_rule(load_actor(session, self.settings, self.claims), self.allowed, self.password_expired_ok)
        result = work(session, actor)
        return result if isinstance(result, Response) else model_response(result, status, headers)

    def _run(self, work: Work, status: int, headers: dict[str, str] | None) -> tuple[Response, Future[None] | None]:
        response = self._answer(self.session, work, status, headers)
        uow = UnitOfWork.of(self.session)
        assert uow is not None
        # Here, in this thread: committed (or the read ended) before the response leaves. A read's audit record,
        # handed in to the group commit, is awaited in the event loop, not here (on SQLite this thread may have
        # written it already: app.ledger.service.GroupCommit).
        return response, uow.finish(wait=False)


def model_response(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response model as FastAPI would send it (by alias), encoded here rather than in another hop."""
    return Response(model.model_dump_json(by_alias=True), status_code=status, headers=headers,
                    media_type="application/json")


def hop(*roles: Role, password_expired_ok: bool = False) -> Any:
    """Like `allow(...)`, for a route that does its work in one hop (`Hop.run`)."""
    allowed = frozenset(roles)

    async def rule(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                   ) -> AsyncIterator[Hop]:
        # One dependency where `allow` has four (the session, the settings, the claims and the rule): FastAPI's
        # own work per dependency was a tenth of a phone's most frequent requests (docs/performance.md). The
        # unit of work opens first, as with `allow`, so a refused token is audited the same way.
        async with request_unit_of_work(request) as session:
            settings = get_settings()
            claims = verified_claims(settings, credentials)
            # A pending password change is refused before the request's input is read, as `allow` does; the role
            # and the rest are checked with the database, in the hop (a role refusal may follow an input refusal).
            if claims.get("pcr") and not password_expired_ok:
                raise PasswordChangeRequired()
            yield Hop(session, settings, claims, allowed, password_expired_ok)

    setattr(rule, ACCESS_RULE, allowed)
    setattr(rule, OPENS_UNIT_OF_WORK, True)
    return Depends(rule, scope="function")


ALL_USERS = tuple(Role)
AdminActor = Annotated[Actor, allow(Role.admin)]
StaffActor = Annotated[Actor, allow(Role.worker, Role.supervisor, Role.admin)]
StaffHop = Annotated[Hop, hop(Role.worker, Role.supervisor, Role.admin)]
AuditorActor = Annotated[Actor, allow(Role.auditor)]
AnyActor = Annotated[Actor, allow(*ALL_USERS)]
