"""Password policy, changing one's own password, admin resets and the forced change that follows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.deps import ACCESS_RULE
from app.core.routes import api_routes
from tests.assertions import assert_error
from tests.auth.conftest import NEW_PASSWORD, PASSWORD_URL, USERS, Db, bearer, login, me, session_id_of, tokens
from tests.conftest import PASSWORD, Api, World


def change(client: TestClient, access: str, old: str, new: str) -> Any:
    return client.post(PASSWORD_URL, headers=bearer(access), json={"old_password": old, "new_password": new})


# --- policy ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Ab1!xyz", "password_too_short"),
        ("Ab1!", "password_too_short"),
        ("abcdefghij", "password_too_simple"),  # one class
        ("abcdefgh12", "password_too_simple"),  # two classes
        ("ABCDEFGH!!", "password_too_simple"),
        ("P@ssw0rd", "password_common"),
        ("Password123", "password_common"),
        ("Aa123456!", "password_common"),
        ("Admin@2026", "password_common"),  # a common word dressed up with digits and symbols
        ("P@ssw0rd2026!", "password_common"),
        ("Qwerty123!", "password_common"),
        ("Zhangwei@1990", "password_common"),
        ("aaaaaaaaaaaaaaaaaaaa", "password_common"),  # long but a single repeated character
        ("ababababababababab", "password_common"),
        ("Worker1-Secure!", "password_contains_username"),
        ("xx-WORKER1-xx-Strong", "password_contains_username"),
        ("Aa1!" + "x" * 130, "password_too_long"),
        # Issue 11, item 10: padding and invisible characters do not make a password long.
        ("Aa1!" + "\u200b" * 8, "password_invisible_characters"),  # zero-width spaces
        ("Aa1!" + "\u200b" * 8, "password_too_short"),
        ("Night-Shift\u200d-Visit-42", "password_invisible_characters"),  # a zero-width joiner inside
        ("Night-Shift\u2028Visit-42", "password_invisible_characters"),  # line separator
        ("Aa1!" + "\u3164" * 8, "password_invisible_characters"),  # Hangul filler (a letter nobody sees)
        ("Aa1!\u00ad\u00ad\u00ad\u00adxyz", "password_invisible_characters"),  # soft hyphens
        (" " * 8 + "1aA!", "password_too_short"),  # leading spaces
        ("1aA!" + " " * 8, "password_too_short"),  # trailing spaces
        ("1a" + " " * 10 + "A!", "password_too_short"),  # a run of spaces counts once
        ("Ａａ１！" + "\u3000" * 6, "password_too_short"),  # full-width, padded with ideographic spaces
        ("abcdefghijklmnopq", "password_predictable"),  # a 16+ passphrase that is a sequence
        ("Aa1!1234", "password_predictable"),
        ("Ａａ１！１２３４", "password_predictable"),  # full-width: NFKC makes it Aa1!1234
        ("Ａａ１！Ａａ１！", "password_predictable"),  # a repeated block
        ("Zq8#9876543210", "password_predictable"),  # descending digits
        ("Xy1!qwertyuiop", "password_predictable"),  # a keyboard row
        ("Km7!asdfghjkl;", "password_predictable"),
        ("Hh5%!@#$%^&*", "password_predictable"),  # the shifted digit row
        ("Wt4$" + "7" * 12, "password_predictable"),
        ("woaini1314!A", "password_common"),  # a common password with a little added
        ("5201314Aa!", "password_common"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule_named(client: TestClient, password: str, rule: str) -> None:
    access = tokens(client, "worker1")["access_token"]
    body = assert_error(change(client, access, PASSWORD, password), 422, "weak_password")
    assert rule in body["details"]["rules"]
    # Nothing changed.
    assert login(client, "worker1").status_code == 200


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",  # a 16+ character passphrase needs no particular classes
        "我们的社区服务很好每天都去走访居民",  # a Chinese passphrase
        "mountain river village path",
        "Kx9#mPq2",  # 8 characters, 4 classes
        "Vv7-tram-lake",  # 3 classes
        "x" * 3 + "Q7!" + "placid-lemur" * 10,  # long is fine up to 128
        "Tr0ub4dor&3-abc",  # a short sequence inside a strong password is fine
        "Quiet river 7 bends",  # single inner spaces count
        "５月走访-Ｖｉｓｉｔ",  # full-width letters, NFKC'd
    ],
)
def test_good_passwords_and_long_passphrases_are_welcome(client: TestClient, password: str) -> None:
    password = password[:128]
    access = tokens(client, "worker1")["access_token"]
    assert change(client, access, PASSWORD, password).status_code == 204
    assert login(client, "worker1", password).status_code == 200


def test_reusing_the_current_password_is_refused(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    body = assert_error(change(client, access, PASSWORD, PASSWORD), 422, "weak_password")
    assert body["details"]["rules"] == ["password_reused"]


def test_full_width_input_matches_half_width(client: TestClient) -> None:
    """A Chinese IME in full-width mode types ＡＢＣ１２３: the password is normalised (NFKC) so it still matches."""
    access = tokens(client, "worker1")["access_token"]
    assert change(client, access, PASSWORD, NEW_PASSWORD).status_code == 204
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in NEW_PASSWORD)
    assert full_width != NEW_PASSWORD
    assert login(client, "worker1", full_width).status_code == 200


def test_spaces_inside_and_around_a_password_count(client: TestClient) -> None:
    """Padding does not count toward the length, but it is part of the secret: nothing typed is dropped."""
    access = tokens(client, "worker1")["access_token"]
    padded = "  " + NEW_PASSWORD + " "
    assert change(client, access, PASSWORD, padded).status_code == 204
    assert login(client, "worker1", padded).status_code == 200
    assert_error(login(client, "worker1", NEW_PASSWORD), 401, "invalid_credentials")


@pytest.mark.parametrize("old_password", [
    "Aa1!" + "\u200b" * 8,  # would be refused today (invisible characters, too short)
    " " * 8 + "1aA!",  # would be refused today (padding)
    "abcdefghijklmnopq",  # would be refused today (a sequence)
    "Ｆｉｅｌｄ－Ｗｏｒｋ－２０２６！",  # set in full width
])
def test_passwords_set_under_the_old_policy_keep_working(client: TestClient, db: Db, old_password: str) -> None:
    """A stored hash is of the NFKC form, as since the first release: the new rules apply when a password is
    set, never at sign-in, so nobody is locked out by them."""
    import unicodedata

    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
    from sqlalchemy import update

    from app.auth.models import User

    legacy = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024),)).hash(
        unicodedata.normalize("NFKC", old_password))
    with db.session() as s:
        s.execute(update(User).where(User.username == "worker1").values(password_hash=legacy))
        s.commit()
    assert login(client, "worker1", old_password).status_code == 200
    half_width = unicodedata.normalize("NFKC", old_password)
    assert login(client, "worker1", half_width).status_code == 200
    assert_error(login(client, "worker1", half_width.strip() + "x"), 401, "invalid_credentials")


# --- change own password --------------------------------------------------------------------------------

def test_change_password_needs_the_current_one(client: TestClient, db: Db) -> None:
    access = tokens(client, "worker1")["access_token"]
    before = db.last_audit_id()
    assert_error(change(client, access, "Not-My-Password-1", NEW_PASSWORD), 403, "wrong_password")
    assert login(client, "worker1").status_code == 200
    assert_error(login(client, "worker1", NEW_PASSWORD), 401, "invalid_credentials")
    denied = db.audit("http.denied", since_id=before)
    assert denied and denied[0].status_code == 403 and denied[0].detail == '{"code": "wrong_password"}'


def test_guessing_the_current_password_locks_the_account(client: TestClient) -> None:
    """A stolen access token must not become an unlimited password-guessing oracle."""
    access = tokens(client, "worker1")["access_token"]
    for _ in range(5):
        assert_error(change(client, access, "Guess-Number-1!", NEW_PASSWORD), 403, "wrong_password")
    assert_error(change(client, access, PASSWORD, NEW_PASSWORD), 429, "login_locked")
    assert_error(login(client, "worker1"), 429, "login_locked")


def test_change_password_success_ends_the_other_sessions(client: TestClient, db: Db, world: World) -> None:
    here = tokens(client, "worker1")
    elsewhere = tokens(client, "worker1")
    version = db.user("worker1").version
    before = db.last_audit_id()
    assert change(client, here["access_token"], PASSWORD, NEW_PASSWORD).status_code == 204
    # This session goes on; the others are over (access and refresh).
    assert me(client, here["access_token"]).status_code == 200
    assert_error(me(client, elsewhere["access_token"]), 401, "session_expired")
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}).status_code == 401
    assert db.auth_session(session_id_of(elsewhere["access_token"])).revoked_reason == "password_changed"
    # Old password out, new one in.
    assert_error(login(client, "worker1"), 401, "invalid_credentials")
    assert login(client, "worker1", NEW_PASSWORD).status_code == 200
    user = db.user("worker1")
    assert user.version == version + 1
    assert user.password_hash.startswith("$argon2id$")
    events = db.audit("auth.password_change", since_id=before)
    assert [e.target_id for e in events] == [world.users["worker1"]]


def test_change_password_input_is_validated(client: TestClient) -> None:
    access = tokens(client, "worker1")["access_token"]
    for body in ({}, {"old_password": PASSWORD}, {"old_password": PASSWORD, "new_password": ""},
                 {"old_password": PASSWORD, "new_password": NEW_PASSWORD, "username": "admin"}):
        assert_error(client.post(PASSWORD_URL, headers=bearer(access), json=body), 422, "validation_error")
    assert_error(client.post(PASSWORD_URL, json={"old_password": "a", "new_password": "b"}), 401, "unauthorized")


# --- admin reset and the forced change ------------------------------------------------------------------------

TEMP = "Temp-Reset-2026-ok"


def reset(api: Api, user_id: str, password: str = TEMP) -> Any:
    return api.as_("admin", "POST", f"{USERS}/{user_id}/reset-password", json={"temporary_password": password})


def test_admin_reset_forces_a_change_at_next_login(client: TestClient, api: Api, world: World, db: Db) -> None:
    old_session = tokens(client, "worker1")
    uid = world.users["worker1"]
    before = db.last_audit_id()
    assert reset(api, uid).status_code == 204
    # Every session of the user ended; the old password is gone.
    assert_error(me(client, old_session["access_token"]), 401, "session_expired")
    assert_error(login(client, "worker1"), 401, "invalid_credentials")
    assert [e.target_id for e in db.audit("auth.password_reset", since_id=before)] == [uid]

    first = tokens(client, "worker1", TEMP)
    assert first["must_change_password"] is True
    access = first["access_token"]
    # Only /auth/me, /auth/password and /auth/logout work until the password is changed.
    body = me(client, access).json()
    assert body["must_change_password"] is True
    # The temporary password cannot be kept.
    assert_error(change(client, access, TEMP, TEMP), 422, "weak_password")
    assert change(client, access, TEMP, NEW_PASSWORD).status_code == 204
    assert me(client, access).json()["must_change_password"] is False
    assert tokens(client, "worker1", NEW_PASSWORD)["must_change_password"] is False


def test_pending_password_change_blocks_every_other_route(client: TestClient, api: Api, world: World) -> None:
    """Every authenticated operation except me/password/logout answers 403 password_change_required —
    checked against the app's actual route table, so a new route that forgets the rule fails here."""
    from app.main import app

    # An admin under a forced change: role checks would let an admin through almost anywhere.
    created = api.as_("admin", "POST", USERS, json={
        "username": "fresh.admin", "display_name": "Fresh", "role": "admin", "password": TEMP})
    assert created.status_code == 201
    access = tokens(client, "fresh.admin", TEMP)["access_token"]
    allowed = {"/api/v1/auth/me", "/api/v1/auth/password", "/api/v1/auth/logout"}
    checked = 0
    for path, route in api_routes(app):
        if not path.startswith("/api/") or path in allowed:
            continue
        if getattr(route.endpoint, ACCESS_RULE, None) == "public":
            continue
        url = path.replace("{", "").replace("}", "")  # any value will do for path parameters
        for method in sorted(route.methods or ()):
            response = client.request(method, url, headers=bearer(access))
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == "password_change_required", (method, path)
            checked += 1
    assert checked >= 5
    # …and the three that stay open do work.
    assert me(client, access).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(access)).status_code == 204


def test_reset_unlocks_a_locked_account(client: TestClient, api: Api, world: World) -> None:
    for _ in range(5):
        login(client, "worker1", "Wrong-Guess-99!")
    assert_error(login(client, "worker1"), 429, "login_locked")
    assert reset(api, world.users["worker1"]).status_code == 204
    assert login(client, "worker1", TEMP).status_code == 200


def test_reset_checks_the_policy_and_the_caller(api: Api, world: World) -> None:
    uid = world.users["worker1"]
    body = assert_error(reset(api, uid, "short"), 422, "weak_password")
    assert "password_too_short" in body["details"]["rules"]
    for who in ("worker2", "sup_district", "auditor"):
        assert_error(api.as_(who, "POST", f"{USERS}/{uid}/reset-password", json={"temporary_password": TEMP}),
                     403, "forbidden")
    assert_error(api.as_("admin", "POST", f"{USERS}/{'0' * 32}/reset-password", json={"temporary_password": TEMP}),
                 404, "not_found")


def test_reset_bumps_the_version(api: Api, world: World, db: Db) -> None:
    version = db.user("worker1").version
    assert reset(api, world.users["worker1"]).status_code == 204
    assert db.user("worker1").version == version + 1
    assert db.user("worker1").must_change_password is True
