"""The token endpoint's work: OAuth 2.0 client credentials (RFC 6749 §4.4) for machine clients.

Like a sign-in, in three steps (docs/CONVENTIONS.md, "Slow CPU work"): `token_start` (a short write: the
client id's and the address's locks checked, the attempt charged, with the sign-in's own counters), the argon2
check of the secret with nothing held, and `token_finish` (a short write: the attempt settled and, on success,
a login session of the token's lifetime opened, so revoking, disabling and idling work through `load_actor`).

A secret reads `<secret id>.<random>`: the id picks the one hash to check, so an attempt costs one argon2
check whichever of a client's two valid secrets it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.models import AuthSession, User
from app.auth.service import (
    MACHINE_ROLES,
    Attempt,
    attempt_failed,
    attempt_succeeded,
    login_start,
)
from app.core.actor import Role
from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import issue_access_token
from app.core.types import utcnow
from app.ledger import audit
from app.sharing.partners.models import PartnerSecret

# The scopes each kind of client may be granted (all of them when it asks for none).
SCOPES: dict[str, frozenset[str]] = {
    Role.police.value: frozenset({"police:lookup", "police:feed", "police:upload"}),
    Role.outflow_city.value: frozenset({"outflow:feed", "outflow:changes", "outflow:assistance"}),
}


class OAuthError(AppError):
    """An answer of the token endpoint in RFC 6749 §5.2's shape (`{"error", "error_description"}`)."""

    status = 400
    code = "invalid_request"
    en = "The token request is malformed."
    zh = "令牌请求格式错误。"
    keep_changes = True  # a failed client authentication counts against the name and the address
    headers_401: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Basic realm="partner"'}

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.en}


class InvalidClient(OAuthError):
    status = 401
    code = "invalid_client"
    en = "Client authentication failed."

    def __init__(self) -> None:
        super().__init__(headers=self.headers_401)


class UnsupportedGrant(OAuthError):
    code = "unsupported_grant_type"
    en = "Only grant_type=client_credentials is supported."


class InvalidScope(OAuthError):
    code = "invalid_scope"
    en = "The requested scope is unknown or not granted to this client."


@dataclass(frozen=True)
class ClientAttempt:
    attempt: Attempt
    secret_id: str | None
    secret_hash: str | None


def token_start(session: Session, settings: Settings, client_id: str, secret: str) -> ClientAttempt:
    """Step 1: locks checked and the attempt charged (`login_start`), and the one hash to check picked."""
    attempt = login_start(session, settings, client_id)
    secret_id = secret.split(".", 1)[0] if "." in secret else None
    if attempt.user_id is None or not secret_id or len(secret_id) > 32:
        return ClientAttempt(attempt, None, None)
    secret_hash = session.execute(
        select(col(PartnerSecret.secret_hash))
        .where(col(PartnerSecret.id) == secret_id, col(PartnerSecret.user_id) == attempt.user_id,
               col(PartnerSecret.retired_at).is_(None))).scalar_one_or_none()
    return ClientAttempt(attempt, secret_id if secret_hash else None, secret_hash)


def token_finish(session: Session, settings: Settings, start: ClientAttempt, ok: bool,
                 requested: str | None) -> tuple[str, int, str]:
    """Step 3: a failure counted (401 `invalid_client`), or a login session and its access token."""
    now = utcnow()
    user = session.get(User, start.attempt.user_id) if start.attempt.user_id else None
    secret = session.get(PartnerSecret, start.secret_id) if start.secret_id else None
    live = secret is not None and secret.retired_at is None and secret.secret_hash == start.secret_hash
    if not ok or user is None or not user.active or user.role not in MACHINE_ROLES or not live:
        attempt_failed(session, settings, start.attempt)
        reason = ("unknown_client" if user is None or user.role not in MACHINE_ROLES else
                  "disabled" if not user.active else "wrong_secret")
        audit.record(session, "sharing.token", target_type="user", target_id=user.id if user else None,
                     outcome="failure", status_code=401, detail={"reason": reason})
        raise InvalidClient()
    assert secret is not None
    attempt_succeeded(session, start.attempt)
    allowed = SCOPES[user.role]
    scopes = set(requested.split()) if requested and requested.strip() else set(allowed)
    if not scopes <= allowed:
        audit.record(session, "sharing.token", target_type="user", target_id=user.id, outcome="failure",
                     status_code=400, detail={"reason": "invalid_scope"})
        raise InvalidScope()
    secret.last_used_at = now
    session.add(secret)
    minutes = settings.partner_token_minutes
    login = AuthSession(user_id=user.id, expires_at=now + timedelta(minutes=minutes), created_at=now,
                        last_seen_at=now)
    session.add(login)
    session.flush()
    granted = " ".join(sorted(scopes))
    token, expires_in = issue_access_token(settings, user_id=user.id, session_id=login.id, now=now, minutes=minutes,
                                           scope=granted)
    audit.record(session, "sharing.token", target_type="user", target_id=user.id, actor_id=user.id,
                 actor_role=user.role, detail={"secret_id": secret.id, "scope": granted})
    return token, expires_in, granted
