"""Passwords (argon2id), the password policy, JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings, get_settings
from app.core.types import new_id

ALGORITHM = "HS256"
ACCESS = "access"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"]

@lru_cache(maxsize=1)
def _hasher() -> tuple[PasswordHash, str]:
    settings = get_settings()
    hasher = PasswordHash((Argon2Hasher(time_cost=settings.argon2_time_cost,
                                        memory_cost=settings.argon2_memory_kib),))
    # Verified against when the account does not exist, so an unknown name costs the same time.
    return hasher, hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    hasher, dummy = _hasher()
    if password_hash is None:
        hasher.verify(password, dummy)
        return False
    try:
        return hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash must not become a 500 or a bypass
        return False


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("app.core").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, username: str = "") -> list[str]:
    """Rule codes the password breaks (empty when it is acceptable).

    MLPS level 3: at least 8 characters from at least 3 classes. A passphrase of 16 or more
    characters needs no particular classes. Common passwords and ones containing the username are refused.
    """
    problems = []
    if len(password) < 8:
        problems.append("password_too_short")
    if len(password) > 128:
        problems.append("password_too_long")
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if len(password) < 16 and classes < 3:
        problems.append("password_too_simple")
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        problems.append("password_common")
    if username and len(username) >= 3 and username.lower() in lowered:
        problems.append("password_contains_username")
    return problems


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_digest(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def issue_access_token(settings: Settings, *, user_id: str, session_id: str, now: datetime) -> tuple[str, int]:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "sid": session_id,
        "jti": new_id(),
        "typ": ACCESS,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    kid = settings.current_kid
    token = jwt.encode(claims, settings.signing_keys[kid], algorithm=ALGORITHM, headers={"kid": kid})
    return token, int(lifetime.total_seconds())


class TokenInvalid(Exception):
    pass


def decode_access_token(settings: Settings, token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid("malformed") from exc
    key = settings.signing_keys.get(str(header.get("kid")))
    if key is None or header.get("alg") != ALGORITHM:
        raise TokenInvalid("unknown key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid(type(exc).__name__) from exc
    if claims.get("typ") != ACCESS:
        raise TokenInvalid("wrong type")
    return claims
