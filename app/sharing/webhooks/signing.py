"""Webhook signatures: what the sender puts in the headers, and the check every receiver should make.

    X-Webhook-Id:        the event id (receivers deduplicate on it: a redelivery carries the same id and body)
    X-Webhook-Timestamp: Unix seconds when this attempt was signed
    X-Webhook-Signature: "v1=" + hex HMAC-SHA256(secret, f"{timestamp}.{body}")

A receiver recomputes the HMAC over the raw body bytes it received (before parsing), compares in constant time,
and refuses a timestamp outside its replay window (default 5 minutes either way): a captured request cannot be
replayed later, and one replayed inside the window carries an id the receiver has already seen. `verify` is that
check, in Python (the tests' receiver uses it); docs/sharing.md shows it in a few lines for other languages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

REPLAY_WINDOW_SECONDS = 300
PREFIX = "v1="


class SignatureRefused(Exception):
    """The request is not from the holder of the secret, or is too old or too new. `code` says which."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def headers(secret: str, event_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {"Content-Type": "application/json", "X-Webhook-Id": event_id,
            "X-Webhook-Timestamp": str(timestamp), "X-Webhook-Signature": sign(secret, timestamp, body)}


def verify(secret: str, received: Mapping[str, str], body: bytes, *, now: float | None = None,
           window: int = REPLAY_WINDOW_SECONDS) -> str:
    """Check a received webhook; returns its event id, or raises `SignatureRefused` (code `missing_header`,
    `bad_timestamp`, `expired_timestamp`, `bad_signature` or `id_mismatch`). `received`: the request's headers
    (any case)."""
    lower = {k.lower(): v for k, v in received.items()}
    event_id, stamp, signature = (lower.get(f"x-webhook-{n}") for n in ("id", "timestamp", "signature"))
    if not event_id or not stamp or not signature:
        raise SignatureRefused("missing_header")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRefused("bad_timestamp")
    if abs((time.time() if now is None else now) - int(stamp)) > window:
        raise SignatureRefused("expired_timestamp")
    if not hmac.compare_digest(sign(secret, int(stamp), body), signature):
        raise SignatureRefused("bad_signature")
    try:  # the id is signed as part of the body: the header must name the same event
        signed_id = json.loads(body).get("id")
    except (ValueError, AttributeError):
        signed_id = None
    if signed_id != event_id:
        raise SignatureRefused("id_mismatch")
    return event_id
