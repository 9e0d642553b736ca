"""Passwords (argon2id), the password policy, JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
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
# Hard ceiling on an access token's lifetime, whatever the settings say (the requirement is ≤ 15 min).
MAX_ACCESS_SECONDS = 15 * 60
# sub, sid and jti are 32-char hex ids; anything else is not ours (and must never reach a query).
ID_CLAIM = re.compile(r"[0-9A-Za-z_-]{1,64}")


@lru_cache(maxsize=1)
def _hasher() -> tuple[PasswordHash, str]:
    settings = get_settings()
    hasher = PasswordHash((Argon2Hasher(time_cost=settings.argon2_time_cost,
                                        memory_cost=settings.argon2_memory_kib),))
    # Verified against when the account does not exist, so an unknown name costs the same time.
    return hasher, hasher.hash(secrets.token_urlsafe(16))


def normalise_password(password: str) -> str:
    """NFKC, so a password typed with a Chinese IME in full-width mode (ＡＢＣ１２３) matches its
    half-width form. Nothing is stripped or truncated: every character counts."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher()[0].hash(normalise_password(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    return verify_and_update_password(password, password_hash)[0]


def verify_and_update_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one was made with other argon2 parameters).

    Without an account (`password_hash` None) a dummy hash with the current parameters is verified
    instead, so an unknown user name costs the same time as a wrong password.
    """
    hasher, dummy = _hasher()
    password = normalise_password(password)
    if password_hash is None:
        hasher.verify(password, dummy)
        return False, None
    try:
        return hasher.verify_and_update(password, password_hash)
    except Exception:  # a malformed stored hash must not become a 500 or a bypass
        return False, None


_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s",
                       "7": "t", "+": "t"})
_EDGES = re.compile(r"^[^a-z]+|[^a-z]+$")


def _core(lowered: str) -> str:
    """The word inside a password: edge digits/symbols dropped, look-alike characters undone
    ("P@ssw0rd2026!" → "password")."""
    return _EDGES.sub("", lowered).translate(_LEET)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("app.core").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _common_cores() -> frozenset[str]:
    return frozenset(c for c in map(_core, common_passwords()) if len(c) >= 4)


def is_common(password: str) -> bool:
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return True
    core = _core(lowered)
    return len(core) >= 4 and core in _common_cores()


def password_problems(password: str, username: str = "") -> list[str]:
    """Rule codes the password breaks (empty when it is acceptable).

    MLPS level 3: at least 8 characters from at least 3 classes. A passphrase of 16 or more
    characters needs no particular classes. Common passwords and ones containing the username are refused.
    """
    password = normalise_password(password)
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
    if is_common(password):
        problems.append("password_common")
    if username and len(username) >= 3 and username.lower() in password.lower():
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
    """Verify an access token: pinned algorithm, a known key id, every required claim, type "access".

    The header is read before verification only to pick the key; nothing in it is trusted: `alg` must be
    exactly the pinned one (so `none`, HS512 or an RS/HS confusion never reach a verifier) and `kid`
    must name one of the configured keys (current or previous), else the token is rejected.
    """
    if len(token) > 4096:
        raise TokenInvalid("too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid("malformed") from exc
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid("algorithm")
    key = settings.signing_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
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
    for name in ("sub", "sid", "jti"):
        value = claims.get(name)
        if not isinstance(value, str) or not ID_CLAIM.fullmatch(value):
            raise TokenInvalid("bad " + name)
    try:
        lifetime = int(claims["exp"]) - int(claims["iat"])
    except (TypeError, ValueError, OverflowError):
        raise TokenInvalid("bad times") from None
    if lifetime > MAX_ACCESS_SECONDS:
        raise TokenInvalid("lifetime")
    return claims
