"""Login, refresh-token rotation with reuse detection, logout and password changes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlmodel import Session

from app.audit import service as audit
from app.auth.models import AuthSession, LoginThrottle, RefreshToken, User
from app.core import context
from app.core.config import Settings
from app.core.errors import Forbidden, TooManyRequests, Unauthorized, Unprocessable
from app.core.security import (
    hash_password,
    issue_access_token,
    keyed_digest,
    new_refresh_token,
    password_problems,
    sha256_hex,
    verify_password,
)
from app.core.types import utcnow


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    en = "Wrong username or password."
    zh = "用户名或密码错误。"
    keep_changes = True  # the failure counters must survive the error
    audit_outcome = None  # recorded by the service with the reason


class LoginLocked(TooManyRequests):
    code = "login_locked"
    en = "Too many failed sign-ins; try again later."
    zh = "登录失败次数过多，请稍后再试。"
    keep_changes = True
    audit_outcome = None


class RefreshInvalid(Unauthorized):
    code = "refresh_token_invalid"
    en = "The refresh token is not valid; sign in again."
    zh = "刷新令牌无效，请重新登录。"
    keep_changes = True
    audit_outcome = None


class WrongPassword(Forbidden):
    code = "wrong_password"
    en = "The current password is wrong."
    zh = "当前密码错误。"
    audit_outcome = "denied"


class WeakPassword(Unprocessable):
    code = "weak_password"
    en = ("The password must have at least 8 characters from 3 of: lower case, upper case, digits, "
          "symbols (or be a passphrase of 16+ characters), and must not be common or contain the username.")
    zh = "密码至少8位且包含大写字母、小写字母、数字、符号中的三类（或16位以上的口令短语），不得为常见密码或包含用户名。"


def check_password_policy(password: str, username: str) -> None:
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword({"rules": problems})


def normalise_username(username: str) -> str:
    return username.strip().lower()


# --- throttling -----------------------------------------------------------------------------------

def _throttle_keys(settings: Settings, username: str, client_ip: str | None) -> tuple[str, str]:
    return (
        keyed_digest(settings.throttle_secret, "user:" + username),
        keyed_digest(settings.throttle_secret, "ip:" + (client_ip or "-")),
    )


def _throttle_row(session: Session, key: str, now: datetime) -> LoginThrottle:
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
        session.add(row)
    return row


def _check_locks(session: Session, settings: Settings, user_key: str, ip_key: str, now: datetime) -> None:
    user_row = session.get(LoginThrottle, user_key)
    if user_row and user_row.locked_until and user_row.locked_until > now:
        raise _locked(session, user_row.locked_until, now, "account_locked")
    ip_row = session.get(LoginThrottle, ip_key)
    window = timedelta(minutes=settings.login_ip_window_minutes)
    if ip_row and now - ip_row.window_started_at < window and ip_row.failures >= settings.login_ip_max_failures:
        raise _locked(session, ip_row.window_started_at + window, now, "address_throttled")


def _locked(session: Session, until: datetime, now: datetime, reason: str) -> LoginLocked:
    audit.record(session, "auth.login", outcome="denied", status_code=429, detail={"reason": reason})
    retry = max(1, int((until - now).total_seconds()))
    return LoginLocked({"retry_after_seconds": retry}, headers={"Retry-After": str(retry)})


def _count_failure(session: Session, settings: Settings, user_key: str, ip_key: str, now: datetime) -> None:
    lock_window = timedelta(minutes=settings.login_lock_minutes)
    user_row = _throttle_row(session, user_key, now)
    if now - user_row.window_started_at > lock_window:
        user_row.failures, user_row.window_started_at = 0, now
    user_row.failures += 1
    if user_row.failures >= settings.login_max_failures:
        user_row.locked_until, user_row.failures, user_row.window_started_at = now + lock_window, 0, now
    ip_row = _throttle_row(session, ip_key, now)
    if now - ip_row.window_started_at > timedelta(minutes=settings.login_ip_window_minutes):
        ip_row.failures, ip_row.window_started_at = 0, now
    ip_row.failures += 1


# --- login, refresh, logout ------------------------------------------------------------------------

def login(session: Session, settings: Settings, username: str, password: str) -> tuple[User, str, str, int]:
    now = utcnow()
    name = normalise_username(username)
    user_key, ip_key = _throttle_keys(settings, name, context.current().client_ip)
    _check_locks(session, settings, user_key, ip_key, now)
    user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    ok = verify_password(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        _count_failure(session, settings, user_key, ip_key, now)
        reason = "unknown_user" if user is None else ("disabled" if not user.active else "wrong_password")
        audit.record(session, "auth.login", target_type="user", target_id=user.id if user else None,
                     outcome="failure", status_code=401, detail={"reason": reason})
        raise InvalidCredentials()
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == user_key))  # type: ignore[arg-type]
    login_session = AuthSession(user_id=user.id, expires_at=now + timedelta(days=settings.refresh_token_days),
                                created_at=now, last_seen_at=now)
    session.add(login_session)
    refresh = _new_refresh(session, login_session.id)
    access, expires_in = issue_access_token(settings, user_id=user.id, session_id=login_session.id, now=now)
    audit.record(session, "auth.login", target_type="user", target_id=user.id, actor_id=user.id,
                 actor_role=user.role)
    return user, access, refresh, expires_in


def _new_refresh(session: Session, session_id: str) -> str:
    token = new_refresh_token()
    session.add(RefreshToken(session_id=session_id, token_hash=sha256_hex(token)))
    return token


def refresh(session: Session, settings: Settings, token: str) -> tuple[User, str, str, int]:
    now = utcnow()
    row = session.execute(
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)  # type: ignore[arg-type]
        .join(User, User.id == AuthSession.user_id)  # type: ignore[arg-type]
        .where(RefreshToken.token_hash == sha256_hex(token))
    ).first()
    if row is None:
        audit.record(session, "auth.refresh", outcome="failure", status_code=401, detail={"reason": "unknown"})
        raise RefreshInvalid()
    stored, login_session, user = row
    # Atomic claim: of two concurrent uses of one token only one can win.
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == stored.id, RefreshToken.used_at.is_(None))  # type: ignore[union-attr]
        .values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        revoke_session(session, login_session, "refresh_reuse")
        audit.record(session, "auth.refresh_reuse", target_type="auth_session", target_id=login_session.id,
                     actor_id=user.id, actor_role=user.role, outcome="denied", status_code=401)
        raise RefreshInvalid()
    idle = now - login_session.last_seen_at > timedelta(minutes=settings.idle_timeout_minutes)
    if login_session.revoked_at is not None or login_session.expires_at <= now or idle or not user.active:
        if idle:
            revoke_session(session, login_session, "idle")
        audit.record(session, "auth.refresh", target_type="auth_session", target_id=login_session.id,
                     actor_id=user.id, actor_role=user.role, outcome="failure", status_code=401)
        raise RefreshInvalid()
    login_session.last_seen_at = now
    session.add(login_session)
    new_token = _new_refresh(session, login_session.id)
    access, expires_in = issue_access_token(settings, user_id=user.id, session_id=login_session.id, now=now)
    audit.record(session, "auth.refresh", target_type="auth_session", target_id=login_session.id,
                 actor_id=user.id, actor_role=user.role)
    return user, access, new_token, expires_in


def revoke_session(session: Session, login_session: AuthSession, reason: str) -> None:
    if login_session.revoked_at is None:
        login_session.revoked_at, login_session.revoked_reason = utcnow(), reason
        session.add(login_session)


def revoke_all_sessions(session: Session, user_id: str, reason: str, except_id: str | None = None) -> None:
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    if except_id:
        stmt = stmt.where(AuthSession.id != except_id)
    session.execute(stmt)


def logout(session: Session, session_id: str) -> None:
    login_session = session.get(AuthSession, session_id)
    if login_session is not None:
        revoke_session(session, login_session, "logout")
    audit.record(session, "auth.logout", target_type="auth_session", target_id=session_id)


def change_password(session: Session, user: User, session_id: str, old: str, new: str) -> None:
    if not verify_password(old, user.password_hash):
        raise WrongPassword()
    check_password_policy(new, user.username)
    if verify_password(new, user.password_hash):
        raise WeakPassword({"rules": ["password_reused"]})
    set_password(user, new, must_change=False)
    session.add(user)
    revoke_all_sessions(session, user.id, "password_changed", except_id=session_id)
    audit.record(session, "auth.password_change", target_type="user", target_id=user.id)


def set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()
    user.updated_at = utcnow()
