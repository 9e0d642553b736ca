"""Access tokens: what a real one holds, and every kind of forged or damaged one is refused with 401."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.security import sha256_hex
from tests.assertions import assert_error
from tests.auth.conftest import Db, bearer, forge, keys, me, now_ts, tokens, unverified, valid_claims
from tests.conftest import World


def assert_rejected(client: TestClient, token: str) -> None:
    response = me(client, token)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_login_issues_a_short_lived_signed_access_token_and_an_opaque_refresh_token(
    client: TestClient, world: World, db: Db, settings: Any
) -> None:
    body = tokens(client, "worker1")
    assert body["token_type"] == "bearer"
    assert body["must_change_password"] is False
    assert body["expires_in"] == settings.access_token_minutes * 60 <= 15 * 60

    header, claims = unverified(body["access_token"])
    assert header["alg"] == "HS256"
    assert header["kid"] == "test-current"
    assert {"exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"} <= set(claims)
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["sub"] == world.users["worker1"]
    assert claims["typ"] == "access"
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60
    assert abs(claims["iat"] - now_ts()) < 60
    # No personal data or authorisation in the token: role and scope are read from the database.
    assert "role" not in claims and "username" not in claims

    # The refresh token is opaque (not a JWT) and only its hash is stored.
    refresh = body["refresh_token"]
    assert refresh.count(".") != 2 and len(refresh) >= 40
    with db.session() as s:
        from sqlalchemy import text

        stored = [r[0] for r in s.execute(text("SELECT token_hash FROM refresh_tokens")).all()]
    assert sha256_hex(refresh) in stored
    assert refresh not in stored


def test_each_login_gets_its_own_session_and_token_id(client: TestClient) -> None:
    first, second = tokens(client, "worker1"), tokens(client, "worker1")
    c1, c2 = unverified(first["access_token"])[1], unverified(second["access_token"])[1]
    assert c1["jti"] != c2["jti"]
    assert c1["sid"] != c2["sid"]
    assert first["refresh_token"] != second["refresh_token"]


def test_a_correctly_signed_token_is_accepted(client: TestClient) -> None:
    """Control for the forgeries below: the hand-built token is right when nothing is tampered with."""
    access = tokens(client, "worker1")["access_token"]
    assert me(client, forge(valid_claims(access))).status_code == 200


def test_previous_key_still_verifies_for_rotation(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    token = forge(valid_claims(access), header={"alg": "HS256", "typ": "JWT", "kid": "test-previous"},
                  secret=keys()["test-previous"])
    assert me(client, token).status_code == 200


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        pytest.param({"alg": "HS256", "kid": "retired-2019"}, "test-signing-key-current-0123456789abcdef",
                     id="unknown-kid-signed-with-current-secret"),
        pytest.param({"alg": "HS256", "kid": "attacker"}, "attacker-chosen-secret-0123456789abcdef",
                     id="unknown-kid-attacker-secret"),
        pytest.param({"alg": "HS256"}, None, id="no-kid"),
        pytest.param({"alg": "HS256", "kid": None}, None, id="null-kid"),
        pytest.param({"alg": "HS256", "kid": ["test-current"]}, None, id="list-kid"),
        pytest.param({"alg": "HS256", "kid": 7}, None, id="numeric-kid"),
        pytest.param({"alg": "HS256", "kid": "test-current"}, "wrong-secret-0123456789abcdef0123456789",
                     id="known-kid-wrong-secret"),
        pytest.param({"alg": "HS256", "kid": "test-previous"}, None, id="previous-kid-signed-with-current"),
    ],
)
def test_unknown_or_mismatched_key_id_is_rejected(client: TestClient, header: dict[str, Any],
                                                  secret: str | None) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access), header=header, secret=secret))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_alg_none_is_rejected(client: TestClient, alg: str) -> None:
    access = tokens(client, "worker1")["access_token"]
    claims = valid_claims(access)
    assert_rejected(client, forge(claims, header={"alg": alg, "typ": "JWT", "kid": "test-current"}, signature=""))
    # …even with a (valid HS256) signature attached.
    signed = forge(claims).rsplit(".", 1)[1]
    assert_rejected(client, forge(claims, header={"alg": alg, "kid": "test-current"}, signature=signed))


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS512", hashlib.sha512), ("HS384", hashlib.sha384), ("RS256", hashlib.sha256), ("ES256", hashlib.sha256),
     ("hs256", hashlib.sha256)],
)
def test_any_algorithm_but_the_pinned_one_is_rejected(client: TestClient, alg: str, digest: Any) -> None:
    """Even signed with the right secret: HS512, an RS256/HS256 confusion, a lower-case spelling."""
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access), header={"alg": alg, "kid": "test-current"}, digest=digest))


def test_missing_alg_is_rejected(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access), header={"kid": "test-current"}))


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"])
def test_each_required_claim_is_required(client: TestClient, claim: str) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access, **{claim: None})))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "another-api"}, id="wrong-audience"),
        pytest.param({"aud": ["another-api"]}, id="wrong-audience-list"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"typ": "refresh"}, id="refresh-type"),
        pytest.param({"typ": "ACCESS"}, id="type-case"),
        pytest.param({"typ": ["access"]}, id="type-list"),
        pytest.param({"sub": 12345}, id="numeric-subject"),
        pytest.param({"sid": 12345}, id="numeric-session"),
        pytest.param({"sid": {"$ne": ""}}, id="object-session"),
        pytest.param({"sid": "x" * 5000}, id="huge-session"),
        pytest.param({"sid": "abc\u0000def"}, id="nul-in-session"),
        pytest.param({"sub": "' OR 1=1 --"}, id="sql-in-subject"),
        pytest.param({"jti": 7}, id="numeric-jti"),
        pytest.param({"exp": "tomorrow"}, id="text-exp"),
        pytest.param({"iat": "now"}, id="text-iat"),
    ],
)
def test_wrong_or_malformed_claims_are_rejected_not_a_500(client: TestClient, changes: dict[str, Any]) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access, **changes)))


def test_expired_token_is_rejected(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    now = now_ts()
    assert_rejected(client, forge(valid_claims(access, iat=now - 900, exp=now - 1)))


def test_token_issued_in_the_future_is_rejected(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    now = now_ts()
    assert_rejected(client, forge(valid_claims(access, iat=now + 300, exp=now + 600)))


def test_token_living_longer_than_fifteen_minutes_is_rejected(client: TestClient) -> None:
    """Even correctly signed: the lifetime ceiling does not depend on whoever minted the token."""
    access = tokens(client, "worker1")["access_token"]
    now = now_ts()
    assert_rejected(client, forge(valid_claims(access, iat=now, exp=now + 15 * 60 + 1)))
    assert me(client, forge(valid_claims(access, iat=now, exp=now + 15 * 60))).status_code == 200


def test_token_naming_another_users_session_is_rejected(client: TestClient, world: World) -> None:
    mine = tokens(client, "worker1")["access_token"]
    theirs = tokens(client, "admin")["access_token"]
    # worker1's subject with the admin's session id, and the other way round.
    assert_rejected(client, forge(valid_claims(mine, sid=unverified(theirs)[1]["sid"])))
    assert_rejected(client, forge(valid_claims(theirs, sub=world.users["worker1"])))


def test_token_for_a_session_that_never_existed_is_rejected(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_rejected(client, forge(valid_claims(access, sid="0" * 32)))


def test_refresh_token_is_never_accepted_as_an_access_token(client: TestClient) -> None:
    assert_rejected(client, tokens(client, "worker1")["refresh_token"])


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "a.b.c", "a.b", "....", "eyJ.eyJ.sig", "x" * 10000, "é.é.é"],
)
def test_garbage_bearer_tokens_are_rejected(client: TestClient, raw: str) -> None:
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {raw}".encode()})
    assert_error(response, 401, "unauthorized")


def test_header_that_is_not_json_object_is_rejected(client: TestClient) -> None:
    from tests.auth.conftest import b64

    token = b64(b"[1,2]") + "." + b64(b"{}") + ".sig"
    assert_rejected(client, token)


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Token abc", "Bearer"])
def test_missing_or_other_scheme_is_401(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/api/v1/auth/me", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_tampered_payload_breaks_the_signature(client: TestClient, world: World) -> None:
    access = tokens(client, "worker1")["access_token"]
    head, _, sig = access.split(".")
    import json

    from tests.auth.conftest import b64

    claims = valid_claims(access, sub=world.users["admin"])
    assert_rejected(client, head + "." + b64(json.dumps(claims).encode()) + "." + sig)


def test_rejected_tokens_are_audited_as_denied(client: TestClient, db: Db) -> None:
    before = db.last_audit_id()
    assert_rejected(client, forge({"sub": "x"}, header={"alg": "none"}, signature=""))
    events = db.audit("http.denied", since_id=before)
    assert events and events[-1].status_code == 401 and events[-1].outcome == "denied"


def test_accepted_token_carries_no_authority_of_its_own(client: TestClient) -> None:
    """A role claim smuggled into a valid token changes nothing: roles come from the database."""
    access = tokens(client, "worker1")["access_token"]
    response = client.get("/api/v1/users", headers=bearer(forge(valid_claims(access, role="admin"))))
    assert_error(response, 403, "forbidden")
