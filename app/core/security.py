"""Passwords (argon2id), the password policy, JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import anyio
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings, get_settings
from app.core.threads import limiter, one_per_core
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
    half-width form. This is the form that is hashed and verified, unchanged since the first release, so
    every stored hash keeps verifying. Nothing is stripped or truncated: every character typed is part of
    the secret (the policy below measures a password without its padding, but never alters it)."""
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


async def check_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """`verify_and_update_password` off the event loop, on the argon2 threads: one per core, per event loop.
    argon2 is CPU and memory (64 MiB a check): more at once only queues them in the kernel, and on the request
    threads (anyio's default pool) a morning of sign-ins would take every thread and keep the requests that hold
    database connections from finishing (bench/load.py)."""
    return await anyio.to_thread.run_sync(verify_and_update_password, password, password_hash,
                                          limiter=limiter("argon2", one_per_core))


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


# --- the policy ---------------------------------------------------------------------------------------------

# Characters nobody can see they typed: controls, format characters (zero-width spaces and joiners, bidi
# marks), line/paragraph separators, unassigned and private-use code points, spaces other than U+0020 that
# NFKC leaves alone, Hangul fillers, the blank braille cell and variation selectors.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
INVISIBLE_CODES = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0})
# Runs along these count as two characters, in either direction ("qwert", "54321", "!@#$").
KEYBOARD_ROWS = ("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./", "~!@#$%^&*()_+")
_ROW_POSITION = {c: (row, i) for row, keys in enumerate(KEYBOARD_ROWS) for i, c in enumerate(keys)}
_REPEATED = re.compile(r"(.+)\1+", re.DOTALL)  # a block typed twice or more ("Aa1!Aa1!", "abab", "zzzz")
MIN_LENGTH, MAX_LENGTH, PASSPHRASE_LENGTH = 8, 128, 16


def is_invisible(char: str) -> bool:
    code = ord(char)
    category = unicodedata.category(char)
    return (category in INVISIBLE_CATEGORIES or (category == "Zs" and char != " ") or code in INVISIBLE_CODES
            or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF)


def measured(password: str) -> str:
    """The password as the policy counts it: NFKC, without invisible characters, without leading and
    trailing spaces, inner runs of spaces counted once."""
    visible = "".join(c for c in normalise_password(password) if not is_invisible(c))
    return " ".join(visible.split())


def _steps(a: str, b: str) -> frozenset[int | str]:
    """How b predictably follows a: the same character (0), the next or previous letter or digit (±1), the
    next or previous key on a keyboard row ("key±1"). Several at once for j → k."""
    steps: set[int | str] = set()
    if a == b:
        steps.add(0)
    if a.isascii() and b.isascii() and a.isalnum() and b.isalnum() and abs(ord(a) - ord(b)) == 1:
        steps.add(ord(b) - ord(a))
    pa, pb = _ROW_POSITION.get(a), _ROW_POSITION.get(b)
    if pa and pb and pa[0] == pb[0] and abs(pa[1] - pb[1]) == 1:
        steps.add(f"key{pb[1] - pa[1]}")
    return frozenset(steps)


def _squeeze(text: str) -> str:
    """Each repeated block once, followed by a marker that counts one ("aa1!aa1!" → "aa1!" + marker); the
    longest block repeating at the leftmost place is taken, then squeezed itself (abab abab → ab + 2)."""
    return _REPEATED.sub(lambda m: _squeeze(m.group(1)) + "\x00", text)


def predictable_length(password: str) -> int:
    """Length once the predictable parts are discounted: a repeated block counts once (plus one), a run of
    three or more repeated, consecutive (abc, 987) or adjacent keys (qwe, asdf) counts two."""
    text = _squeeze(password.lower()[:MAX_LENGTH])
    total, i = 0, 0
    while i < len(text):
        j, steps = i + 1, _steps(text[i], text[i + 1]) if i + 1 < len(text) else frozenset()
        while steps and j < len(text) and (following := steps & _steps(text[j - 1], text[j])):
            steps, j = following, j + 1
        total += min(j - i, 2)
        i = j
    return total


@lru_cache(maxsize=1)
def _common_fragments() -> tuple[str, ...]:
    """Common passwords and their cores of 5+ characters, longest first."""
    return tuple(sorted({w for w in common_passwords() | _common_cores() if len(w) >= 5}, key=len, reverse=True))


def mostly_common(text: str) -> bool:
    """A common password with a little added ("woaini1314!A", "5201314Aa!"): what is left once the common
    parts are taken out (look-alikes undone or not) is too short or predictable to stand alone."""
    lowered = text.lower()
    for candidate in (lowered, lowered.translate(_LEET)):
        rest = candidate
        for word in _common_fragments():
            rest = rest.replace(word, "\x01")
        if rest != candidate and predictable_length(rest) < MIN_LENGTH:
            return True
    return False


def _classes(text: str) -> int:
    return sum([any(c.islower() for c in text), any(c.isupper() for c in text), any(c.isdigit() for c in text),
                any(not c.isalnum() for c in text)])


def password_problems(password: str, username: str = "") -> list[str]:
    """Rule codes the password breaks (empty when it is acceptable).

    MLPS level 3: at least 8 characters from at least 3 classes (a passphrase of 16 or more needs no
    particular classes), counted without padding or invisible characters; no invisible characters at
    all; not predictable (sequences, keyboard runs, repeats); not common; not containing the username.
    """
    text = measured(password)
    problems = []
    if any(is_invisible(c) for c in normalise_password(password)):
        problems.append("password_invisible_characters")
    if len(text) < MIN_LENGTH:
        problems.append("password_too_short")
    if len(normalise_password(password)) > MAX_LENGTH:
        problems.append("password_too_long")
    if len(text) < PASSPHRASE_LENGTH and _classes(text) < 3:
        problems.append("password_too_simple")
    if len(text) >= MIN_LENGTH and predictable_length(text) < MIN_LENGTH:
        problems.append("password_predictable")
    if is_common(text) or mostly_common(text):
        problems.append("password_common")
    if username and len(username) >= 3 and username.lower() in text.lower():
        problems.append("password_contains_username")
    return problems


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_digest(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def issue_access_token(settings: Settings, *, user_id: str, session_id: str, now: datetime,
                       password_change: bool = False, minutes: int | None = None,
                       scope: str | None = None) -> tuple[str, int]:
    """A short-lived access token: it names the user and the login session, nothing about what they may do (role
    and scope are read from the database on every request). `pcr`, present while a password change is required,
    lets a route refuse before it reads its input; it can only refuse (a change of password issues a new token,
    a reset ends every session), and the database still decides on every request."""
    lifetime = timedelta(minutes=minutes or settings.access_token_minutes)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "sid": session_id,
        "jti": new_id(),
        "typ": ACCESS,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    if password_change:
        claims["pcr"] = True
    if scope:  # a machine client's OAuth scopes (app/sharing/partners/deps.py `granted`)
        claims["scope"] = scope
    kid = settings.current_kid
    token = jwt.encode(claims, settings.signing_keys[kid], algorithm=ALGORITHM, headers={"kid": kid})
    return token, int(lifetime.total_seconds())


class TokenInvalid(Exception):
    pass


# Verified access tokens, by their text: a phone sends the same token with every request for its 15 minutes, and
# verifying it (header, HMAC, claims) was an eighth of a `GET /auth/me` (py-spy). A hit still checks the expiry
# and that the key, audience and issuer it was verified with are still the configured ones (a rotated-out key or
# a changed setting verifies afresh). Revocation is not the token's business: `load_actor` reads the login
# session on every request. Bounded: cleared when full.
_VERIFIED_MAX = 10_000
_verified: dict[str, tuple[dict[str, Any], str, str, str | list[str], str]] = {}


def decode_access_token(settings: Settings, token: str) -> dict[str, Any]:
    """Verify an access token (`_verify_access_token`), or find it verified already and not yet expired."""
    cached = _verified.get(token)
    if cached is not None:
        claims, kid, key, audience, issuer = cached
        if (int(claims["exp"]) > time.time() and settings.signing_keys.get(kid) == key
                and audience == settings.jwt_audience and issuer == settings.jwt_issuer):
            return dict(claims)
        _verified.pop(token, None)
    claims, kid, key = _verify_access_token(settings, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[token] = (claims, kid, key, settings.jwt_audience, settings.jwt_issuer)
    return dict(claims)


def _verify_access_token(settings: Settings, token: str) -> tuple[dict[str, Any], str, str]:
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
    if key is None or not isinstance(kid, str):
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
    return claims, kid, key
