"""Refresh-token rotation, reuse detection (the whole family dies, and it is audited), logout."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.core.security import sha256_hex
from app.core.types import utcnow
from tests.assertions import assert_error
from tests.auth.conftest import LOGOUT, REFRESH, Db, bearer, me, session_id_of, tokens, unverified
from tests.conftest import World


def refresh(client: TestClient, token: str) -> Any:
    return client.post(REFRESH, json={"refresh_token": token})


def test_refresh_rotates_the_refresh_token_and_issues_a_new_access_token(client: TestClient, db: Db) -> None:
    first = tokens(client, "worker1")
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["token_type"] == "bearer" and second["expires_in"] <= 900
    # Same login session (family), new token id.
    c1, c2 = unverified(first["access_token"])[1], unverified(second["access_token"])[1]
    assert c1["sid"] == c2["sid"] and c1["jti"] != c2["jti"]
    assert me(client, second["access_token"]).status_code == 200
    # The next one rotates again.
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200
    with db.session() as s:
        from sqlalchemy import text

        rows = s.execute(text("SELECT token_hash, used_at FROM refresh_tokens")).all()
    used = {h for h, at in rows if at is not None}
    assert {sha256_hex(first["refresh_token"]), sha256_hex(second["refresh_token"])} <= used
    assert sha256_hex(third.json()["refresh_token"]) not in used


def test_reusing_a_refresh_token_revokes_the_whole_family_and_is_audited(
    client: TestClient, db: Db, world: World
) -> None:
    stolen = tokens(client, "worker1")
    other_login = tokens(client, "worker1")  # another device: a separate family
    rotated = refresh(client, stolen["refresh_token"]).json()
    before = db.last_audit_id()

    # The old token is presented again (by the thief or by the victim — the server cannot tell).
    reuse = refresh(client, stolen["refresh_token"])
    assert_error(reuse, 401, "refresh_token_invalid")

    # Every token of that family is dead: the sibling refresh token and both access tokens.
    assert_error(refresh(client, rotated["refresh_token"]), 401, "refresh_token_invalid")
    assert_error(me(client, rotated["access_token"]), 401, "session_expired")
    assert_error(me(client, stolen["access_token"]), 401, "session_expired")
    # The other device's login is untouched.
    assert me(client, other_login["access_token"]).status_code == 200
    assert refresh(client, other_login["refresh_token"]).status_code == 200

    sid = session_id_of(stolen["access_token"])
    login_session = db.auth_session(sid)
    assert login_session.revoked_at is not None and login_session.revoked_reason == "refresh_reuse"
    events = db.audit("auth.refresh_reuse", since_id=before)
    assert len(events) == 1
    event = events[0]
    assert (event.outcome, event.status_code, event.target_type, event.target_id) == (
        "denied", 401, "auth_session", sid)
    assert event.actor_id == world.users["worker1"]


def test_reuse_after_the_family_was_revoked_is_still_refused(client: TestClient) -> None:
    first = tokens(client, "worker1")
    refresh(client, first["refresh_token"])
    assert refresh(client, first["refresh_token"]).status_code == 401
    assert refresh(client, first["refresh_token"]).status_code == 401


def test_concurrent_use_of_one_refresh_token_lets_exactly_one_win(client: TestClient, db: Db) -> None:
    """The claim is a conditional UPDATE: racing requests cannot both rotate the same token."""
    first = tokens(client, "worker1")
    results: list[Any] = []
    barrier = threading.Barrier(6)

    def use() -> None:
        barrier.wait()
        results.append(refresh(client, first["refresh_token"]))

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [401] * 5
    # The losers are reuses: the family is revoked, including the winner's fresh tokens.
    winner = next(r for r in results if r.status_code == 200).json()
    assert refresh(client, winner["refresh_token"]).status_code == 401
    assert me(client, winner["access_token"]).status_code == 401
    assert db.auth_session(session_id_of(first["access_token"])).revoked_reason == "refresh_reuse"


def test_unknown_refresh_token_is_refused_and_audited(client: TestClient, db: Db) -> None:
    before = db.last_audit_id()
    assert_error(refresh(client, "not-a-token-we-issued"), 401, "refresh_token_invalid")
    events = db.audit("auth.refresh", since_id=before)
    assert events and events[-1].outcome == "failure"


def test_access_token_is_not_a_refresh_token(client: TestClient) -> None:
    first = tokens(client, "worker1")
    assert_error(refresh(client, first["access_token"][:256]), 401, "refresh_token_invalid")


def test_refresh_of_an_idle_session_fails_and_revokes_it(client: TestClient, db: Db, settings: Any) -> None:
    first = tokens(client, "worker1")
    sid = session_id_of(first["access_token"])
    db.update_auth_session(sid, last_seen_at=utcnow() - timedelta(minutes=settings.idle_timeout_minutes + 1))
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_invalid")
    assert db.auth_session(sid).revoked_reason == "idle"


def test_refresh_of_an_expired_session_fails(client: TestClient, db: Db) -> None:
    first = tokens(client, "worker1")
    db.update_auth_session(session_id_of(first["access_token"]), expires_at=utcnow() - timedelta(seconds=1))
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_invalid")


def test_refresh_for_a_disabled_user_fails(client: TestClient, api: Any, world: World) -> None:
    first = tokens(client, "worker1")
    uid = world.users["worker1"]
    version = api.as_("admin", "GET", f"/api/v1/users/{uid}").json()["version"]
    api.as_("admin", "PATCH", f"/api/v1/users/{uid}", json={"active": False, "version": version})
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_invalid")


def test_refresh_counts_as_activity(client: TestClient, db: Db, settings: Any) -> None:
    first = tokens(client, "worker1")
    sid = session_id_of(first["access_token"])
    db.update_auth_session(sid, last_seen_at=utcnow() - timedelta(minutes=settings.idle_timeout_minutes - 1))
    assert refresh(client, first["refresh_token"]).status_code == 200
    assert utcnow() - db.auth_session(sid).last_seen_at < timedelta(minutes=1)


def test_refresh_input_is_validated(client: TestClient) -> None:
    assert_error(client.post(REFRESH, json={}), 422, "validation_error")
    assert_error(client.post(REFRESH, json={"refresh_token": ""}), 422, "validation_error")
    assert_error(client.post(REFRESH, json={"refresh_token": "x" * 257}), 422, "validation_error")
    assert_error(client.post(REFRESH, json={"refresh_token": "abc", "extra": 1}), 422, "validation_error")


# --- logout ------------------------------------------------------------------------------------------

def test_logout_ends_the_session_at_once(client: TestClient, db: Db) -> None:
    first = tokens(client, "worker1")
    other = tokens(client, "worker1")
    before = db.last_audit_id()
    response = client.post(LOGOUT, headers=bearer(first["access_token"]))
    assert response.status_code == 204
    # The very next request with the same (unexpired) access token fails, and so does its refresh token.
    assert_error(me(client, first["access_token"]), 401, "session_expired")
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_invalid")
    # A second logout with it is refused too.
    assert_error(client.post(LOGOUT, headers=bearer(first["access_token"])), 401, "session_expired")
    # The user's other session is not affected.
    assert me(client, other["access_token"]).status_code == 200
    sid = session_id_of(first["access_token"])
    assert db.auth_session(sid).revoked_reason == "logout"
    assert [e.target_id for e in db.audit("auth.logout", since_id=before)] == [sid]


def test_logout_needs_a_token(client: TestClient) -> None:
    assert_error(client.post(LOGOUT), 401, "unauthorized")
