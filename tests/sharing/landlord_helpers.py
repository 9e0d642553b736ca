"""Helpers for the landlord partner tests: a landlord who registered themselves, confirmed by a worker, with a
confirmed dwelling; and their routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tests.conftest import PASSWORD, Api, World
from tests.db import rows
from tests.factories import valid_id

V1 = "/api/v1"
PARTNER = f"{V1}/partner/landlord"
REGISTER = f"{PARTNER}/register"
ACCOUNTS = f"{V1}/landlord-accounts"
CLAIMS = f"{V1}/landlord-dwelling-claims"
REPORTS = f"{V1}/landlord-reports"


@dataclass
class Landlord:
    phone: str
    user_id: str
    landlord_id: str
    dwelling_id: str
    claim_id: str


def register_body(world: World, community: str = "c1", **over: Any) -> dict[str, Any]:
    body = {"name": "房东甲", "id_number": valid_id("41010519700101003"), "phone": "13912345678",
            "password": PASSWORD, "community_id": world.community(community)["id"], "address": "文化路88号3单元201"}
    body.update(over)
    return body


def self_register(api: Api, world: World, community: str = "c1", **over: Any) -> None:
    response = api.client.post(REGISTER, json=register_body(world, community, **over))
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "received"}


def pending_account(api: Api, worker: str, phone: str) -> dict[str, Any]:
    items = api.as_(worker, "GET", ACCOUNTS, params={"confirmed": "false"}).json()["items"]
    return next(a for a in items if a["phone_masked"] == phone[:3] + "****" + phone[-4:])


def confirmed_landlord(api: Api, world: World, community: str = "c1", worker: str = "worker1",
                       **over: Any) -> Landlord:
    """A landlord who registered with a new address in `community`; `worker` confirms account and dwelling."""
    body = register_body(world, community, **over)
    self_register(api, world, community, **over)
    account = pending_account(api, worker, body["phone"])
    done = api.as_(worker, "POST", f"{ACCOUNTS}/{account['user_id']}/confirm", json={"version": 1})
    assert done.status_code == 200, done.text
    claim = next(c for c in api.as_(worker, "GET", CLAIMS, params={"state": "pending"}).json()["items"]
                 if c["account_id"] == account["user_id"])
    confirmed = api.as_(worker, "POST", f"{CLAIMS}/{claim['id']}/confirm", json={"version": 1})
    assert confirmed.status_code == 200, confirmed.text
    return Landlord(body["phone"], account["user_id"], done.json()["landlord_id"], confirmed.json()["dwelling_id"],
                    claim["id"])


def move_in_body(dwelling: str, **over: Any) -> dict[str, Any]:
    body = {"dwelling_id": dwelling, "name": "租客乙", "id_number": valid_id("41160219950505002"),
            "phone": "13700001234", "moved_in_on": "2026-11-23"}
    body.update(over)
    return body


def walk_keys(value: Any) -> set[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in walk_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in walk_keys(v)}
    return set()


def free_dwellings(engine: Engine, world: World, community: str = "c1") -> list[dict[str, Any]]:
    """The community's demo dwellings without a landlord (id, address, lat, lng), by address."""
    return rows(engine, "SELECT id, address, lat, lng FROM dwellings WHERE community_id = :c AND landlord_id IS NULL "
                        "AND active ORDER BY address", c=world.community(community)["id"])
