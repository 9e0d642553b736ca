"""Sign-in: no user enumeration, lockout per account name, throttling per client address."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth import service
from app.core import security
from app.core.db import get_engine
from app.core.types import utcnow
from tests.assertions import assert_error
from tests.auth.conftest import LOGIN, Db, login, me, tokens
from tests.conftest import PASSWORD, World

WRONG = "Not-The-Password-1"


def fail(client: TestClient, username: str, times: int, password: str = WRONG) -> list[Any]:
    return [login(client, username, password) for _ in range(times)]


def test_login_succeeds_and_the_token_works(client: TestClient, world: World, db: Db) -> None:
    before = db.last_audit_id()
    body = tokens(client, "worker1")
    response = me(client, body["access_token"])
    assert response.status_code == 200
    assert response.json()["username"] == "worker1"
    event = db.audit("auth.login", since_id=before)[-1]
    assert (event.outcome, event.actor_id, event.actor_role) == ("success", world.users["worker1"], "worker")


def test_username_is_case_and_space_insensitive(client: TestClient) -> None:
    assert login(client, "  Worker1 ").status_code == 200


def test_password_is_case_sensitive_and_taken_verbatim(client: TestClient) -> None:
    assert_error(login(client, "worker1", PASSWORD.lower()), 401, "invalid_credentials")
    assert_error(login(client, "worker1", f" {PASSWORD} "), 401, "invalid_credentials")


def test_wrong_password_unknown_user_and_disabled_account_look_identical(
    client: TestClient, world: World, db: Db, api: Any
) -> None:
    # Disable worker2 through the admin API.
    user = api.as_("admin", "GET", f"/api/v1/users/{world.users['worker2']}").json()
    api.as_("admin", "PATCH", f"/api/v1/users/{user['id']}", json={"active": False, "version": user["version"]})

    wrong = login(client, "worker1", WRONG)
    unknown = login(client, "nobody-here", WRONG)
    disabled = login(client, "worker2", PASSWORD)  # the right password of a disabled account
    for response in (wrong, unknown, disabled):
        assert_error(response, 401, "invalid_credentials")
    assert wrong.json() == unknown.json() == disabled.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
    assert set(wrong.headers) == set(unknown.headers) == set(disabled.headers)
    # The reasons are told apart only in the audit log.
    reasons = [e.detail for e in db.audit("auth.login")[-3:]]
    assert all(e.outcome == "failure" for e in db.audit("auth.login")[-3:])
    assert reasons == ['{"reason": "wrong_password"}', '{"reason": "unknown_user"}', '{"reason": "disabled"}']


def test_unknown_user_costs_one_argon2_verification_like_a_known_one(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing assertion: instead, both paths must run the same password verifier with a hash of the
    same parameters (so they cost the same)."""
    calls: list[str] = []
    original = Argon2Hasher.verify

    def spy(self: Argon2Hasher, password: Any, hash: Any) -> bool:
        calls.append(str(hash))
        return original(self, password, hash)

    monkeypatch.setattr(Argon2Hasher, "verify", spy)
    login(client, "worker1", WRONG)
    login(client, "no-such-user", WRONG)
    assert len(calls) == 2
    known_hash, dummy_hash = calls
    assert known_hash == db.user("worker1").password_hash
    assert dummy_hash != known_hash

    def params(h: str) -> str:  # "$argon2id$v=19$m=…,t=…,p=…$salt$hash" → variant, version, cost
        return "$".join(h.split("$")[1:4])

    assert params(dummy_hash) == params(known_hash)
    assert params(known_hash).startswith("argon2id$")


def test_lockout_after_five_failures_for_an_existing_account(client: TestClient, db: Db, settings: Any) -> None:
    for response in fail(client, "worker1", 5):
        assert_error(response, 401, "invalid_credentials")
    # Locked now: even the right password is refused, with a stable code and Retry-After.
    locked = login(client, "worker1", PASSWORD)
    body = assert_error(locked, 429, "login_locked")
    retry = int(locked.headers["retry-after"])
    assert 0 < retry <= settings.login_lock_minutes * 60
    assert body["details"]["retry_after_seconds"] == retry
    # Other accounts are not affected.
    assert login(client, "worker2").status_code == 200
    # The lockout is audited.
    denied = db.audit("auth.login")[-2]
    assert (denied.outcome, denied.status_code, denied.detail) == ("denied", 429, '{"reason": "account_locked"}')


def test_unknown_name_locks_exactly_like_an_existing_one(client: TestClient) -> None:
    known = fail(client, "worker1", 6)
    unknown = fail(client, "ghost-account", 6)
    for k, u in zip(known[:5], unknown[:5], strict=True):
        assert k.status_code == u.status_code == 401
        assert k.json() == u.json()
    assert_error(known[5], 429, "login_locked")
    assert_error(unknown[5], 429, "login_locked")
    assert known[5].json()["message"] == unknown[5].json()["message"]
    assert abs(int(known[5].headers["retry-after"]) - int(unknown[5].headers["retry-after"])) <= 2


def test_lock_is_per_name_regardless_of_spelling(client: TestClient) -> None:
    fail(client, "worker1", 3)
    fail(client, "WORKER1", 2)
    assert_error(login(client, " Worker1"), 429, "login_locked")


def test_success_resets_the_failure_count(client: TestClient) -> None:
    fail(client, "worker1", 4)
    assert login(client, "worker1").status_code == 200
    fail(client, "worker1", 4)
    assert login(client, "worker1").status_code == 200


def test_lock_ends_after_the_lock_period(client: TestClient, db: Db, settings: Any) -> None:
    fail(client, "worker1", 5)
    assert_error(login(client, "worker1"), 429, "login_locked")
    key = service.account_key(settings, "worker1")
    row = db.throttle(key)
    assert row is not None and row.locked_until is not None
    assert timedelta(minutes=14) < row.locked_until - utcnow() <= timedelta(minutes=settings.login_lock_minutes)
    db.update_throttle(key, locked_until=utcnow() - timedelta(seconds=1))
    assert login(client, "worker1").status_code == 200


def test_throttle_rows_store_no_names(client: TestClient, db: Db, settings: Any) -> None:
    fail(client, "worker1", 1)
    with db.session() as s:
        from sqlalchemy import text

        keys = [r[0] for r in s.execute(text("SELECT key FROM login_throttle")).all()]
    assert service.account_key(settings, "worker1") in keys
    assert all("worker1" not in k and len(k) == 64 for k in keys)


def test_failures_older_than_the_window_do_not_add_up(client: TestClient, db: Db, settings: Any) -> None:
    fail(client, "worker1", 4)
    key = service.account_key(settings, "worker1")
    db.update_throttle(key, window_started_at=utcnow() - timedelta(minutes=settings.login_lock_minutes + 1))
    fail(client, "worker1", 4)
    assert login(client, "worker1").status_code == 200


def test_client_address_is_throttled(client: TestClient, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "login_ip_max_failures", 3)
    monkeypatch.setattr(settings, "trust_forwarded_for", True)
    office = {"X-Forwarded-For": "10.1.2.3"}
    # Three failures on three different names (no account reaches its own limit)…
    for name in ("worker1", "someone", "worker2"):
        assert_error(client.post(LOGIN, json={"username": name, "password": WRONG}, headers=office),
                     401, "invalid_credentials")
    # …and that address may not sign in at all for the rest of the window, even with a right password.
    blocked = client.post(LOGIN, json={"username": "worker3", "password": PASSWORD}, headers=office)
    body = assert_error(blocked, 429, "login_locked")
    retry = int(blocked.headers["retry-after"])
    assert 0 < retry <= settings.login_ip_window_minutes * 60
    assert body["details"]["retry_after_seconds"] == retry
    # Another address is unaffected, and so is the account itself.
    other = client.post(LOGIN, json={"username": "worker3", "password": PASSWORD},
                        headers={"X-Forwarded-For": "10.9.9.9"})
    assert other.status_code == 200


def test_address_window_expires(client: TestClient, db: Db, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "login_ip_max_failures", 2)
    fail(client, "a-name", 1)
    fail(client, "b-name", 1)
    assert_error(login(client, "worker1"), 429, "login_locked")
    key = service.address_key(settings, "testclient")
    db.update_throttle(key, window_started_at=utcnow() - timedelta(minutes=settings.login_ip_window_minutes + 1))
    assert login(client, "worker1").status_code == 200


def test_parallel_guesses_cannot_exceed_the_limit(client: TestClient) -> None:
    """Ten simultaneous wrong guesses at one name: exactly five are checked, the rest are locked out."""
    results: list[int] = []
    barrier = threading.Barrier(10)

    def attempt() -> None:
        barrier.wait()
        results.append(login(client, "worker1", WRONG).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [401] * 5 + [429] * 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"username": "worker1"}, "validation_error"),
        ({"username": "", "password": "x"}, "validation_error"),
        ({"username": "worker1", "password": ""}, "validation_error"),
        ({"username": 5, "password": "x"}, "validation_error"),
        ({"username": "worker1", "password": PASSWORD, "role": "admin"}, "validation_error"),
        ({"username": "x" * 65, "password": "x"}, "validation_error"),
        ({"username": "worker1", "password": "x" * 257}, "validation_error"),
        ({"username": "work\u0000er1", "password": "x"}, "nul_byte"),
    ],
)
def test_bad_login_input_is_a_clear_422(client: TestClient, body: dict[str, Any], code: str) -> None:
    assert_error(client.post(LOGIN, json=body), 422, code)


def test_non_json_login_body_is_a_4xx(client: TestClient) -> None:
    response = client.post(LOGIN, content=b"username=worker1", headers={"Content-Type": "text/plain"})
    assert 400 <= response.status_code < 500
    assert "code" in response.json()


@pytest.mark.parametrize("password", [PASSWORD, WRONG])
def test_the_password_check_holds_no_connection(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                password: str) -> None:
    """argon2 takes a third of a second: while it runs, the sign-in holds no pooled connection (and so no
    write lock), or a morning of sign-ins queues every write in the city behind it (issue 12)."""
    engine = get_engine()
    seen: list[int] = []
    verify = security.verify_and_update_password

    def watched(plain: str, stored: str | None) -> tuple[bool, str | None]:
        seen.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        return verify(plain, stored)

    monkeypatch.setattr(security, "verify_and_update_password", watched)
    response = login(client, "worker1", password)
    assert response.status_code == (200 if password == PASSWORD else 401)
    assert seen == [0]
