"""Session state is read on every request: idle timeout, disabling, role and scope changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.core.types import utcnow
from tests.assertions import assert_error
from tests.auth.conftest import USERS, Db, bearer, login, me, session_id_of, tokens
from tests.conftest import Api, World


def patch_user(api: Api, user_id: str, **changes: Any) -> Any:
    version = api.as_("admin", "GET", f"{USERS}/{user_id}").json()["version"]
    response = api.as_("admin", "PATCH", f"{USERS}/{user_id}", json={**changes, "version": version})
    assert response.status_code == 200, response.text
    return response.json()


# --- idle timeout --------------------------------------------------------------------------------------

def test_idle_session_ends(client: TestClient, db: Db, settings: Any) -> None:
    assert settings.idle_timeout_minutes == 30
    access = tokens(client, "worker1")["access_token"]
    sid = session_id_of(access)
    db.update_auth_session(sid, last_seen_at=utcnow() - timedelta(minutes=31))
    before = db.last_audit_id()
    response = me(client, access)
    assert_error(response, 401, "session_expired")
    assert response.headers["www-authenticate"] == "Bearer"
    login_session = db.auth_session(sid)
    assert login_session.revoked_at is not None and login_session.revoked_reason == "idle"
    assert [e.target_id for e in db.audit("auth.session_idle", since_id=before)] == [sid]
    # Activity afterwards does not bring it back.
    db.update_auth_session(sid, last_seen_at=utcnow())
    assert_error(me(client, access), 401, "session_expired")


def test_idle_timeout_on_a_write_request(client: TestClient, db: Db) -> None:
    access = tokens(client, "worker1")["access_token"]
    sid = session_id_of(access)
    db.update_auth_session(sid, last_seen_at=utcnow() - timedelta(minutes=31))
    assert_error(client.post("/api/v1/auth/logout", headers=bearer(access)), 401, "session_expired")
    assert db.auth_session(sid).revoked_reason == "idle"


def test_activity_keeps_the_session_alive(client: TestClient, db: Db) -> None:
    access = tokens(client, "worker1")["access_token"]
    sid = session_id_of(access)
    db.update_auth_session(sid, last_seen_at=utcnow() - timedelta(minutes=29))
    assert me(client, access).status_code == 200
    seen = db.auth_session(sid).last_seen_at
    assert utcnow() - seen < timedelta(minutes=1)
    assert db.auth_session(sid).revoked_at is None


def test_idle_timeout_is_configurable(client: TestClient, db: Db, settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(settings, "idle_timeout_minutes", 5)
    access = tokens(client, "worker1")["access_token"]
    db.update_auth_session(session_id_of(access), last_seen_at=utcnow() - timedelta(minutes=6))
    assert_error(me(client, access), 401, "session_expired")


# --- disabling and role changes take effect on the very next request ----------------------------------------

def test_disabling_a_user_ends_their_sessions_on_the_next_request(
    client: TestClient, api: Api, world: World, db: Db
) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert me(client, access).status_code == 200
    patch_user(api, world.users["worker1"], active=False)
    assert_error(me(client, access), 401, "session_expired")
    assert db.auth_session(session_id_of(access)).revoked_reason == "disabled"
    assert_error(login(client, "worker1"), 401, "invalid_credentials")
    # Enabling again lets them sign in, but the old sessions stay dead.
    patch_user(api, world.users["worker1"], active=True)
    assert_error(me(client, access), 401, "session_expired")
    assert login(client, "worker1").status_code == 200


def test_a_disabled_account_is_refused_even_if_its_session_was_not_revoked(
    client: TestClient, world: World, db: Db
) -> None:
    """The account flag itself is checked on every request, not only the sessions."""
    access = tokens(client, "worker1")["access_token"]
    from sqlalchemy import update
    from sqlmodel import col

    from app.auth.models import User

    with db.session() as s:
        s.execute(update(User).where(col(User.id) == world.users["worker1"]).values(active=False))
        s.commit()
    assert_error(me(client, access), 401, "session_expired")


def test_role_change_takes_effect_on_the_next_request(client: TestClient, api: Api, world: World) -> None:
    access = tokens(client, "worker1")["access_token"]
    assert_error(client.get(USERS, headers=bearer(access)), 403, "forbidden")
    promoted = patch_user(api, world.users["worker1"], role="admin")
    assert promoted["division_ids"] == []
    # Same token, new powers.
    assert client.get(USERS, headers=bearer(access)).status_code == 200
    assert me(client, access).json()["role"] == "admin"
    assert me(client, access).json()["scope"] is None
    # And back.
    patch_user(api, world.users["worker1"], role="worker", division_ids=[world.community("c1")["id"]])
    assert_error(client.get(USERS, headers=bearer(access)), 403, "forbidden")


def test_demoted_admin_loses_admin_routes_at_once(client: TestClient, api: Api, world: World) -> None:
    created = api.as_("admin", "POST", USERS, json={
        "username": "admin2", "display_name": "Second admin", "role": "admin", "password": "Temporary-Pass-2026"})
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    # Clear the forced change so the account can work.
    first = tokens(client, "admin2", "Temporary-Pass-2026")
    client.post("/api/v1/auth/password", headers=bearer(first["access_token"]),
                json={"old_password": "Temporary-Pass-2026", "new_password": "Admin-Two-Strong-99"})
    assert client.get(USERS, headers=bearer(first["access_token"])).status_code == 200
    patch_user(api, uid, role="supervisor", division_ids=[world.districts[0]["id"]])
    assert_error(client.get(USERS, headers=bearer(first["access_token"])), 403, "forbidden")


def test_scope_change_takes_effect_on_the_next_request(client: TestClient, api: Api, world: World) -> None:
    access = tokens(client, "worker1")["access_token"]
    c1, c2 = world.community("c1"), world.community("c2")
    assert [d["id"] for d in me(client, access).json()["scope"]] == [c1["id"]]
    patch_user(api, world.users["worker1"], division_ids=[c2["id"]])
    assert [d["id"] for d in me(client, access).json()["scope"]] == [c2["id"]]


def test_me_shows_role_and_scope(api: Api, world: World) -> None:
    body = api.as_("sup_street", "GET", "/api/v1/auth/me").json()
    assert body["role"] == "supervisor"
    assert [d["id"] for d in body["scope"]] == [world.community("c1")["parent_id"]]
    assert body["must_change_password"] is False
    admin = api.as_("admin", "GET", "/api/v1/auth/me").json()
    assert admin["scope"] is None and admin["role"] == "admin"
    auditor = api.as_("auditor", "GET", "/api/v1/auth/me").json()
    assert auditor["scope"] is None and auditor["role"] == "auditor"


def test_partner_role_rows_see_nothing_until_their_scope_model_exists(
    client: TestClient, world: World, db: Db
) -> None:
    """Partner kinds are known to the access model but cannot be created yet; should such an account
    exist (data migration, manual insert) it is not city-wide: its scope is empty (fail closed)."""
    from sqlalchemy import update
    from sqlmodel import col

    from app.auth.models import User

    access = tokens(client, "worker1")["access_token"]
    with db.session() as s:
        s.execute(update(User).where(col(User.id) == world.users["worker1"]).values(role="police"))
        s.commit()
    body = me(client, access).json()
    assert body["role"] == "police"
    assert body["scope"] == []
    assert_error(client.get(USERS, headers=bearer(access)), 403, "forbidden")


def test_an_unknown_role_in_the_database_is_refused(client: TestClient, world: World, db: Db) -> None:
    from sqlalchemy import update
    from sqlmodel import col

    from app.auth.models import User

    access = tokens(client, "worker1")["access_token"]
    with db.session() as s:
        s.execute(update(User).where(col(User.id) == world.users["worker1"]).values(role="superuser"))
        s.commit()
    assert_error(me(client, access), 403, "forbidden")
