"""The receiver's check (`signing.verify`): a signature over the timestamp and the raw body, a replay window, and
the signed body's id matching the header. The tests' receiver refuses (401) whatever it refuses."""

from __future__ import annotations

import json

import httpx
import pytest

from app.sharing.webhooks.signing import SignatureRefused, headers, sign, verify
from tests.sharing.webhooks.receiver import Receiver

SECRET = "whsec_test-secret"
BODY = json.dumps({"id": "e" * 32, "type": "resident.arrived"}).encode()
NOW = 1_800_000_000


def refused(code: str, received: dict[str, str], body: bytes = BODY, secret: str = SECRET) -> None:
    with pytest.raises(SignatureRefused) as caught:
        verify(secret, received, body, now=NOW)
    assert caught.value.code == code


def test_a_signed_request_verifies_and_names_its_event() -> None:
    signed = headers(SECRET, "e" * 32, BODY, now=NOW)
    assert signed["X-Webhook-Signature"] == sign(SECRET, NOW, BODY)
    assert verify(SECRET, signed, BODY, now=NOW + 299) == "e" * 32
    assert verify(SECRET, {k.lower(): v for k, v in signed.items()}, BODY, now=NOW - 299) == "e" * 32


def test_forged_altered_replayed_or_incomplete_requests_are_refused() -> None:
    signed = headers(SECRET, "e" * 32, BODY, now=NOW)
    refused("bad_signature", signed, secret="whsec_someone-else")
    refused("bad_signature", signed, body=BODY.replace(b"arrived", b"left"))
    refused("bad_signature", {**signed, "X-Webhook-Timestamp": str(NOW + 1)})
    refused("expired_timestamp", headers(SECRET, "e" * 32, BODY, now=NOW - 301))
    refused("expired_timestamp", headers(SECRET, "e" * 32, BODY, now=NOW + 301))
    refused("bad_timestamp", {**signed, "X-Webhook-Timestamp": "12a"})
    refused("missing_header", {k: v for k, v in signed.items() if k != "X-Webhook-Signature"})
    refused("id_mismatch", {**signed, "X-Webhook-Id": "f" * 32})  # the id is signed inside the body


def test_the_receiver_refuses_a_forged_delivery(receiver: Receiver) -> None:
    receiver.secret = SECRET
    forged = headers("whsec_guess", "e" * 32, BODY)
    assert httpx.post(receiver.url, content=BODY, headers=forged).status_code == 401
    assert httpx.post(receiver.url, content=BODY, headers=headers(SECRET, "e" * 32, BODY)).status_code == 200
    assert receiver.refused == ["bad_signature"] and list(receiver.processed) == ["e" * 32]
