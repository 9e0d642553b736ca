"""Creating and editing divisions: admin-only, every rule's error code, optimistic locking, deactivation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.assertions import assert_error as error
from tests.assertions import ok
from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS, audit_actions, count_divisions, division, snapshot


def street_of(world: World, key: str = "c1") -> dict[str, Any]:
    community = world.community(key)
    return next(s for s in world.streets if s["id"] == community["parent_id"])


def district_of(world: World, key: str = "c1") -> dict[str, Any]:
    code = world.community(key)["district_code"]
    return next(d for d in world.districts if d["code"] == code)


def new_community(world: World, **overrides: Any) -> dict[str, Any]:
    street = street_of(world)
    body = {"code": street["code"] + "099", "name": "新建社区", "level": "community", "parent_id": street["id"],
            "community_type": "urban_village", "vintage": 2025}
    return {**body, **overrides}


# --- access --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("user", ["worker1", "grid_worker", "sup_street", "sup_district", "auditor"])
def test_only_admin_writes_divisions(api: Api, world: World, engine: Engine, user: str) -> None:
    before = snapshot(engine)
    c1 = world.community("c1")
    error(api.as_(user, "POST", DIVISIONS, json=new_community(world)), 403, "forbidden")
    error(api.as_(user, "PATCH", f"{DIVISIONS}/{c1['id']}", json={"name": "x", "version": 1}), 403, "forbidden")
    error(api.as_(user, "POST", f"{DIVISIONS}/{c1['id']}/move",
                  json={"parent_id": c1["parent_id"]}), 403, "forbidden")
    error(api.as_(user, "POST", f"{DIVISIONS}/import", files={"file": ("a.csv", b"code\n", "text/csv")}),
          403, "forbidden")
    assert snapshot(engine) == before


# --- create --------------------------------------------------------------------------------------------

def test_admin_creates_each_level(api: Api, world: World, engine: Engine) -> None:
    city = ok(api.as_("admin", "POST", DIVISIONS, json={"code": "410200", "name": "开封市", "level": "city",
                                                       "vintage": 2024}), 201)
    assert city["path"] == "/410200/" and city["district_code"] is None and city["ancestors"] == []
    district = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": "410199", "name": "新区", "level": "district", "parent_id": world.city["id"], "vintage": 2024}), 201)
    assert district["path"] == "/410100/410199/" and district["district_code"] == "410199"
    street = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": "410199001", "name": "新街道", "level": "street", "parent_id": district["id"], "vintage": 2024}), 201)
    community = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": "410199001001", "name": " 新  社区 ", "level": "community", "parent_id": street["id"],
        "community_type": "gated", "vintage": 2024}), 201)
    assert community["name"] == "新 社区" and community["community_type"] == "gated"
    assert [a["code"] for a in community["ancestors"]] == ["410100", "410199", "410199001"]
    grid = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": "g-01", "name": "一网格", "level": "grid", "parent_id": community["id"], "vintage": 2024}), 201)
    assert grid["code"] == "G-01" and grid["path"] == "/410100/410199/410199001/410199001001/G-01/"
    assert grid["district_code"] == "410199" and grid["version"] == 1 and grid["active"] is True
    stored = division(engine, id=grid["id"])
    assert stored is not None and stored.parent_id == community["id"]
    created = {e.target_id for e in audit_actions(engine, "divisions.create")}
    assert {city["id"], district["id"], street["id"], community["id"], grid["id"]} <= created


CREATE_ERRORS = [
    # (label, overrides on a new community under c1's street, status, code)
    ("short code", {"code": "12345"}, 422, "division_code_invalid"),
    ("letters", {"code": "41010200100A"}, 422, "division_code_invalid"),
    ("full-width digits", {"code": "４１０１０２００１０９９"}, 422, "division_code_invalid"),
    ("wrong prefix", {"code": "410103001099"}, 422, "division_code_mismatch"),
    ("no type", {"community_type": None}, 422, "community_type_required"),
    ("unknown type", {"community_type": "castle"}, 422, "validation_error"),
    ("no parent", {"parent_id": None}, 422, "division_parent_level"),
    ("unknown parent", {"parent_id": "0" * 32}, 404, "not_found"),
    ("vintage too old", {"vintage": 1979}, 422, "validation_error"),
    ("empty name", {"name": "   "}, 422, "validation_error"),
    ("long name", {"name": "名" * 101}, 422, "validation_error"),
    ("long code", {"code": "1" * 21}, 422, "validation_error"),
    ("unknown field", {"path": "/x/"}, 422, "validation_error"),
    ("nul byte", {"name": "a\x00b"}, 422, "nul_byte"),
    ("bad level", {"level": "planet"}, 422, "validation_error"),
]


@pytest.mark.parametrize(("label", "overrides", "status", "code"), CREATE_ERRORS, ids=[c[0] for c in CREATE_ERRORS])
def test_create_errors(api: Api, world: World, engine: Engine, label: str, overrides: dict[str, Any], status: int,
                       code: str) -> None:
    before = count_divisions(engine)
    error(api.as_("admin", "POST", DIVISIONS, json=new_community(world, **overrides)), status, code)
    assert count_divisions(engine) == before


def test_create_level_and_type_rules(api: Api, world: World, engine: Engine) -> None:
    before = count_divisions(engine)
    district, city = district_of(world), world.city
    c1 = world.community("c1")
    cases = [
        # community directly under a district: parent two levels up
        ({"code": district["code"] + "001099", "level": "community", "parent_id": district["id"],
          "community_type": "gated"}, "division_parent_level"),
        ({"code": "410100", "level": "city", "parent_id": city["id"]}, "division_parent_level"),
        ({"code": "410101", "level": "city"}, "division_code_invalid"),  # a city code ends in 00
        ({"code": "410100", "level": "district", "parent_id": city["id"]}, "division_code_invalid"),
        ({"code": "410299", "level": "district", "parent_id": city["id"]}, "division_code_mismatch"),
        ({"code": "410109999", "level": "street", "parent_id": district["id"]}, "division_code_mismatch"),
        ({"code": "G 1", "level": "grid", "parent_id": c1["id"]}, "division_code_invalid"),
        ({"code": "G/1", "level": "grid", "parent_id": c1["id"]}, "division_code_invalid"),
        ({"code": "G09", "level": "grid", "parent_id": c1["id"], "community_type": "gated"},
         "community_type_forbidden"),
        ({"code": "410199", "level": "district", "parent_id": city["id"], "community_type": "market"},
         "community_type_forbidden"),
    ]
    for overrides, code in cases:
        body = {"name": "名称", "vintage": 2024, **overrides}
        error(api.as_("admin", "POST", DIVISIONS, json=body), 422, code)
    assert count_divisions(engine) == before


def test_create_duplicate_code_is_409(api: Api, world: World, engine: Engine) -> None:
    c2 = world.community("c2")
    error(api.as_("admin", "POST", DIVISIONS, json=new_community(world, code=c2["code"])), 409,
          "division_code_taken")
    c1 = world.community("c1")
    grid = {"code": "g01", "name": "重复", "level": "grid", "parent_id": c1["id"], "vintage": 2024}
    error(api.as_("admin", "POST", DIVISIONS, json=grid), 409, "division_code_taken")  # G01 exists
    # The same local grid code under another community is fine.
    ok(api.as_("admin", "POST", DIVISIONS, json={**grid, "code": "G03"}), 201)


def test_create_under_inactive_parent(api: Api, world: World) -> None:
    street = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": district_of(world)["code"] + "099", "name": "待撤街道", "level": "street",
        "parent_id": district_of(world)["id"], "vintage": 2024}), 201)
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{street['id']}", json={"active": False, "version": 1}))
    body = new_community(world, code=street["code"] + "001", parent_id=street["id"])
    error(api.as_("admin", "POST", DIVISIONS, json=body), 409, "division_parent_inactive")
    inactive = ok(api.as_("admin", "POST", DIVISIONS, json={**body, "active": False}), 201)
    assert inactive["active"] is False


# --- edit ----------------------------------------------------------------------------------------------

def test_edit_name_type_vintage(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    url = f"{DIVISIONS}/{c1['id']}"
    name = "改名（东）社区"  # full-width brackets are kept as they are
    body = ok(api.as_("admin", "PATCH", url, json={"name": name, "community_type": "market", "vintage": 2025,
                                                   "version": 1}))
    assert (body["name"], body["community_type"], body["vintage"], body["version"]) == (name, "market", 2025, 2)
    assert body["path"] == c1["path"]
    # The same values again change nothing, not even the version.
    again = ok(api.as_("admin", "PATCH", url, json={"name": "改名（东）社区", "version": 2}))
    assert again["version"] == 2
    events = [e for e in audit_actions(engine, "divisions.update") if e.target_id == c1["id"]]
    assert len(events) == 1 and events[0].fields is not None
    assert set(events[0].fields.split(",")) >= {"name", "community_type", "vintage", "version"}
    assert "改名（东）社区" not in (events[0].detail or "")


def test_stale_version_is_409(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    url = f"{DIVISIONS}/{c1['id']}"
    ok(api.as_("admin", "PATCH", url, json={"name": "一", "version": 1}))
    body = error(api.as_("admin", "PATCH", url, json={"name": "二", "version": 1}), 409, "stale_version")
    assert body["details"] == {"current_version": 2}
    stored = division(engine, id=c1["id"])
    assert stored is not None and stored.name == "一"
    error(api.as_("admin", "PATCH", url, json={"code": c1["code"][:-3] + "555", "version": 1}), 409, "stale_version")
    stored = division(engine, id=c1["id"])
    assert stored is not None and stored.code == c1["code"]


EDIT_ERRORS = [
    ({"community_type": None}, 422, "community_type_required"),
    ({"code": "123"}, 422, "division_code_invalid"),
    ({"code": "410199001001"}, 422, "division_code_mismatch"),
    ({"code": None}, 422, "value_required"),
    ({"name": None}, 422, "value_required"),
    ({"active": None}, 422, "value_required"),
    ({"name": ""}, 422, "validation_error"),
    ({"level": "street"}, 422, "validation_error"),
    ({"parent_id": "x"}, 422, "validation_error"),
    ({}, 422, "validation_error"),  # no version
]


@pytest.mark.parametrize(("overrides", "status", "code"), EDIT_ERRORS)
def test_edit_errors(api: Api, world: World, engine: Engine, overrides: dict[str, Any], status: int,
                     code: str) -> None:
    before = snapshot(engine)
    body = {"version": 1, **overrides} if overrides else {}
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{world.community('c1')['id']}", json=body), status, code)
    assert snapshot(engine) == before


def test_edit_type_on_street_is_forbidden(api: Api, world: World) -> None:
    url = f"{DIVISIONS}/{street_of(world)['id']}"
    error(api.as_("admin", "PATCH", url, json={"community_type": "gated", "version": 1}), 422,
          "community_type_forbidden")
    assert ok(api.as_("admin", "PATCH", url, json={"community_type": None, "version": 1}))["version"] == 1


def test_edit_code_to_taken_is_409(api: Api, world: World, engine: Engine) -> None:
    before = snapshot(engine)
    c1, c2 = world.community("c1"), world.community("c2")
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", json={"code": c2["code"], "version": 1}), 409,
          "division_code_taken")
    assert snapshot(engine) == before


def test_edit_unknown_or_nul_id(api: Api) -> None:
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{'0' * 32}", json={"name": "x", "version": 1}), 404, "not_found")
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/ab%00cd", json={"name": "x", "version": 1}), 422, "nul_byte")


# --- deactivation --------------------------------------------------------------------------------------

def test_deactivate_in_use_is_409(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid = world.grids[c1["id"]][0]
    before = snapshot(engine)
    body = error(api.as_("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", json={"active": False, "version": 1}), 409,
                 "division_in_use")
    assert body["details"] == {"active_children": True, "active_dwellings": True}
    body = error(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": False, "version": 1}), 409,
                 "division_in_use")
    assert body["details"] == {"active_children": False, "active_dwellings": True}
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{street_of(world)['id']}", json={"active": False, "version": 1}),
          409, "division_in_use")
    assert snapshot(engine) == before


def test_deactivate_and_reactivate(api: Api, world: World, engine: Engine) -> None:
    community = ok(api.as_("admin", "POST", DIVISIONS, json=new_community(world)), 201)
    grid = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": "G01", "name": "网格", "level": "grid", "parent_id": community["id"], "vintage": 2025}), 201)
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{community['id']}", json={"active": False, "version": 1}), 409,
          "division_in_use")
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": False, "version": 1}))
    off = ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{community['id']}", json={"active": False, "version": 1}))
    assert off["active"] is False and off["version"] == 2
    # A grid cannot come back under an inactive community; the community can come back.
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": True, "version": 2}), 409,
          "division_parent_inactive")
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{community['id']}", json={"active": True, "version": 2}))
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": True, "version": 2}))
    stored = division(engine, id=grid["id"])
    assert stored is not None and stored.active and stored.version == 3
    listed = ok(api.as_("admin", "GET", f"{DIVISIONS}?active=true&parent_id={community['id']}"))
    assert [d["id"] for d in listed["items"]] == [grid["id"]]
