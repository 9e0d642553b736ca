"""Renumbering and moving divisions: the subtree's codes and paths, the dwellings under it, who sees what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.places.models import Division, Dwelling
from tests.assertions import assert_error as error
from tests.assertions import ok
from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS, DWELLINGS, audit_actions, division, snapshot


def subtree(engine: Engine, prefix: str) -> list[Division]:
    with Session(engine) as session:
        return list(session.execute(
            select(Division).where(col(Division.path).startswith(prefix)).order_by(col(Division.path))
        ).scalars())


def dwellings_under(engine: Engine, prefix: str) -> list[Dwelling]:
    with Session(engine) as session:
        return list(session.execute(select(Dwelling).where(col(Dwelling.area_path).startswith(prefix))).scalars())


def dwellings_of(engine: Engine, community_id: str) -> list[Dwelling]:
    with Session(engine) as session:
        return list(session.execute(select(Dwelling).where(col(Dwelling.community_id) == community_id)).scalars())


def assert_consistent(engine: Engine) -> None:
    """Every path is its parent's path plus its code; every dwelling sits at its grid's (or community's) path."""
    with Session(engine) as session:
        by_id = {d.id: d for d in session.execute(select(Division)).scalars()}
        for d in by_id.values():
            parent = by_id.get(d.parent_id) if d.parent_id else None
            assert d.path == (parent.path if parent else "/") + d.code + "/", d.path
            if d.level in ("street", "community"):
                assert parent is not None and d.code.startswith(parent.code), d.path
            if d.level not in ("city",):
                assert d.district_code == d.path.strip("/").split("/")[1], d.path
        for w in session.execute(select(Dwelling)).scalars():
            place = by_id[w.grid_id] if w.grid_id else by_id[w.community_id]
            assert w.area_path == place.path
            assert w.district_code == by_id[w.community_id].district_code
            if w.grid_id:
                assert by_id[w.grid_id].parent_id == w.community_id


def total(api: Api, user: str, url: str) -> int:
    return int(ok(api.as_(user, "GET", url))["total"])


def relocate_events(engine: Engine) -> list[dict[str, Any]]:
    return [json.loads(e.detail or "{}") | {"target": e.target_id} for e in audit_actions(engine, "divisions.relocate")]


# --- code edits ----------------------------------------------------------------------------------------

def test_edit_community_code_rewrites_grids_and_dwellings(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    before_worker = total(api, "worker1", DWELLINGS)
    before_grid = total(api, "grid_worker", DWELLINGS)
    n_dwellings = len(dwellings_under(engine, c1["path"]))
    new_code = c1["code"][:-3] + "777"
    body = ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", json={"code": new_code, "version": 1}))
    new_path = c1["path"].replace(c1["code"], new_code)
    assert body["code"] == new_code and body["path"] == new_path and body["version"] == 2
    moved = subtree(engine, new_path)
    assert [d.code for d in moved] == [new_code, "G01", "G02"]
    assert all(d.version == 2 for d in moved)
    assert subtree(engine, c1["path"]) == []
    assert len(dwellings_under(engine, new_path)) == n_dwellings > 0
    assert dwellings_under(engine, c1["path"]) == []
    assert all(w.version == 1 for w in dwellings_under(engine, new_path))  # nothing a client sees changed
    assert_consistent(engine)
    # Scopes are paths looked up per request: the assigned workers still see their place and dwellings.
    assert ok(api.as_("worker1", "GET", f"{DIVISIONS}/{c1['id']}"))["path"] == new_path
    assert total(api, "worker1", DWELLINGS) == before_worker
    assert total(api, "grid_worker", DWELLINGS) == before_grid
    assert total(api, "sup_street", f"{DWELLINGS}?community_id={c1['id']}") == n_dwellings
    events = relocate_events(engine)
    assert len(events) == 1 and events[0]["target"] == c1["id"]
    assert events[0]["descendants"] == 2 and events[0]["area_rows"]["dwellings"] == n_dwellings
    assert events[0]["from_code"] == c1["code"] and events[0]["to_code"] == new_code
    updates = [e for e in audit_actions(engine, "divisions.update") if e.target_id == c1["id"]]
    assert len(updates) == 1 and {"code", "path", "version"} <= set((updates[0].fields or "").split(","))


def test_renumber_district_rewrites_codes_below(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    district = next(d for d in world.districts if d["code"] == c1["district_code"])
    old, new = district["code"], "410109"
    n_divisions, n_dwellings = len(subtree(engine, district["path"])), len(dwellings_under(engine, district["path"]))
    seen = total(api, "sup_district", DWELLINGS)
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{district['id']}", json={"code": new, "version": 1}))
    moved = subtree(engine, f"/410100/{new}/")
    assert len(moved) == n_divisions and subtree(engine, district["path"]) == []
    assert all(d.code.startswith(new) for d in moved if d.level in ("district", "street", "community"))
    assert all(d.district_code == new for d in moved)
    assert {d.code for d in moved if d.level == "grid"} == {"G01", "G02"}
    community = division(engine, id=c1["id"])
    assert community is not None and community.code == new + c1["code"][6:]
    under = dwellings_under(engine, f"/410100/{new}/")
    assert len(under) == n_dwellings and all(w.district_code == new for w in under)
    assert_consistent(engine)
    assert total(api, "sup_district", DWELLINGS) == seen
    assert ok(api.as_("worker1", "GET", f"{DIVISIONS}/{c1['id']}"))["code"] == community.code
    assert ok(api.as_("admin", "GET", f"{DIVISIONS}?q={old}"))["total"] == 0


def test_renumber_city_rewrites_everything(api: Api, world: World, engine: Engine) -> None:
    everything = len(subtree(engine, "/"))
    ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{world.city['id']}", json={"code": "410200", "version": 1}))
    moved = subtree(engine, "/410200/")
    assert len(moved) == everything
    assert all(d.code.startswith("4102") for d in moved if d.level != "grid")
    assert_consistent(engine)
    c1 = world.community("c1")
    assert ok(api.as_("worker1", "GET", f"{DIVISIONS}/{c1['id']}"))["district_code"] == "4102" + c1["district_code"][4:]


def test_edit_grid_code(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid, other = world.grids[c1["id"]]
    in_grid = len(dwellings_under(engine, grid["path"]))
    in_other = len(dwellings_under(engine, other["path"]))
    body = ok(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"code": "g07", "version": 1}))
    assert body["code"] == "G07" and body["path"] == c1["path"] + "G07/"
    assert len(dwellings_under(engine, c1["path"] + "G07/")) == in_grid
    assert len(dwellings_under(engine, other["path"])) == in_other
    assert_consistent(engine)
    assert total(api, "grid_worker", DWELLINGS) == in_grid
    error(api.as_("admin", "PATCH", f"{DIVISIONS}/{grid['id']}", json={"code": "G02", "version": 2}), 409,
          "division_code_taken")


# --- moves ---------------------------------------------------------------------------------------------

def test_move_community_to_another_district(api: Api, world: World, engine: Engine) -> None:
    c1, c3 = world.community("c1"), world.community("c3")
    street = next(s for s in world.streets if s["id"] == c3["parent_id"])
    n_dwellings = len(dwellings_under(engine, c1["path"]))
    worker_sees = total(api, "worker1", DWELLINGS)
    grid_sees = total(api, "grid_worker", DWELLINGS)
    assert total(api, "sup_other", f"{DWELLINGS}?community_id={c1['id']}") == 0
    new_code = street["code"] + "088"
    body = ok(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move",
                      json={"parent_id": street["id"], "code": new_code, "version": 1}))
    new_path = street["path"] + new_code + "/"
    assert (body["parent_id"], body["code"], body["path"]) == (street["id"], new_code, new_path)
    assert body["district_code"] == c3["district_code"] and body["version"] == 2
    assert [a["id"] for a in body["ancestors"]][-1] == street["id"]
    assert [d.path for d in subtree(engine, new_path)] == [new_path, new_path + "G01/", new_path + "G02/"]
    under = dwellings_under(engine, new_path)
    assert len(under) == n_dwellings and all(w.district_code == c3["district_code"] for w in under)
    assert_consistent(engine)
    # The assigned workers follow their community; the supervisors' views change with the map.
    assert ok(api.as_("worker1", "GET", f"{DIVISIONS}/{c1['id']}"))["path"] == new_path
    assert total(api, "worker1", DWELLINGS) == worker_sees
    assert total(api, "grid_worker", DWELLINGS) == grid_sees
    error(api.as_("sup_district", "GET", f"{DIVISIONS}/{c1['id']}"), 404, "not_found")
    error(api.as_("sup_street", "GET", f"{DWELLINGS}/{under[0].id}"), 404, "not_found")
    assert total(api, "sup_other", f"{DWELLINGS}?community_id={c1['id']}") == n_dwellings
    assert ok(api.as_("worker3", "GET", f"{DIVISIONS}/{c3['id']}"))["id"] == c3["id"]
    events = relocate_events(engine)
    assert events[-1]["from_path"] == c1["path"] and events[-1]["to_path"] == new_path


def test_move_keeps_code_when_it_fits(api: Api, world: World, engine: Engine) -> None:
    """A street moved within its district keeps its code; its communities follow."""
    c1 = world.community("c1")
    district = next(d for d in world.districts if d["code"] == c1["district_code"])
    grid = world.grids[c1["id"]][0]
    # Move a grid between two communities of the same street, keeping code "G01" is taken there.
    error(api.as_("admin", "POST", f"{DIVISIONS}/{grid['id']}/move", json={"parent_id": world.community("c2")["id"]}),
          409, "division_code_taken")
    # Same parent, same code: nothing to do, nothing changes.
    before = snapshot(engine)
    body = ok(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move", json={"parent_id": c1["parent_id"]}))
    assert body["version"] == 1
    assert snapshot(engine) == before
    # A new street in the same district, then move c1 there with a code that fits.
    street = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": district["code"] + "050", "name": "新街道", "level": "street", "parent_id": district["id"],
        "vintage": 2025}), 201)
    error(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move", json={"parent_id": street["id"]}), 422,
          "division_code_mismatch")
    moved = ok(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move",
                       json={"parent_id": street["id"], "code": street["code"] + "001"}))
    assert moved["path"] == street["path"] + street["code"] + "001/"
    assert_consistent(engine)
    assert total(api, "sup_street", f"{DWELLINGS}?community_id={c1['id']}") == 0  # left sup_street's street
    assert total(api, "sup_district", f"{DWELLINGS}?community_id={c1['id']}") > 0  # still in the district


def test_move_grid_to_another_community(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    grid = world.grids[c1["id"]][0]
    ids = {w.id for w in dwellings_under(engine, grid["path"])}
    body = ok(api.as_("admin", "POST", f"{DIVISIONS}/{grid['id']}/move",
                      json={"parent_id": c2["id"], "code": "G07", "version": 1}))
    assert body["path"] == c2["path"] + "G07/"
    moved = dwellings_under(engine, c2["path"] + "G07/")
    assert {w.id for w in moved} == ids and all(w.community_id == c2["id"] for w in moved)
    assert_consistent(engine)
    assert total(api, "worker2", f"{DWELLINGS}?grid_id={grid['id']}") == len(ids)
    assert total(api, "worker1", f"{DWELLINGS}?grid_id={grid['id']}") == 0
    assert total(api, "grid_worker", DWELLINGS) == len(ids)  # the grid's own worker goes with it


def test_move_grid_with_clashing_address_is_409(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    grid = world.grids[c1["id"]][0]
    address = dwellings_under(engine, grid["path"])[0].address
    ok(api.as_("admin", "POST", DWELLINGS, json={"community_id": c2["id"], "address": address, "kind": "rental"}),
       201)
    before = snapshot(engine)
    error(api.as_("admin", "POST", f"{DIVISIONS}/{grid['id']}/move", json={"parent_id": c2["id"], "code": "G07"}),
          409, "dwelling_address_taken")
    assert snapshot(engine) == before


MOVE_ERRORS = [
    # (what to move, new parent, extra body, status, code)
    ("street", "c1", {}, 409, "division_move_cycle"),
    ("c1", "c1_grid", {}, 409, "division_move_cycle"),
    ("c1", "c1", {}, 409, "division_move_cycle"),
    ("c1", "district", {}, 422, "division_parent_level"),
    ("c1_grid", "street", {}, 422, "division_parent_level"),
    ("city", "district", {}, 422, "division_parent_level"),
    ("c1", "c3_street", {}, 422, "division_code_mismatch"),
    ("c1", "c3_street", {"code": "12"}, 422, "division_code_invalid"),
    ("c1", "unknown", {}, 404, "not_found"),
    ("c1", "street", {"code": "c2"}, 409, "division_code_taken"),
    ("c1", "c3_street", {"version": 7}, 409, "stale_version"),
    ("c1", "street", {"extra": 1}, 422, "validation_error"),
    ("unknown", "street", {}, 404, "not_found"),
]


@pytest.mark.parametrize(("what", "to", "extra", "status", "code"), MOVE_ERRORS)
def test_move_errors(api: Api, world: World, engine: Engine, what: str, to: str, extra: dict[str, Any], status: int,
                     code: str) -> None:
    c1, c3 = world.community("c1"), world.community("c3")
    ids = {
        "c1": c1["id"], "c1_grid": world.grids[c1["id"]][0]["id"], "street": c1["parent_id"],
        "district": next(d["id"] for d in world.districts if d["code"] == c1["district_code"]),
        "city": world.city["id"], "c3_street": c3["parent_id"], "unknown": "0" * 32,
    }
    if extra.get("code") == "c2":
        extra = {"code": world.community("c2")["code"]}
    before = snapshot(engine)
    error(api.as_("admin", "POST", f"{DIVISIONS}/{ids[what]}/move", json={"parent_id": ids[to], **extra}), status,
          code)
    assert snapshot(engine) == before


def test_move_under_inactive_parent_is_409(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    district = next(d for d in world.districts if d["code"] == c1["district_code"])
    street = ok(api.as_("admin", "POST", DIVISIONS, json={
        "code": district["code"] + "060", "name": "停用街道", "level": "street", "parent_id": district["id"],
        "vintage": 2025, "active": False}), 201)
    error(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move",
                  json={"parent_id": street["id"], "code": street["code"] + "001"}), 409, "division_parent_inactive")
    assert_consistent(engine)
