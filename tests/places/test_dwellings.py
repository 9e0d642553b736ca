"""Dwellings: scoped reads, creation by staff in their area, edits, moves, and every error code."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.places.models import Dwelling
from tests.assertions import assert_error as error
from tests.assertions import ok
from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS, DWELLINGS, audit_actions, dwelling, snapshot


def pick(world: World, engine: Engine, key: str) -> str:
    """A dwelling id: c1_g1 / c1_g2 (c1's first / second grid), c2, c3."""
    community = world.community(key[:2])
    grids = world.grids[community["id"]]
    grid = grids[1] if key.endswith("g2") else grids[0]
    with Session(engine) as session:
        for dwelling_id in world.dwellings[community["id"]]:
            found = session.get(Dwelling, dwelling_id)
            if found is not None and found.grid_id == grid["id"]:
                return dwelling_id
    raise AssertionError(key)


def new_body(world: World, key: str = "c1", **overrides: Any) -> dict[str, Any]:
    return {"community_id": world.community(key)["id"], "address": "新华路8号3号楼201室", "kind": "rental",
            "lat": 34.75, "lng": 113.62, **overrides}


READS = [
    ("admin", "c1_g1", 200), ("admin", "c3", 200),
    ("worker1", "c1_g1", 200), ("worker1", "c1_g2", 200), ("worker1", "c2", 404), ("worker1", "c3", 404),
    ("grid_worker", "c1_g1", 200), ("grid_worker", "c1_g2", 404),
    ("worker2", "c2", 200), ("worker2", "c1_g1", 404),
    ("worker3", "c3", 200), ("worker3", "c1_g1", 404),
    ("sup_street", "c1_g1", 200), ("sup_street", "c2", 200), ("sup_street", "c3", 404),
    ("sup_district", "c2", 200), ("sup_district", "c3", 404),
    ("sup_other", "c3", 200), ("sup_other", "c1_g1", 404),
    ("auditor", "c1_g1", 403), ("auditor", "c3", 403),
]


@pytest.mark.parametrize(("user", "key", "status"), READS)
def test_get_dwelling_by_role_and_scope(api: Api, world: World, engine: Engine, user: str, key: str,
                                        status: int) -> None:
    dwelling_id = pick(world, engine, key)
    response = api.as_(user, "GET", f"{DWELLINGS}/{dwelling_id}")
    if status == 200:
        body = ok(response)
        assert body["id"] == dwelling_id
        assert set(body) == {"id", "community_id", "grid_id", "address", "kind", "lat", "lng", "active",
                             "created_at", "updated_at", "version"}
    else:
        error(response, status, {403: "forbidden", 404: "not_found"}[status])


@pytest.mark.parametrize(("user", "communities"), [
    ("worker1", ["c1"]), ("worker2", ["c2"]), ("worker3", ["c3"]), ("sup_street", ["c1", "c2"]),
])
def test_list_is_scoped(api: Api, world: World, user: str, communities: list[str]) -> None:
    ids = {world.community(k)["id"] for k in communities}
    body = ok(api.as_(user, "GET", f"{DWELLINGS}?limit=200"))
    assert body["total"] == sum(len(world.dwellings[i]) for i in ids)
    assert {d["community_id"] for d in body["items"]} == ids


def test_list_grid_worker_and_auditor(api: Api, world: World) -> None:
    c1 = world.community("c1")
    grid = world.grids[c1["id"]][0]
    body = ok(api.as_("grid_worker", "GET", f"{DWELLINGS}?limit=200"))
    assert body["total"] > 0 and {d["grid_id"] for d in body["items"]} == {grid["id"]}
    error(api.as_("auditor", "GET", DWELLINGS), 403, "forbidden")


def test_list_filters(api: Api, world: World) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    grid = world.grids[c1["id"]][1]
    by_grid = ok(api.as_("worker1", "GET", f"{DWELLINGS}?grid_id={grid['id']}&limit=200"))
    assert by_grid["total"] > 0 and {d["grid_id"] for d in by_grid["items"]} == {grid["id"]}
    assert ok(api.as_("worker1", "GET", f"{DWELLINGS}?community_id={c2['id']}"))["total"] == 0
    rentals = ok(api.as_("worker1", "GET", f"{DWELLINGS}?kind=rental&limit=200"))
    assert rentals["total"] > 0 and {d["kind"] for d in rentals["items"]} == {"rental"}
    first = ok(api.as_("worker1", "GET", DWELLINGS))["items"][0]
    found = ok(api.as_("worker1", "GET", f"{DWELLINGS}?q={first['address'][:6]}"))
    assert first["id"] in {d["id"] for d in found["items"]}
    assert ok(api.as_("worker1", "GET", f"{DWELLINGS}?active=false"))["total"] == 0
    assert ok(api.as_("worker1", "GET", f"{DWELLINGS}?q=%25"))["total"] == 0
    for query in ("kind=castle", "active=maybe", "q=" + "x" * 201, "grid_id=" + "a" * 33):
        error(api.as_("worker1", "GET", f"{DWELLINGS}?{query}"), 422, "validation_error")


# --- create --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "key", "grid", "status"), [
    ("worker1", "c1", None, 201), ("worker1", "c1", 0, 201), ("worker1", "c2", None, 404),
    ("worker1", "c3", None, 404), ("grid_worker", "c1", 0, 201), ("grid_worker", "c1", None, 404),
    ("grid_worker", "c1", 1, 404), ("worker2", "c2", 1, 201), ("worker2", "c1", None, 404),
    ("sup_street", "c2", None, 201), ("sup_district", "c1", 1, 201), ("sup_district", "c3", None, 404),
    ("sup_other", "c3", 0, 201), ("admin", "c3", None, 201), ("auditor", "c1", None, 403),
])
def test_create_by_role_and_scope(api: Api, world: World, engine: Engine, user: str, key: str, grid: int | None,
                                  status: int) -> None:
    community = world.community(key)
    body = new_body(world, key)
    if grid is not None:
        body["grid_id"] = world.grids[community["id"]][grid]["id"]
    response = api.as_(user, "POST", DWELLINGS, json=body)
    if status != 201:
        error(response, status, {403: "forbidden", 404: "not_found"}[status])
        assert ok(api.as_("admin", "GET", f"{DWELLINGS}?q=新华路8号"))["total"] == 0
        return
    created = ok(response, 201)
    stored = dwelling(engine, created["id"])
    place = world.grids[community["id"]][grid] if grid is not None else community
    assert stored.area_path == place["path"] and stored.district_code == community["district_code"]
    assert (stored.community_id, stored.grid_id) == (community["id"], body.get("grid_id"))
    assert (stored.address, stored.kind, stored.lat, stored.lng, stored.version) == (
        "新华路8号3号楼201室", "rental", 34.75, 113.62, 1)
    assert created["id"] in {e.target_id for e in audit_actions(engine, "dwellings.create")}
    assert ok(api.as_(user, "GET", f"{DWELLINGS}/{created['id']}"))["id"] == created["id"]


CREATE_ERRORS = [
    ({"lat": None}, 422, "coordinates_incomplete"),
    ({"lng": None}, 422, "coordinates_incomplete"),
    ({"lat": 2.9}, 422, "coordinates_out_of_range"),
    ({"lat": 54.1}, 422, "coordinates_out_of_range"),
    ({"lng": 72.9}, 422, "coordinates_out_of_range"),
    ({"lng": 136.5}, 422, "coordinates_out_of_range"),
    ({"lat": "north"}, 422, "validation_error"),
    ({"address": "   "}, 422, "validation_error"),
    ({"address": "\u3000\u3000"}, 422, "validation_error"),
    ({"address": "路" * 201}, 422, "validation_error"),
    ({"address": "a\x00b"}, 422, "nul_byte"),
    ({"kind": "castle"}, 422, "validation_error"),
    ({"area_path": "/"}, 422, "validation_error"),
    ({"version": 3}, 422, "validation_error"),
    ({"community_id": "0" * 32}, 404, "not_found"),
    ({"community_id": "x" * 33}, 422, "validation_error"),
    ({"grid_id": "0" * 32}, 404, "not_found"),
]


@pytest.mark.parametrize(("overrides", "status", "code"), CREATE_ERRORS)
def test_create_errors(api: Api, world: World, engine: Engine, overrides: dict[str, Any], status: int,
                       code: str) -> None:
    before = snapshot(engine)
    error(api.as_("worker1", "POST", DWELLINGS, json=new_body(world, **overrides)), status, code)
    assert snapshot(engine) == before


def test_nan_coordinates_are_rejected(api: Api, world: World) -> None:
    community_id = world.community("c1")["id"]
    raw = f'{{"community_id": "{community_id}", "address": "x", "kind": "own", "lat": NaN, "lng": 113.6}}'.encode()
    response = api.as_("worker1", "POST", DWELLINGS, content=raw, headers={"Content-Type": "application/json"})
    error(response, 422, "validation_error")


def test_create_wrong_division_kinds(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    before = snapshot(engine)
    error(api.as_("sup_street", "POST", DWELLINGS, json=new_body(world, community_id=c1["parent_id"])), 422,
          "not_a_community")
    error(api.as_("sup_street", "POST", DWELLINGS, json=new_body(world, grid_id=c2["id"])), 422, "not_a_grid")
    error(api.as_("sup_street", "POST", DWELLINGS, json=new_body(world, grid_id=world.grids[c2["id"]][0]["id"])),
          422, "grid_not_in_community")
    # A grid outside the caller's scope is simply not found, whatever community is named.
    error(api.as_("worker1", "POST", DWELLINGS, json=new_body(world, grid_id=world.grids[c2["id"]][0]["id"])),
          404, "not_found")
    assert snapshot(engine) == before


def test_address_unique_within_community(api: Api, world: World, engine: Engine) -> None:
    ok(api.as_("worker1", "POST", DWELLINGS, json=new_body(world)), 201)
    before = snapshot(engine)
    error(api.as_("worker1", "POST", DWELLINGS, json=new_body(world)), 409, "dwelling_address_taken")
    # Full-width digits and extra spaces are the same address.
    error(api.as_("worker1", "POST", DWELLINGS, json=new_body(world, address=" 新华路８号3号楼２０１室 ")), 409,
          "dwelling_address_taken")
    assert snapshot(engine) == before
    ok(api.as_("worker2", "POST", DWELLINGS, json=new_body(world, "c2")), 201)  # another community may


def test_create_in_inactive_grid_is_409(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid = ok(api.as_("admin", "POST", DIVISIONS, json={"code": "G09", "name": "新网格", "level": "grid",
                                                        "parent_id": c1["id"], "vintage": 2025}), 201)
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": False, "version": 1}))
    error(api.as_("worker1", "POST", DWELLINGS, json=new_body(world, grid_id=grid["id"])), 409, "division_inactive")


# --- edit ----------------------------------------------------------------------------------------------

def test_edit_fields_and_version(api: Api, world: World, engine: Engine) -> None:
    dwelling_id = pick(world, engine, "c1_g1")
    url = f"{DWELLINGS}/{dwelling_id}"
    body = ok(api.as_("worker1", "PATCH", url, json={"address": "  新地址  1号 ", "kind": "dormitory",
                                                     "lat": 34.8, "lng": 113.7, "version": 1}))
    assert (body["address"], body["kind"], body["lat"], body["lng"], body["version"]) == (
        "新地址 1号", "dormitory", 34.8, 113.7, 2)
    cleared = ok(api.as_("grid_worker", "PATCH", url, json={"lat": None, "lng": None, "version": 2}))
    assert cleared["lat"] is None and cleared["lng"] is None and cleared["version"] == 3
    same = ok(api.as_("worker1", "PATCH", url, json={"kind": "dormitory", "version": 3}))
    assert same["version"] == 3  # nothing changed, no new version
    stored = dwelling(engine, dwelling_id)
    assert (stored.address, stored.lat, stored.version) == ("新地址 1号", None, 3)
    events = [e for e in audit_actions(engine, "dwellings.update") if e.target_id == dwelling_id]
    assert events and "新地址" not in (events[0].detail or "")


@pytest.mark.parametrize(("user", "status"), [
    ("worker2", 404), ("worker3", 404), ("sup_other", 404), ("auditor", 403), ("sup_street", 200), ("admin", 200),
])
def test_edit_by_role_and_scope(api: Api, world: World, engine: Engine, user: str, status: int) -> None:
    dwelling_id = pick(world, engine, "c1_g2")
    before = snapshot(engine)
    response = api.as_(user, "PATCH", f"{DWELLINGS}/{dwelling_id}", json={"kind": "other", "version": 1})
    if status == 200:
        assert ok(response)["kind"] == "other"
    else:
        error(response, status, {403: "forbidden", 404: "not_found"}[status])
        assert snapshot(engine) == before


EDIT_ERRORS = [
    ({"lat": 34.7}, 422, "coordinates_incomplete"),
    ({"lat": 34.7, "lng": None}, 422, "coordinates_incomplete"),
    ({"lat": 60.0, "lng": 113.0}, 422, "coordinates_out_of_range"),
    ({"address": None}, 422, "value_required"),
    ({"kind": None}, 422, "value_required"),
    ({"active": None}, 422, "value_required"),
    ({"community_id": "x"}, 422, "validation_error"),
    ({"version": 0}, 422, "validation_error"),
    ({"version": 5}, 409, "stale_version"),
]


@pytest.mark.parametrize(("overrides", "status", "code"), EDIT_ERRORS)
def test_edit_errors(api: Api, world: World, engine: Engine, overrides: dict[str, Any], status: int,
                     code: str) -> None:
    dwelling_id = pick(world, engine, "c1_g1")
    before = snapshot(engine)
    body = {"version": 1, **overrides}
    response = error(api.as_("worker1", "PATCH", f"{DWELLINGS}/{dwelling_id}", json=body), status, code)
    if code == "stale_version":
        assert response["details"] == {"current_version": 1}
    assert snapshot(engine) == before


def test_edit_address_taken(api: Api, world: World, engine: Engine) -> None:
    first, second = pick(world, engine, "c1_g1"), pick(world, engine, "c1_g2")
    taken = dwelling(engine, second).address
    error(api.as_("worker1", "PATCH", f"{DWELLINGS}/{first}", json={"address": taken, "version": 1}), 409,
          "dwelling_address_taken")
    # Keeping its own address is not a clash.
    own = dwelling(engine, first).address
    assert ok(api.as_("worker1", "PATCH", f"{DWELLINGS}/{first}", json={"address": own, "version": 1}))["version"] == 1


def test_deactivate_and_reactivate(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid = ok(api.as_("admin", "POST", DIVISIONS, json={"code": "G09", "name": "新网格", "level": "grid",
                                                        "parent_id": c1["id"], "vintage": 2025}), 201)
    created = ok(api.as_("worker1", "POST", DWELLINGS, json=new_body(world, grid_id=grid["id"])), 201)
    url = f"{DWELLINGS}/{created['id']}"
    off = ok(api.as_("worker1", "PATCH", url, json={"active": False, "version": 1}))
    assert off["active"] is False
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"active": False, "version": 1}))
    error(api.as_("worker1", "PATCH", url, json={"active": True, "version": 2}), 409, "division_inactive")
    # Other edits of an inactive dwelling are fine.
    assert ok(api.as_("worker1", "PATCH", url, json={"kind": "own", "version": 2}))["kind"] == "own"
    assert ok(api.as_("worker1", "GET", f"{DWELLINGS}?active=false"))["total"] == 1


# --- move ----------------------------------------------------------------------------------------------

def test_move_to_neighbour_community(api: Api, world: World, engine: Engine) -> None:
    c2 = world.community("c2")
    grid = world.grids[c2["id"]][1]
    dwelling_id = pick(world, engine, "c1_g1")
    body = ok(api.as_("sup_street", "POST", f"{DWELLINGS}/{dwelling_id}/move",
                      json={"community_id": c2["id"], "grid_id": grid["id"], "version": 1}))
    assert (body["community_id"], body["grid_id"], body["version"]) == (c2["id"], grid["id"], 2)
    stored = dwelling(engine, dwelling_id)
    assert stored.area_path == grid["path"] and stored.district_code == c2["district_code"]
    assert ok(api.as_("worker2", "GET", f"{DWELLINGS}/{dwelling_id}"))["id"] == dwelling_id
    error(api.as_("worker1", "GET", f"{DWELLINGS}/{dwelling_id}"), 404, "not_found")
    assert dwelling_id in {e.target_id for e in audit_actions(engine, "dwellings.update")}


def test_move_within_community_by_worker(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    dwelling_id = pick(world, engine, "c1_g1")
    ok(api.as_("worker1", "POST", f"{DWELLINGS}/{dwelling_id}/move", json={"community_id": c1["id"]}))
    assert dwelling(engine, dwelling_id).area_path == c1["path"]  # no grid: the community's path
    error(api.as_("grid_worker", "GET", f"{DWELLINGS}/{dwelling_id}"), 404, "not_found")
    grid = world.grids[c1["id"]][1]
    body = ok(api.as_("worker1", "POST", f"{DWELLINGS}/{dwelling_id}/move",
                      json={"community_id": c1["id"], "grid_id": grid["id"]}))
    assert body["grid_id"] == grid["id"] and body["version"] == 3
    same = ok(api.as_("worker1", "POST", f"{DWELLINGS}/{dwelling_id}/move",
                      json={"community_id": c1["id"], "grid_id": grid["id"]}))
    assert same["version"] == 3  # already there


@pytest.mark.parametrize(("user", "source", "target", "status", "code"), [
    ("worker1", "c1_g1", "c2", 404, "not_found"),  # target outside scope
    ("worker2", "c1_g1", "c2", 404, "not_found"),  # source outside scope
    ("grid_worker", "c1_g1", "c1_g2", 404, "not_found"),  # the other grid is not theirs
    ("sup_district", "c1_g1", "c3", 404, "not_found"),
    ("auditor", "c1_g1", "c2", 403, "forbidden"),
])
def test_move_scope(api: Api, world: World, engine: Engine, user: str, source: str, target: str, status: int,
                    code: str) -> None:
    community = world.community(target[:2])
    body: dict[str, Any] = {"community_id": community["id"]}
    if target.endswith("g2"):
        body["grid_id"] = world.grids[community["id"]][1]["id"]
    before = snapshot(engine)
    error(api.as_(user, "POST", f"{DWELLINGS}/{pick(world, engine, source)}/move", json=body), status, code)
    assert snapshot(engine) == before


def test_move_errors(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    dwelling_id = pick(world, engine, "c1_g1")
    url = f"{DWELLINGS}/{dwelling_id}/move"
    clash = dwelling(engine, pick(world, engine, "c2"))
    ok(api.as_("worker1", "PATCH", f"{DWELLINGS}/{dwelling_id}", json={"address": clash.address, "version": 1}))
    before = snapshot(engine)
    error(api.as_("sup_street", "POST", url, json={"community_id": c2["id"]}), 409, "dwelling_address_taken")
    wrong_grid = world.grids[c1["id"]][0]["id"]
    error(api.as_("sup_street", "POST", url, json={"community_id": c2["id"], "grid_id": wrong_grid}), 422,
          "grid_not_in_community")
    error(api.as_("sup_street", "POST", url, json={"community_id": c1["parent_id"]}), 422, "not_a_community")
    error(api.as_("sup_street", "POST", url, json={"community_id": c2["id"], "version": 1}), 409, "stale_version")
    error(api.as_("sup_street", "POST", url, json={"community_id": c2["id"], "address": "x"}), 422,
          "validation_error")
    error(api.as_("sup_street", "POST", f"{DWELLINGS}/{'0' * 32}/move", json={"community_id": c2["id"]}), 404,
          "not_found")
    assert snapshot(engine) == before


def test_move_into_inactive_community(api: Api, world: World, engine: Engine) -> None:
    street = next(s for s in world.streets if s["id"] == world.community("c1")["parent_id"])
    community = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": street["code"] + "098", "name": "停用社区", "level": "community", "parent_id": street["id"],
        "community_type": "mixed", "vintage": 2025, "active": False}), 201)
    dwelling_id = pick(world, engine, "c1_g1")
    error(api.as_("sup_street", "POST", f"{DWELLINGS}/{dwelling_id}/move", json={"community_id": community["id"]}),
          409, "division_inactive")
    ok(api.as_("sup_street", "PATCH", f"{DWELLINGS}/{dwelling_id}", json={"active": False, "version": 1}))
    moved = ok(api.as_("sup_street", "POST", f"{DWELLINGS}/{dwelling_id}/move", json={"community_id": community["id"]}))
    assert moved["community_id"] == community["id"] and moved["active"] is False


def test_move_carries_residents_and_tenancies(api: Api, world: World, engine: Engine) -> None:
    """Rows that name the dwelling (people domain) move into the new area with it."""
    from app.people.models import Resident, Tenancy

    c1, c2 = world.community("c1"), world.community("c2")
    dwelling_id = pick(world, engine, "c1_g1")
    source = dwelling(engine, dwelling_id)
    with Session(engine) as session:
        resident = Resident(community_id=c1["id"], dwelling_id=dwelling_id, area_path=source.area_path,
                            district_code=source.district_code, name="测试", sex="F", birth_date=date(1990, 1, 1),
                            hukou_code="411602", arrival_date=date(2026, 1, 1))
        session.add(resident)
        session.flush()
        session.add(Tenancy(resident_id=resident.id, dwelling_id=dwelling_id, area_path=source.area_path,
                            district_code=source.district_code, move_in=date(2026, 1, 1), source="worker"))
        session.commit()
        resident_id = resident.id
    ok(api.as_("sup_street", "POST", f"{DWELLINGS}/{dwelling_id}/move", json={"community_id": c2["id"]}))
    with Session(engine) as session:
        moved = session.get(Resident, resident_id)
        assert moved is not None
        assert (moved.community_id, moved.area_path, moved.district_code) == (c2["id"], c2["path"],
                                                                               c2["district_code"])
        tenancy = session.exec(select(Tenancy).where(col(Tenancy.resident_id) == resident_id)).one()
        assert tenancy.area_path == c2["path"]
    events = audit_actions(engine, "dwellings.move_rows")
    assert events and events[-1].target_id == dwelling_id and "测试" not in (events[-1].detail or "")
