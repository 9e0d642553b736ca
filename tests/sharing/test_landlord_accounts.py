"""Landlord accounts: self-registration (public, no enumeration, throttled), a worker's confirmation in the area,
an account a worker opens, and an unconfirmed landlord who sees nothing."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import PASSWORD, Api, World
from tests.db import audit_events, rows
from tests.factories import dwelling_id, valid_id
from tests.sharing.landlord_helpers import (
    ACCOUNTS,
    PARTNER,
    REGISTER,
    free_dwellings,
    move_in_body,
    pending_account,
    register_body,
    self_register,
)

PHONE = "13912345678"


def test_an_unconfirmed_landlord_sees_nothing_until_a_worker_of_the_area_confirms(api: Api, world: World,
                                                                                  engine: Engine) -> None:
    self_register(api, world)
    me = ok(api.as_(PHONE, "GET", f"{PARTNER}/me"))
    assert me == {"username": PHONE, "name": "房东甲", "phone_masked": "139****5678", "confirmed": False,
                  "community_id": world.community("c1")["id"]}
    refused = [("GET", "/tenants", None), ("GET", "/dwellings", None), ("GET", "/dwelling-registrations", None),
               ("GET", "/reports", None),
               ("POST", "/dwelling-registrations", {"community_id": world.community("c1")["id"], "address": "x1"}),
               ("POST", "/move-ins", move_in_body(dwelling_id(world))),
               ("POST", "/move-outs", {"tenancy_id": "0" * 32, "moved_out_on": "2026-11-23"})]
    for method, path, body in refused:
        assert_error(api.as_(PHONE, method, PARTNER + path, json=body), 403, "landlord_not_confirmed")
    account = pending_account(api, "worker1", PHONE)
    assert (account["self_registered"], account["landlord_id"], account["confirmed_at"]) == (True, None, None)
    assert account["id_number_masked"] == "4101" + "*" * 10 + valid_id("41010519700101003")[-4:]
    # Another district's worker neither lists nor confirms it; staff never see a landlord's route.
    assert ok(api.as_("worker3", "GET", ACCOUNTS))["total"] == 0
    url = f"{ACCOUNTS}/{account['user_id']}/confirm"
    assert_error(api.as_("worker3", "POST", url, json={"version": 1}), 404)
    assert_error(api.as_("worker1", "GET", f"{PARTNER}/tenants"), 403)
    assert_error(api.as_(PHONE, "GET", ACCOUNTS), 403)
    assert_error(api.as_("worker1", "POST", url, json={"version": 2}), 409, "stale_version")
    done = ok(api.as_("worker1", "POST", url, json={"version": 1}))
    assert done["confirmed_by"] == world.users["worker1"] and done["version"] == 2
    [landlord] = rows(engine, "SELECT id, name, district_code FROM landlords WHERE id_number = :n",
                      n=valid_id("41010519700101003"))
    district = world.community("c1")["district_code"]
    assert landlord == {"id": done["landlord_id"], "name": "房东甲", "district_code": district}
    assert_error(api.as_("worker1", "POST", url, json={"version": 2}), 409, "already_decided")
    assert ok(api.as_(PHONE, "GET", f"{PARTNER}/me"))["confirmed"] is True
    assert ok(api.as_(PHONE, "GET", f"{PARTNER}/dwelling-registrations"))["items"][0]["state"] == "pending"
    assert ok(api.as_(PHONE, "GET", f"{PARTNER}/dwellings"))["total"] == 0
    [event] = audit_events(engine, "landlord.register")
    assert json.loads(event["detail"]) == {"created": True} and PHONE not in str(event)


def test_registration_says_nothing_about_existing_accounts(api: Api, world: World, engine: Engine) -> None:
    self_register(api, world)
    # The same phone, then the same ID number: the same answer, and nothing is created.
    self_register(api, world, id_number=valid_id("41010519700101011"), name="房东丁")
    self_register(api, world, phone="13912340000")
    assert rows(engine, "SELECT count(*) AS n FROM landlord_accounts")[0]["n"] == 1
    assert rows(engine, "SELECT count(*) AS n FROM users WHERE role = 'landlord'")[0]["n"] == 1
    created = [json.loads(e["detail"])["created"] for e in audit_events(engine, "landlord.register")]
    assert created == [True, False, False]


def test_registration_input_errors(api: Api, world: World) -> None:
    def post(**over: object) -> object:
        return api.client.post(REGISTER, json=register_body(world, **over))

    assert_error(post(id_number="410105197001010030"), 422, "id_check_digit")
    assert_error(post(password="short"), 422, "weak_password")
    assert_error(post(community_id=world.city["id"]), 422, "community_unknown")
    assert_error(post(phone="12345"), 422)
    assert_error(post(address="   "), 422)


def test_registration_is_throttled_per_address(api: Api, world: World) -> None:
    for n in range(5):
        self_register(api, world, phone=f"1391234560{n}", id_number=valid_id(f"4101051970010102{n}"))
    refused = api.client.post(REGISTER, json=register_body(world, phone="13912345699"))
    assert_error(refused, 429, "registration_throttled")
    assert int(refused.headers["Retry-After"]) > 0


def test_a_worker_opens_an_account_for_a_landlord_in_their_area(api: Api, world: World, engine: Engine) -> None:
    free = free_dwellings(engine, world)[0]["id"]
    landlord = ok(api.as_("worker1", "POST", "/api/v1/landlords", json={
        "name": "房东乙", "id_number": valid_id("41010519700101020"), "phone": "13812340000", "dwelling_id": free}),
        201)
    body = {"landlord_id": landlord["id"], "initial_password": PASSWORD}
    assert_error(api.as_("worker3", "POST", ACCOUNTS, json=body), 404)
    account = ok(api.as_("worker1", "POST", ACCOUNTS, json=body), 201)
    assert (account["landlord_id"], account["self_registered"]) == (landlord["id"], False)
    assert account["confirmed_by"] == world.users["worker1"]
    assert_error(api.as_("worker1", "POST", ACCOUNTS, json=body), 409, "landlord_account_exists")
    signed_in = api.login("13812340000")
    assert signed_in["must_change_password"] is True
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    assert_error(api.client.get(f"{PARTNER}/me", headers=headers), 403, "password_change_required")
    new_password = "Landlord-Own-2026!"
    assert api.client.post("/api/v1/auth/password", headers=headers, json={
        "old_password": PASSWORD, "new_password": new_password}).status_code == 204
    token = api.login("13812340000", new_password)["access_token"]
    dwellings = ok(api.client.get(f"{PARTNER}/dwellings", headers={"Authorization": f"Bearer {token}"}))
    assert [d["id"] for d in dwellings["items"]] == [free]


def test_account_creation_errors(api: Api, world: World) -> None:
    def landlord(seq: str, phone: str | None) -> str:
        return str(ok(api.as_("worker1", "POST", "/api/v1/landlords", json={
            "name": "房东" + seq, "id_number": valid_id("410105197001010" + seq), "phone": phone}), 201)["id"])

    no_phone = landlord("40", None)
    assert_error(api.as_("worker1", "POST", ACCOUNTS, json={"landlord_id": no_phone, "initial_password": PASSWORD}),
                 422, "landlord_phone_required")
    assert_error(api.as_("worker1", "POST", ACCOUNTS, json={"landlord_id": no_phone, "phone": "13800138000",
                                                            "initial_password": "weak"}), 422, "weak_password")
    assert_error(api.as_("worker1", "POST", ACCOUNTS, json={"landlord_id": no_phone, "phone": "worker1",
                                                            "initial_password": PASSWORD}), 422)
    assert_error(api.as_("admin", "POST", ACCOUNTS, json={"landlord_id": no_phone, "phone": "13800138000",
                                                          "initial_password": PASSWORD}), 422,
                 "landlord_area_required")
    first = landlord("42", "13600000001")
    ok(api.as_("worker1", "POST", ACCOUNTS, json={"landlord_id": first, "initial_password": PASSWORD}), 201)
    second = landlord("44", None)
    assert_error(api.as_("worker1", "POST", ACCOUNTS, json={"landlord_id": second, "phone": "13600000001",
                                                            "initial_password": PASSWORD}), 409, "username_taken")
    assert_error(api.as_("auditor", "POST", ACCOUNTS, json={"landlord_id": second, "initial_password": PASSWORD}),
                 403)


def test_confirmation_links_the_landlord_on_record_or_refuses_another_name(api: Api, world: World) -> None:
    on_record = ok(api.as_("worker1", "POST", "/api/v1/landlords", json={
        "name": "房东甲", "id_number": valid_id("41010519700101003")}), 201)
    self_register(api, world)
    account = pending_account(api, "worker1", PHONE)
    done = ok(api.as_("worker1", "POST", f"{ACCOUNTS}/{account['user_id']}/confirm", json={"version": 1}))
    assert done["landlord_id"] == on_record["id"]
    other_id = valid_id("41010519700101054")
    ok(api.as_("worker1", "POST", "/api/v1/landlords", json={"name": "别人", "id_number": other_id}), 201)
    self_register(api, world, phone="13912340054", id_number=other_id)
    other = pending_account(api, "worker1", "13912340054")
    assert_error(api.as_("worker1", "POST", f"{ACCOUNTS}/{other['user_id']}/confirm", json={"version": 1}), 409,
                 "landlord_identity_mismatch")


def test_a_worker_turns_down_a_registration_and_the_phone_is_free_again(api: Api, world: World,
                                                                        engine: Engine) -> None:
    self_register(api, world)
    assert ok(api.as_(PHONE, "GET", f"{PARTNER}/me"))["confirmed"] is False  # signed in once
    account = pending_account(api, "worker1", PHONE)
    url = f"{ACCOUNTS}/{account['user_id']}/reject"
    assert_error(api.as_("worker3", "POST", url, json={"version": 1, "reason": "not_a_landlord"}), 404)
    assert_error(api.as_("worker1", "POST", url, json={"version": 1, "reason": "because"}), 422)
    assert api.as_("worker1", "POST", url, json={"version": 1, "reason": "not_a_landlord"}).status_code == 204
    for table in ("landlord_accounts", "landlord_dwelling_claims"):
        assert rows(engine, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0, table  # noqa: S608
    assert rows(engine, "SELECT id FROM auth_sessions WHERE user_id = :u", u=account["user_id"]) == []
    assert rows(engine, "SELECT id FROM users WHERE username = :p", p=PHONE) == []
    assert_error(api.client.get(f"{PARTNER}/me", headers=api.headers(PHONE)), 401)
    [event] = audit_events(engine, "landlord.account_rejected")
    assert json.loads(event["detail"]) == {"reason": "not_a_landlord"}
    self_register(api, world)
    assert json.loads(audit_events(engine, "landlord.register")[-1]["detail"]) == {"created": True}
    again = pending_account(api, "worker1", PHONE)
    ok(api.as_("worker1", "POST", f"{ACCOUNTS}/{again['user_id']}/confirm", json={"version": 1}))
    assert_error(api.as_("worker1", "POST", f"{ACCOUNTS}/{again['user_id']}/reject",
                         json={"version": 2, "reason": "other"}), 409, "already_decided")
