"""Verified access tokens are remembered by their text (`security.decode_access_token`), and a remembered one is
still refused once it expires, once its key is retired, and once the login session behind it ends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core import security
from tests.assertions import assert_error
from tests.auth.conftest import forge, keys, me, now_ts, tokens, valid_claims


def test_a_remembered_token_still_expires(client: TestClient) -> None:
    exp = now_ts() + 2
    token = forge(valid_claims(tokens(client, "worker1")["access_token"], iat=exp - 60, exp=exp))
    assert me(client, token).status_code == 200
    assert token in security._verified
    assert me(client, token).status_code == 200  # from memory
    time.sleep(max(0.0, exp - time.time()) + 0.05)  # the token's own expiry passes (no timing is asserted)
    assert_error(me(client, token), 401, "unauthorized")
    assert token not in security._verified


def test_a_remembered_token_of_a_retired_key_is_refused(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                        settings: Any) -> None:
    token = forge(valid_claims(tokens(client, "worker1")["access_token"]),
                  header={"alg": "HS256", "typ": "JWT", "kid": "test-previous"}, secret=keys()["test-previous"])
    assert me(client, token).status_code == 200
    assert token in security._verified
    current = "test-current:" + keys()["test-current"]
    monkeypatch.setattr(settings, "jwt_keys", current)  # the previous key is retired
    assert_error(me(client, token), 401, "unauthorized")


def test_a_remembered_token_of_an_ended_session_is_refused(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert me(client, access).status_code == 200
    assert access in security._verified
    assert client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {access}"}).status_code == 204
    assert_error(me(client, access), 401, "session_expired")


def test_memory_is_bounded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_VERIFIED_MAX", 2)
    seen: list[str] = []
    for _ in range(3):
        access = tokens(client, "worker1")["access_token"]
        assert me(client, access).status_code == 200
        seen.append(access)
    assert len(security._verified) <= 2 and seen[-1] in security._verified
    assert all(me(client, access).status_code == 200 for access in seen)  # forgotten ones verify afresh
