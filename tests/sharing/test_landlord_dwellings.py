"""Dwellings a landlord registers: pending until a worker of the community confirms (the dwelling at the address,
a named one, or a new one gets the landlord) or rejects with a reason code; out of the area is 404."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import valid_id
from tests.sharing.landlord_helpers import (
    CLAIMS,
    PARTNER,
    confirmed_landlord,
    pending_account,
    self_register,
)

REGISTRATIONS = f"{PARTNER}/dwelling-registrations"


def test_register_confirm_and_reject(api: Api, world: World, engine: Engine) -> None:
    landlord = confirmed_landlord(api, world)
    # The first registration created a new dwelling at the address, in the community, with the landlord.
    [created] = rows(engine, "SELECT community_id, address, landlord_id FROM dwellings WHERE id = :d",
                     d=landlord.dwelling_id)
    assert created == {"community_id": world.community("c1")["id"], "address": "文化路88号3单元201",
                       "landlord_id": landlord.landlord_id}
    free = rows(engine, "SELECT id, address FROM dwellings WHERE community_id = :c AND landlord_id IS NULL "
                        "ORDER BY address", c=world.community("c1")["id"])
    body = {"community_id": world.community("c1")["id"], "address": free[0]["address"]}
    claim = ok(api.as_(landlord.phone, "POST", REGISTRATIONS, json=body), 201)
    assert (claim["state"], claim["dwelling_id"]) == ("pending", None)
    assert ok(api.as_(landlord.phone, "POST", REGISTRATIONS, json=body))["id"] == claim["id"]  # a retry: 200
    # The neighbour community's worker does not see it; the street supervisor does.
    assert ok(api.as_("worker2", "GET", CLAIMS))["total"] == 0
    assert_error(api.as_("worker2", "POST", f"{CLAIMS}/{claim['id']}/confirm", json={"version": 1}), 404)
    queue = ok(api.as_("sup_street", "GET", CLAIMS, params={"state": "pending"}))["items"]
    assert [(c["id"], c["landlord_id"], c["landlord_name"]) for c in queue] == [
        (claim["id"], landlord.landlord_id, "房东甲")]
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{claim['id']}/confirm", json={"version": 2}), 409,
                 "stale_version")
    done = ok(api.as_("worker1", "POST", f"{CLAIMS}/{claim['id']}/confirm", json={"version": 1}))
    assert (done["state"], done["dwelling_id"], done["decided_by"]) == ("confirmed", free[0]["id"],
                                                                        world.users["worker1"])
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{claim['id']}/reject",
                         json={"version": 2, "reason": "other"}), 409, "already_decided")
    mine = ok(api.as_(landlord.phone, "GET", f"{PARTNER}/dwellings"))["items"]
    assert sorted(d["id"] for d in mine) == sorted([landlord.dwelling_id, free[0]["id"]])
    # A rejection carries a reason code the landlord sees.
    other = ok(api.as_(landlord.phone, "POST", REGISTRATIONS, json={**body, "address": free[1]["address"]}), 201)
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{other['id']}/reject", json={"version": 1, "reason": "why"}),
                 422)
    ok(api.as_("worker1", "POST", f"{CLAIMS}/{other['id']}/reject", json={"version": 1, "reason": "not_the_owner"}))
    seen = {c["id"]: c for c in ok(api.as_(landlord.phone, "GET", REGISTRATIONS))["items"]}
    assert (seen[other["id"]]["state"], seen[other["id"]]["reason"]) == ("rejected", "not_the_owner")
    assert rows(engine, "SELECT landlord_id FROM dwellings WHERE id = :d", d=free[1]["id"]) == [{"landlord_id": None}]


def test_confirmation_errors(api: Api, world: World, engine: Engine) -> None:
    landlord = confirmed_landlord(api, world)
    c1 = world.community("c1")["id"]
    let = rows(engine, "SELECT id, address FROM dwellings WHERE community_id = :c AND landlord_id IS NOT NULL "
                       "AND landlord_id <> :l ORDER BY address", c=c1, l=landlord.landlord_id)[0]
    taken = ok(api.as_(landlord.phone, "POST", REGISTRATIONS, json={"community_id": c1, "address": let["address"]}),
               201)
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{taken['id']}/confirm", json={"version": 1}), 409,
                 "dwelling_has_landlord")
    # A dwelling named by a supervisor of both communities must be the claim's community's.
    elsewhere = rows(engine, "SELECT id FROM dwellings WHERE community_id = :c LIMIT 1",
                     c=world.community("c2")["id"])[0]["id"]
    assert_error(api.as_("sup_street", "POST", f"{CLAIMS}/{taken['id']}/confirm",
                         json={"version": 1, "dwelling_id": elsewhere}), 422, "dwelling_not_in_community")
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{taken['id']}/confirm",
                         json={"version": 1, "dwelling_id": elsewhere}), 404)
    assert_error(api.as_(landlord.phone, "POST", REGISTRATIONS, json={"community_id": world.city["id"],
                                                                      "address": "x"}), 422, "community_unknown")
    assert_error(api.as_("auditor", "GET", CLAIMS), 403)
    # An account not confirmed yet: its dwelling waits for the account.
    pending_phone = "13912340077"
    self_register(api, world, phone=pending_phone, id_number=valid_id("41010519700101077"), address="新村1号")
    account = pending_account(api, "worker1", pending_phone)
    claim = next(c for c in ok(api.as_("worker1", "GET", CLAIMS))["items"] if c["account_id"] == account["user_id"])
    assert_error(api.as_("worker1", "POST", f"{CLAIMS}/{claim['id']}/confirm", json={"version": 1}), 409,
                 "account_not_confirmed")
