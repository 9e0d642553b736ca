"""Webhook secrets at rest: sealed with AES-256-GCM under WEBHOOK_SECRET_KEYS, bound to their endpoint's id.

Every delivery is signed with the endpoint's secret, so it cannot be stored as a hash; sealed, a copy of the
database alone does not let anyone sign as this office. Stored as `kid$nonce$ciphertext` (base64url): the first key
seals, every key opens (keys rotate: a row names its key). The endpoint id is the associated data, so a sealed
secret copied to another row does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.config import get_settings, parse_keys


class SecretUnreadable(RuntimeError):
    """The sealed secret's key is not configured, or the value was altered or moved to another endpoint."""


def _keys() -> dict[str, AESGCM]:
    keys = parse_keys(get_settings().webhook_secret_keys, "WEBHOOK_SECRET_KEYS")
    return {kid: AESGCM(hashlib.sha256(value.encode()).digest()) for kid, value in keys.items()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(secret: str, endpoint_id: str) -> str:
    kid, key = next(iter(_keys().items()))
    nonce = os.urandom(12)
    return f"{kid}${_b64(nonce)}${_b64(key.encrypt(nonce, secret.encode(), endpoint_id.encode()))}"


def unseal(sealed: str, endpoint_id: str) -> str:
    kid, _, rest = sealed.partition("$")
    nonce, _, ciphertext = rest.partition("$")
    key = _keys().get(kid)
    if key is None or not ciphertext:
        raise SecretUnreadable(kid)
    try:
        return key.decrypt(_unb64(nonce), _unb64(ciphertext), endpoint_id.encode()).decode()
    except Exception as exc:  # InvalidTag, bad base64: the same answer, the secret cannot be read
        raise SecretUnreadable(kid) from exc
