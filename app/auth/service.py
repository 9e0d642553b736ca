"""Login, refresh-token rotation with reuse detection, logout and password changes.

Concurrency: every state change that two requests could race on is a conditional UPDATE (claiming a
refresh token, revoking a session, counting an address's failures) or happens under a row lock taken
before the password is checked (an account's failure counter), so parallel requests can neither reuse
a refresh token twice nor win extra password guesses. On SQLite write requests are serialised anyway
(BEGIN IMMEDIATE); on PostgreSQL these statements do the work.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from app.auth.models import AuthSession, LoginThrottle, RefreshToken, User
from app.core import context
from app.core.actor import Role
from app.core.config import Settings
from app.core.db import UnitOfWork
from app.core.errors import Forbidden, TooManyRequests, Unauthorized, Unprocessable
from app.core.security import (
    hash_password,
    issue_access_token,
    keyed_digest,
    new_refresh_token,
    password_problems,
    sha256_hex,
    verify_and_update_password,
    verify_password,
)
from app.core.types import UTCDateTime, utcnow
from app.ledger import audit

# Machine clients (police stations, outflow cities) authenticate with OAuth client credentials only
# (app/sharing/partners/oauth): a password sign-in under their name is refused like a wrong password.
MACHINE_ROLES = frozenset({Role.police.value, Role.outflow_city.value})


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    en = "Wrong username or password."
    zh = "用户名或密码错误。"
    keep_changes = True  # the failure counters must survive the error
    audit_outcome = None  # type: ignore[assignment]  # recorded by the service with the reason


class LoginLocked(TooManyRequests):
    code = "login_locked"
    en = "Too many failed sign-ins; try again later."
    zh = "登录失败次数过多，请稍后再试。"
    keep_changes = True
    audit_outcome = None  # type: ignore[assignment]  # recorded by the service


class RefreshInvalid(Unauthorized):
    code = "refresh_token_invalid"
    en = "The refresh token is not valid; sign in again."
    zh = "刷新令牌无效，请重新登录。"
    keep_changes = True
    audit_outcome = None  # type: ignore[assignment]  # recorded by the service


class WrongPassword(Forbidden):
    code = "wrong_password"
    en = "The current password is wrong."
    zh = "当前密码错误。"
    audit_outcome = "denied"
    keep_changes = True  # counts against the account like a failed sign-in


class WeakPassword(Unprocessable):
    code = "weak_password"
    en = ("The password must have at least 8 characters from 3 of: lower case, upper case, digits, "
          "symbols (or be a passphrase of 16+ characters), not counting padding spaces; no invisible "
          "characters; no sequences, keyboard runs or repeats making up most of it; not common; not containing "
          "the username.")
    zh = ("密码至少8位（首尾及连续空格不计）且包含大写字母、小写字母、数字、符号中的三类（或16位以上的口令短语）；"
          "不得含不可见字符；不得主要由连续字符、键盘序列或重复构成；不得为常见密码或包含用户名。")


def check_password_policy(password: str, username: str) -> None:
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword({"rules": problems})


def normalise_username(username: str) -> str:
    return username.strip().lower()


# --- throttling -----------------------------------------------------------------------------------
# Two counters, both keyed by an HMAC so no name or address is stored: one per account name (existing
# or not, so a lockout reveals nothing) that locks the name for LOGIN_LOCK_MINUTES after
# LOGIN_MAX_FAILURES failures, and one per client address that refuses sign-ins from it for the rest of
# its window after LOGIN_IP_MAX_FAILURES failures.

def account_key(settings: Settings, username: str) -> str:
    return keyed_digest(settings.throttle_secret, "user:" + normalise_username(username))


def address_key(settings: Settings, client_ip: str | None) -> str:
    return keyed_digest(settings.throttle_secret, "ip:" + (client_ip or "-"))


def _ensure_row(session: Session, key: str, now: datetime) -> None:
    """Create the counter row if missing; two requests doing this at once both succeed."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )


def _lock_account_row(session: Session, key: str, now: datetime) -> LoginThrottle:
    """The account's counter, locked until the transaction ends (held while the password is checked,
    so parallel guesses at one name are counted one after another)."""
    _ensure_row(session, key, now)
    return session.execute(
        select(LoginThrottle).where(col(LoginThrottle.key) == key)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def _locked(session: Session, until: datetime, now: datetime, reason: str) -> LoginLocked:
    audit.record(session, "auth.login", outcome="denied", status_code=429, detail={"reason": reason})
    retry = max(1, int((until - now).total_seconds() + 0.999))
    return LoginLocked({"retry_after_seconds": retry}, headers={"Retry-After": str(retry)})


def _check_account(session: Session, account: LoginThrottle, now: datetime) -> None:
    if account.locked_until is not None and account.locked_until > now:
        raise _locked(session, account.locked_until, now, "account_locked")


def _check_address(session: Session, settings: Settings, ip_key: str, now: datetime) -> None:
    row = session.execute(
        select(col(LoginThrottle.failures), col(LoginThrottle.window_started_at))
        .where(col(LoginThrottle.key) == ip_key)
    ).first()
    if row is None:
        return
    failures, started = row
    end = started + timedelta(minutes=settings.login_ip_window_minutes)
    if end > now and failures >= settings.login_ip_max_failures:
        raise _locked(session, end, now, "address_throttled")


def _charge(settings: Settings, account: LoginThrottle, now: datetime) -> None:
    """Count an attempt as a failure before its password is checked: the check runs with no lock held, so
    parallel guesses at one name are counted as they start (a success clears the count again)."""
    if now - account.window_started_at > timedelta(minutes=settings.login_lock_minutes):
        account.failures, account.window_started_at = 0, now
    account.failures += 1


def _count_failure(session: Session, settings: Settings, account: LoginThrottle, ip_key: str,
                   now: datetime, *, charged: bool = False) -> None:
    if not charged:
        _charge(settings, account, now)
    if account.failures >= settings.login_max_failures:
        lock_window = timedelta(minutes=settings.login_lock_minutes)
        account.locked_until, account.failures, account.window_started_at = now + lock_window, 0, now
    session.add(account)
    # The address counter is shared by everyone behind that address: increment it in place rather
    # than holding its row for the whole sign-in.
    _ensure_row(session, ip_key, now)
    started = col(LoginThrottle.window_started_at)
    stale = started < now - timedelta(minutes=settings.login_ip_window_minutes)
    session.execute(
        update(LoginThrottle)
        .where(col(LoginThrottle.key) == ip_key)
        .values(
            failures=case((stale, 1), else_=col(LoginThrottle.failures) + 1),
            window_started_at=case((stale, literal(now, UTCDateTime())), else_=started),
        )
        .execution_options(synchronize_session=False)
    )


def _reset_account(session: Session, account: LoginThrottle, now: datetime) -> None:
    account.failures, account.locked_until, account.window_started_at = 0, None, now
    session.add(account)


def prune_throttle(session: Session, settings: Settings) -> int:
    """Delete counters that no longer matter (no lock in force, window over): every name ever tried
    leaves a row, so a periodic job should call this. Returns the number of rows removed."""
    now = utcnow()
    window = timedelta(minutes=max(settings.login_lock_minutes, settings.login_ip_window_minutes))
    return _rowcount(session.execute(
        delete(LoginThrottle)
        .where(col(LoginThrottle.window_started_at) < now - window,
               or_(col(LoginThrottle.locked_until).is_(None), col(LoginThrottle.locked_until) < now))
        .execution_options(synchronize_session=False)
    ))


# Ended login sessions are kept this long (who signed in from where is in the audit log for good).
SESSION_KEEP_DAYS = 30


def prune_sessions(session: Session) -> int:
    """Delete login sessions that ended (revoked or expired) more than SESSION_KEEP_DAYS ago, with their refresh
    tokens. Returns the number of sessions removed."""
    cutoff = utcnow() - timedelta(days=SESSION_KEEP_DAYS)
    ended = or_(col(AuthSession.expires_at) < cutoff, col(AuthSession.revoked_at) < cutoff)
    ids = select(col(AuthSession.id)).where(ended)
    session.execute(delete(RefreshToken).where(col(RefreshToken.session_id).in_(ids))
                    .execution_options(synchronize_session=False))
    return _rowcount(session.execute(delete(AuthSession).where(ended).execution_options(synchronize_session=False)))


def clear_lock(session: Session, settings: Settings, username: str) -> None:
    """Forget an account name's failures and lock (an administrator's password reset unlocks)."""
    session.execute(
        update(LoginThrottle)
        .where(col(LoginThrottle.key) == account_key(settings, username))
        .values(failures=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )


# --- login, refresh, logout ------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    """A sign-in between its first step and its last: what the second needs, none of it a database object."""

    key: str
    ip_key: str
    user_id: str | None
    password_hash: str | None
    active: bool


# Per event loop (a uvicorn worker has one; tests start one per client), per account name: a lock while held.
_name_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakValueDictionary[str, asyncio.Lock]] = \
    weakref.WeakKeyDictionary()


@asynccontextmanager
async def one_at_a_time(username: str) -> AsyncIterator[None]:
    """One account name's sign-ins one after another within this process, each seeing the last one's count (the
    account row's lock did this while it was held through the argon2 check). Across processes the charge that
    `login_start` makes as an attempt starts keeps parallel guesses within the limit."""
    locks = _name_locks.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
    name = normalise_username(username)
    lock = locks.get(name)
    if lock is None:
        lock = locks[name] = asyncio.Lock()
    async with lock:
        yield


def login(session: Session, settings: Settings, username: str, password: str) -> tuple[User, str, str, int]:
    """All three steps of a sign-in in one unit of work (the CLI and tests; the route runs them apart)."""
    attempt = login_start(session, settings, username)
    _release(session)
    ok, new_hash = verify_and_update_password(password, attempt.password_hash)
    return login_finish(session, settings, attempt, ok, new_hash)


def login_start(session: Session, settings: Settings, username: str) -> Attempt:
    """Step 1, a short write: refuse a locked name or address, and charge the attempt to the name.

    The argon2 check (a third of a second at the production cost) then runs with no lock and no connection
    held (the route gives the connection back between the steps; docs/CONVENTIONS.md), and `login_finish`
    settles the attempt. Every failure answers the same 401 (unknown name, wrong password, disabled account)
    after the same work: one argon2 verification and one count against the name and the address."""
    now = utcnow()
    name = normalise_username(username)
    ip_key = address_key(settings, context.current().client_ip)
    key = account_key(settings, name)
    account = _lock_account_row(session, key, now)
    _check_account(session, account, now)
    _check_address(session, settings, ip_key, now)
    user = session.execute(select(User).where(col(User.username) == name)).scalar_one_or_none()
    _charge(settings, account, now)
    if account.failures > settings.login_max_failures:  # as many guesses in flight as the lock allows
        account.failures -= 1  # the refusal is kept (audited) without this charge
        raise _locked(session, now + timedelta(minutes=settings.login_lock_minutes), now, "account_locked")
    session.add(account)
    if user is None:
        return Attempt(key, ip_key, None, None, False)
    return Attempt(key, ip_key, user.id, user.password_hash, user.active)


def attempt_failed(session: Session, settings: Settings, attempt: Attempt) -> None:
    """Settle an attempt `login_start` charged as a failure (a machine client's token request uses the same
    counters as a sign-in: app/sharing/partners/oauth)."""
    now = utcnow()
    _count_failure(session, settings, _lock_account_row(session, attempt.key, now), attempt.ip_key, now,
                   charged=True)


def attempt_succeeded(session: Session, attempt: Attempt) -> None:
    now = utcnow()
    _reset_account(session, _lock_account_row(session, attempt.key, now), now)


def login_finish(session: Session, settings: Settings, attempt: Attempt, ok: bool,
                 new_hash: str | None) -> tuple[User, str, str, int]:
    """Step 3, a short write: count a failure (and lock the name at the limit), or open the login session."""
    now = utcnow()
    account = _lock_account_row(session, attempt.key, now)
    user = session.get(User, attempt.user_id) if attempt.user_id else None
    if user is not None and user.password_hash != attempt.password_hash:
        ok = False  # the password changed while this one was checked against the old hash
    machine = user is not None and user.role in MACHINE_ROLES
    if not ok or user is None or not user.active or machine:
        _count_failure(session, settings, account, attempt.ip_key, now, charged=True)
        reason = "unknown_user" if user is None else ("disabled" if not user.active else
                                                      "machine_client" if machine else "wrong_password")
        audit.record(session, "auth.login", target_type="user", target_id=user.id if user else None,
                     outcome="failure", status_code=401, detail={"reason": reason})
        raise InvalidCredentials()
    _reset_account(session, account, now)
    if new_hash is not None:
        user.password_hash = new_hash  # stored with older argon2 parameters: upgrade it now we know the password
        session.add(user)
    login_session = AuthSession(user_id=user.id, expires_at=now + timedelta(days=settings.refresh_token_days),
                                created_at=now, last_seen_at=now)
    session.add(login_session)
    refresh = _new_refresh(session, login_session.id)
    access, expires_in = issue_access_token(settings, user_id=user.id, session_id=login_session.id, now=now,
                                            password_change=user.must_change_password)
    audit.record(session, "auth.login", target_type="user", target_id=user.id, actor_id=user.id,
                 actor_role=user.role)
    return user, access, refresh, expires_in


def _release(session: Session) -> None:
    """Commit the first step and give the connection back (a unit of work's rule: app/core/db.py)."""
    uow = UnitOfWork.of(session)
    if uow is None:
        session.commit()
    else:
        uow.commit_and_release()


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (the claim and revocation statements depend on it)."""
    return int(result.rowcount)


def _new_refresh(session: Session, session_id: str) -> str:
    token = new_refresh_token()
    session.add(RefreshToken(session_id=session_id, token_hash=sha256_hex(token)))
    return token


def refresh(session: Session, settings: Settings, token: str) -> tuple[User, str, str, int]:
    now = utcnow()
    row = session.execute(
        select(col(RefreshToken.id), col(AuthSession.id), User)
        .join(AuthSession, col(AuthSession.id) == col(RefreshToken.session_id))
        .join(User, col(User.id) == col(AuthSession.user_id))
        .where(col(RefreshToken.token_hash) == sha256_hex(token))
    ).first()
    if row is None:
        audit.record(session, "auth.refresh", outcome="failure", status_code=401, detail={"reason": "unknown"})
        raise RefreshInvalid()
    token_id, session_id, user = row
    # Atomic claim: of two uses of one token (even concurrent ones) exactly one wins.
    claimed = _rowcount(session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == token_id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ))
    if not claimed:
        # A used token presented again: it was copied. End the whole family (every access and refresh
        # token of this login), whoever holds the newer ones.
        revoke_session(session, session_id, "refresh_reuse")
        audit.record(session, "auth.refresh_reuse", target_type="auth_session", target_id=session_id,
                     actor_id=user.id, actor_role=user.role, outcome="denied", status_code=401)
        raise RefreshInvalid()
    # The session must still be live, checked and extended in one statement so a concurrent revocation
    # (reuse detected, logout, disabling) cannot be overtaken.
    idle_cutoff = now - timedelta(minutes=settings.idle_timeout_minutes)
    extended = 0
    if user.active:
        extended = _rowcount(session.execute(
            update(AuthSession)
            .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None),
                   col(AuthSession.expires_at) > now, col(AuthSession.last_seen_at) >= idle_cutoff)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        ))
    if not extended:
        reason = _dead_reason(session, session_id, user, now, idle_cutoff)
        if reason == "idle":
            revoke_session(session, session_id, "idle")
        audit.record(session, "auth.refresh", target_type="auth_session", target_id=session_id,
                     actor_id=user.id, actor_role=user.role, outcome="failure", status_code=401,
                     detail={"reason": reason})
        raise RefreshInvalid()
    new_token = _new_refresh(session, session_id)
    access, expires_in = issue_access_token(settings, user_id=user.id, session_id=session_id, now=now,
                                            password_change=user.must_change_password)
    audit.record(session, "auth.refresh", target_type="auth_session", target_id=session_id,
                 actor_id=user.id, actor_role=user.role)
    return user, access, new_token, expires_in


def _dead_reason(session: Session, session_id: str, user: User, now: datetime, idle_cutoff: datetime) -> str:
    if not user.active:
        return "disabled"
    login_session = session.execute(
        select(AuthSession).where(col(AuthSession.id) == session_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if login_session.revoked_at is not None:
        return "revoked"
    if login_session.expires_at <= now:
        return "expired"
    return "idle" if login_session.last_seen_at < idle_cutoff else "revoked"


def revoke_session(session: Session, session_id: str, reason: str) -> bool:
    """End one login (its access tokens fail on the next request, its refresh tokens are dead)."""
    return bool(_rowcount(session.execute(
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )))


def revoke_all_sessions(session: Session, user_id: str, reason: str, except_id: str | None = None) -> None:
    stmt = (
        update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if except_id:
        stmt = stmt.where(col(AuthSession.id) != except_id)
    session.execute(stmt)


def logout(session: Session, session_id: str) -> None:
    revoke_session(session, session_id, "logout")
    audit.record(session, "auth.logout", target_type="auth_session", target_id=session_id)


def change_password(session: Session, settings: Settings, user: User, session_id: str, old: str,
                    new: str) -> None:
    """The current password is required (and guessing it counts like failed sign-ins); success ends
    every other session of the user."""
    now = utcnow()
    account = _lock_account_row(session, account_key(settings, user.username), now)
    _check_account(session, account, now)
    if not verify_password(old, user.password_hash):
        _count_failure(session, settings, account, address_key(settings, context.current().client_ip), now)
        raise WrongPassword()
    check_password_policy(new, user.username)
    if verify_password(new, user.password_hash):
        raise WeakPassword({"rules": ["password_reused"]})
    _reset_account(session, account, now)
    set_password(user, new, must_change=False)
    session.add(user)
    revoke_all_sessions(session, user.id, "password_changed", except_id=session_id)
    audit.record(session, "auth.password_change", target_type="user", target_id=user.id)


def set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    user.updated_at = utcnow()
    user.version += 1
