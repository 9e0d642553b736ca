"""Account administration: scope rules per role, conflicts, optimistic locking, who may do it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.assertions import assert_error
from tests.auth.conftest import USERS, Db, login, tokens
from tests.conftest import Api, World

TEMP = "Initial-Pass-2026!"


def new_user(api: Api, **fields: Any) -> Any:
    body = {"username": "new.person", "display_name": "New Person", "role": "worker", "password": TEMP, **fields}
    return api.as_("admin", "POST", USERS, json=body)


def street_of(world: World) -> dict[str, Any]:
    return next(s for s in world.streets if s["id"] == world.community("c1")["parent_id"])


# --- create: scope rules per role ----------------------------------------------------------------------------

def test_create_worker_with_a_community(api: Api, world: World, client: TestClient, db: Db) -> None:
    c1 = world.community("c1")
    before = db.last_audit_id()
    response = new_user(api, division_ids=[c1["id"]])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "new.person" and body["role"] == "worker"
    assert body["division_ids"] == [c1["id"]]
    assert body["must_change_password"] is True and body["active"] is True and body["version"] == 1
    assert "password_hash" not in body and "password" not in body
    # The account works, and must change its password first.
    assert tokens(client, "new.person", TEMP)["must_change_password"] is True
    created = db.audit("users.create", since_id=before)
    assert [e.target_id for e in created] == [body["id"]]
    assert "password_hash" in (created[0].fields or "") and TEMP not in (created[0].detail or "")


def test_create_worker_with_a_grid(api: Api, world: World) -> None:
    grid = world.grids[world.community("c1")["id"]][0]
    response = new_user(api, division_ids=[grid["id"]])
    assert response.status_code == 201
    assert response.json()["division_ids"] == [grid["id"]]


@pytest.mark.parametrize("level", ["city", "district", "street"])
def test_create_supervisor_with_a_subtree(api: Api, world: World, level: str) -> None:
    division = {"city": world.city, "district": world.districts[0], "street": street_of(world)}[level]
    response = new_user(api, role="supervisor", division_ids=[division["id"]])
    assert response.status_code == 201, response.text
    assert response.json()["division_ids"] == [division["id"]]


def test_create_admin_without_assignment(api: Api) -> None:
    response = new_user(api, role="admin")
    assert response.status_code == 201
    assert response.json()["division_ids"] == []


def test_auditor_accounts_are_out_of_the_admin_api(api: Api, world: World) -> None:
    """Separation of duties: an admin can neither create, become, reset nor retarget an auditor."""
    assert_error(new_user(api, role="auditor"), 403, "auditor_managed_by_operator")
    auditor = world.users["auditor"]
    version = api.as_("admin", "GET", f"{USERS}/{auditor}").json()["version"]
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{auditor}", json={"version": version, "active": False}),
                 403, "auditor_managed_by_operator")
    assert_error(api.as_("admin", "POST", f"{USERS}/{auditor}/reset-password",
                         json={"temporary_password": "Temporary-Pass-2026!"}), 403, "auditor_managed_by_operator")
    worker = world.users["worker2"]
    version = api.as_("admin", "GET", f"{USERS}/{worker}").json()["version"]
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{worker}", json={"version": version, "role": "auditor"}),
                 403, "auditor_managed_by_operator")
    # The auditor can still sign in: nothing was changed.
    assert api.login("auditor")["access_token"]


@pytest.mark.parametrize(
    ("role", "level"),
    [
        ("worker", None),  # a worker needs an assignment
        ("worker", "street"),
        ("worker", "district"),
        ("worker", "city"),
        ("supervisor", None),
        ("supervisor", "community"),
        ("supervisor", "grid"),
        ("admin", "community"),
    ],
)
def test_create_with_a_scope_that_does_not_fit_the_role(api: Api, world: World, role: str, level: str | None) -> None:
    c1 = world.community("c1")
    division = {"street": street_of(world), "district": world.districts[0], "city": world.city,
                "community": c1, "grid": world.grids[c1["id"]][0]}.get(level or "")
    ids = [division["id"]] if division else []
    assert_error(new_user(api, role=role, division_ids=ids), 422, "scope_invalid")


def test_create_with_an_unknown_division(api: Api, world: World) -> None:
    assert_error(new_user(api, division_ids=["0" * 32]), 422, "division_unknown")
    assert_error(new_user(api, division_ids=[world.community("c1")["id"], "f" * 32]), 422, "division_unknown")


def test_create_with_an_over_long_division_id_is_422(api: Api) -> None:
    assert_error(new_user(api, division_ids=["x" * 33]), 422, "validation_error")


@pytest.mark.parametrize("role", ["landlord", "police", "outflow_city", "root", ""])
def test_partner_and_unknown_roles_cannot_be_created_yet(api: Api, role: str) -> None:
    assert_error(new_user(api, role=role), 422, "validation_error")


def test_username_taken_is_409_whatever_the_case(api: Api) -> None:
    assert_error(new_user(api, username="Worker1", role="admin"), 409, "username_taken")
    assert_error(new_user(api, username="ADMIN", role="admin"), 409, "username_taken")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"username": "ab"}, "validation_error"),
        ({"username": "has space"}, "validation_error"),
        ({"username": "名字"}, "validation_error"),
        ({"username": "x" * 65}, "validation_error"),
        ({"display_name": ""}, "validation_error"),
        ({"display_name": "x" * 101}, "validation_error"),
        ({"password": "short"}, "weak_password"),
        ({"password": "new.person-2026!"}, "weak_password"),  # contains the username
        ({"is_admin": True}, "validation_error"),
        ({"must_change_password": False}, "validation_error"),
        ({"division_ids": "abc"}, "validation_error"),
        ({"division_ids": ["a"] * 201}, "validation_error"),
        ({"display_name": "a\u0000b"}, "nul_byte"),
    ],
)
def test_create_rejects_bad_input_with_a_stable_code(api: Api, world: World, changes: dict[str, Any],
                                                     code: str) -> None:
    response = new_user(api, **{"division_ids": [world.community("c1")["id"]], **changes})
    assert_error(response, 422, code)


# --- who may administer accounts ---------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["worker1", "grid_worker", "sup_street", "sup_district", "auditor"])
def test_only_admins_administer_accounts(api: Api, world: World, who: str) -> None:
    uid = world.users["worker2"]
    calls = [
        ("GET", USERS, None),
        ("GET", f"{USERS}/{uid}", None),
        ("POST", USERS, {"username": "sneaky", "display_name": "S", "role": "admin", "password": TEMP}),
        ("PATCH", f"{USERS}/{uid}", {"role": "admin", "version": 1}),
        ("PATCH", f"{USERS}/{world.users[who]}", {"role": "admin", "version": 1}),  # not even themselves
        ("POST", f"{USERS}/{uid}/reset-password", {"temporary_password": TEMP}),
    ]
    for method, url, body in calls:
        assert_error(api.as_(who, method, url, json=body), 403, "forbidden")
    assert_error(api.client.post(USERS, json=calls[2][2]), 401, "unauthorized")


# --- read and update ---------------------------------------------------------------------------------------

def test_get_one_and_unknown(api: Api, world: World) -> None:
    body = api.as_("admin", "GET", f"{USERS}/{world.users['grid_worker']}").json()
    assert body["username"] == "grid_worker" and body["role"] == "worker"
    assert body["division_ids"] == [world.grids[world.community("c1")["id"]][0]["id"]]
    assert_error(api.as_("admin", "GET", f"{USERS}/{'0' * 32}"), 404, "not_found")
    assert_error(api.as_("admin", "GET", f"{USERS}/{'0' * 33}"), 422, "validation_error")


def test_update_with_version(api: Api, world: World) -> None:
    uid = world.users["worker2"]
    current = api.as_("admin", "GET", f"{USERS}/{uid}").json()
    response = api.as_("admin", "PATCH", f"{USERS}/{uid}",
                       json={"display_name": "Renamed", "version": current["version"]})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Renamed"
    assert response.json()["version"] == current["version"] + 1
    # The stale version is refused and the current one is named.
    stale = api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"display_name": "Again", "version": current["version"]})
    body = assert_error(stale, 409, "stale_version")
    assert body["details"] == {"current_version": current["version"] + 1}
    assert api.as_("admin", "GET", f"{USERS}/{uid}").json()["display_name"] == "Renamed"


def test_update_needs_a_version(api: Api, world: World) -> None:
    uid = world.users["worker2"]
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"display_name": "X"}), 422, "validation_error")
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"version": 0}), 422, "validation_error")
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"version": 1, "username": "x"}),
                 422, "validation_error")
    assert_error(api.as_("admin", "PATCH", f"{USERS}/{'0' * 32}", json={"version": 1}), 404, "not_found")


def test_update_scope_rules(api: Api, world: World) -> None:
    uid = world.users["worker2"]

    def patch(**changes: Any) -> Any:
        version = api.as_("admin", "GET", f"{USERS}/{uid}").json()["version"]
        return api.as_("admin", "PATCH", f"{USERS}/{uid}", json={**changes, "version": version})

    assert_error(patch(division_ids=[street_of(world)["id"]]), 422, "scope_invalid")
    assert_error(patch(division_ids=[]), 422, "scope_invalid")
    assert_error(patch(division_ids=["0" * 32]), 422, "division_unknown")
    # worker → supervisor keeps the community assignment, which does not fit: refused.
    assert_error(patch(role="supervisor"), 422, "scope_invalid")
    ok = patch(role="supervisor", division_ids=[street_of(world)["id"]])
    assert ok.status_code == 200 and ok.json()["role"] == "supervisor"
    # supervisor → admin drops the assignment.
    ok = patch(role="admin")
    assert ok.status_code == 200 and ok.json()["division_ids"] == []
    # admin → worker needs one.
    assert_error(patch(role="worker"), 422, "scope_invalid")
    assert_error(patch(role="police"), 422, "validation_error")


def test_admins_cannot_demote_or_disable_themselves(api: Api, world: World) -> None:
    uid = world.users["admin"]
    version = api.as_("admin", "GET", f"{USERS}/{uid}").json()["version"]
    for changes in ({"role": "supervisor", "division_ids": [street_of(world)["id"]]},
                    {"role": "worker", "division_ids": [world.community("c1")["id"]]},
                    {"active": False}):
        assert_error(api.as_("admin", "PATCH", f"{USERS}/{uid}", json={**changes, "version": version}),
                     409, "own_account_change_refused")
    # Harmless edits of one's own account are fine.
    response = api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"display_name": "Chief", "version": version,
                                                                   "role": "admin", "active": True})
    assert response.status_code == 200


def test_an_admin_may_disable_another_admin(api: Api, client: TestClient) -> None:
    created = new_user(api, username="admin.b", role="admin").json()
    response = api.as_("admin", "PATCH", f"{USERS}/{created['id']}", json={"active": False, "version": 1})
    assert response.status_code == 200 and response.json()["active"] is False
    assert_error(login(client, "admin.b", TEMP), 401, "invalid_credentials")


# --- list -----------------------------------------------------------------------------------------------------

def usernames(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()["items"]]


def test_list_filters_and_paging(api: Api, world: World) -> None:
    everyone = api.as_("admin", "GET", USERS).json()
    assert everyone["total"] == len(world.users) == len(everyone["items"])
    assert [u["username"] for u in everyone["items"]] == sorted(world.users)

    assert usernames(api.as_("admin", "GET", USERS, params={"role": "worker"})) == [
        "grid_worker", "worker1", "worker2", "worker3"]
    assert usernames(api.as_("admin", "GET", USERS, params={"role": "supervisor"})) == [
        "sup_district", "sup_other", "sup_street"]
    assert usernames(api.as_("admin", "GET", USERS, params={"q": "WORKER"})) == [
        "grid_worker", "worker1", "worker2", "worker3"]
    assert usernames(api.as_("admin", "GET", USERS, params={"q": "sup_s"})) == ["sup_street"]
    # LIKE wildcards in q are matched literally.
    assert usernames(api.as_("admin", "GET", USERS, params={"q": "%"})) == []
    assert usernames(api.as_("admin", "GET", USERS, params={"q": "sup%s"})) == []

    api.as_("admin", "PATCH", f"{USERS}/{world.users['worker3']}", json={"active": False, "version": 1})
    assert usernames(api.as_("admin", "GET", USERS, params={"active": "false"})) == ["worker3"]
    assert "worker3" not in usernames(api.as_("admin", "GET", USERS, params={"active": "true"}))

    page = api.as_("admin", "GET", USERS, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == len(world.users) and page["limit"] == 2 and page["offset"] == 1
    assert [u["username"] for u in page["items"]] == sorted(world.users)[1:3]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": -1}, {"offset": -1}, {"limit": "many"}, {"role": "emperor"}, {"active": "maybe"},
     {"q": "x" * 65}],
)
def test_list_rejects_bad_parameters(api: Api, params: dict[str, Any]) -> None:
    assert_error(api.as_("admin", "GET", USERS, params=params), 422, "validation_error")


def test_a_renamed_user_sees_the_new_name_on_the_next_request(api: Api, world: World) -> None:
    before = api.as_("worker1", "GET", "/api/v1/auth/me").json()
    renamed = api.as_("admin", "PATCH", f"{USERS}/{world.users['worker1']}",
                      json={"display_name": "王小明 (renamed)", "version": 1})
    assert renamed.status_code == 200, renamed.text
    after = api.as_("worker1", "GET", "/api/v1/auth/me").json()  # the same token: read with the actor each time
    assert before["display_name"] != "王小明 (renamed)"
    assert after["display_name"] == "王小明 (renamed)"
    assert {k: v for k, v in after.items() if k != "display_name"} == \
        {k: v for k, v in before.items() if k != "display_name"}
