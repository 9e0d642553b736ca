"""Reading divisions: who sees what (own community, neighbour, other district, auditor) and the filters."""

from __future__ import annotations

import pytest

from tests.assertions import assert_error as error
from tests.assertions import ok
from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS

# (user, which division, expected status)
VISIBILITY = [
    ("admin", "c1", 200), ("admin", "c3", 200),
    ("worker1", "c1", 200), ("worker1", "c1_grid", 200), ("worker1", "c2", 404), ("worker1", "c3", 404),
    ("worker1", "street", 404),
    ("grid_worker", "c1_grid", 200), ("grid_worker", "c1", 404), ("grid_worker", "c1_grid2", 404),
    ("worker2", "c1", 404), ("worker2", "c2", 200),
    ("worker3", "c1", 404), ("worker3", "c3", 200),
    ("sup_street", "street", 200), ("sup_street", "c1", 200), ("sup_street", "c2", 200),
    ("sup_street", "c3", 404), ("sup_street", "district", 404),
    ("sup_district", "district", 200), ("sup_district", "c2", 200), ("sup_district", "c3", 404),
    ("sup_other", "c1", 404), ("sup_other", "c3", 200),
    ("auditor", "c1", 403), ("auditor", "c3", 403),
]


def target(world: World, key: str) -> str:
    c1 = world.community("c1")
    ids = {
        "c1": c1["id"], "c2": world.community("c2")["id"], "c3": world.community("c3")["id"],
        "c1_grid": world.grids[c1["id"]][0]["id"], "c1_grid2": world.grids[c1["id"]][1]["id"],
        "street": c1["parent_id"],
        "district": next(d["id"] for d in world.districts if d["code"] == c1["district_code"]),
    }
    return str(ids[key])


@pytest.mark.parametrize(("user", "key", "status"), VISIBILITY)
def test_get_division_by_role_and_scope(api: Api, world: World, user: str, key: str, status: int) -> None:
    response = api.as_(user, "GET", f"{DIVISIONS}/{target(world, key)}")
    if status == 200:
        assert ok(response)["id"] == target(world, key)
    else:
        error(response, status, {403: "forbidden", 404: "not_found"}[status])


def test_unknown_division_is_404(api: Api) -> None:
    error(api.as_("admin", "GET", f"{DIVISIONS}/{'0' * 32}"), 404, "not_found")
    error(api.as_("admin", "GET", f"{DIVISIONS}/{'x' * 500}"), 404, "not_found")


def test_detail_has_breadcrumb(api: Api, world: World) -> None:
    c1 = world.community("c1")
    grid = world.grids[c1["id"]][0]
    body = ok(api.as_("worker1", "GET", f"{DIVISIONS}/{grid['id']}"))
    assert [a["level"] for a in body["ancestors"]] == ["city", "district", "street", "community"]
    assert body["ancestors"][0]["code"] == "410100"
    assert body["ancestors"][-1] == {"id": c1["id"], "code": c1["code"], "name": c1["name"], "level": "community"}
    assert body["path"] == grid["path"] and body["district_code"] == c1["district_code"]
    assert body["community_type"] is None
    city = ok(api.as_("admin", "GET", f"{DIVISIONS}/{world.city['id']}"))
    assert city["ancestors"] == [] and city["parent_id"] is None and city["district_code"] is None


@pytest.mark.parametrize(("user", "expected"), [
    ("worker1", 3), ("grid_worker", 1), ("sup_street", 7), ("worker3", 3),
])
def test_list_is_scoped(api: Api, world: World, user: str, expected: int) -> None:
    body = ok(api.as_(user, "GET", f"{DIVISIONS}?limit=200"))
    assert body["total"] == expected == len(body["items"])
    scope = ok(api.as_(user, "GET", "/api/v1/auth/me"))["scope"]
    prefixes = tuple(s["path"] for s in scope)
    assert all(item["path"].startswith(prefixes) for item in body["items"])


def test_list_as_admin_and_district_supervisor(api: Api, world: World) -> None:
    everything = ok(api.as_("admin", "GET", f"{DIVISIONS}?limit=200"))
    assert everything["total"] == 1 + len(world.districts) + len(world.streets) + len(world.communities) + \
        sum(len(g) for g in world.grids.values())
    paths = [d["path"] for d in everything["items"]]
    assert paths == sorted(paths)
    district = ok(api.as_("sup_district", "GET", f"{DIVISIONS}?limit=200"))
    code = world.community("c1")["district_code"]
    assert district["total"] > 0 and all(d["district_code"] == code for d in district["items"])
    assert all(d["district_code"] != code for d in ok(api.as_("sup_other", "GET", DIVISIONS))["items"])


def test_list_forbidden_to_auditor(api: Api) -> None:
    error(api.as_("auditor", "GET", DIVISIONS), 403, "forbidden")


def test_list_filters(api: Api, world: World) -> None:
    c1 = world.community("c1")
    children = ok(api.as_("sup_street", "GET", f"{DIVISIONS}?parent_id={c1['parent_id']}"))
    assert {d["id"] for d in children["items"]} == {c1["id"], world.community("c2")["id"]}
    communities = ok(api.as_("admin", "GET", f"{DIVISIONS}?level=community&limit=200"))
    assert communities["total"] == len(world.communities)
    by_code = ok(api.as_("admin", "GET", f"{DIVISIONS}?q={c1['code']}"))
    assert [d["id"] for d in by_code["items"]] == [c1["id"]]
    by_name = ok(api.as_("worker1", "GET", f"{DIVISIONS}?q={c1['name'][:2]}"))
    assert c1["id"] in {d["id"] for d in by_name["items"]}
    grids = ok(api.as_("worker1", "GET", f"{DIVISIONS}?q=g01"))  # case-insensitive on codes
    assert [d["id"] for d in grids["items"]] == [world.grids[c1["id"]][0]["id"]]
    assert ok(api.as_("admin", "GET", f"{DIVISIONS}?active=false"))["total"] == 0
    assert ok(api.as_("admin", "GET", f"{DIVISIONS}?q=%25"))["total"] == 0  # LIKE wildcards are literal
    assert ok(api.as_("admin", "GET", f"{DIVISIONS}?q=_"))["total"] == 0
    # Filtering on something out of scope just finds nothing.
    assert ok(api.as_("worker1", "GET", f"{DIVISIONS}?parent_id={world.community('c2')['id']}"))["total"] == 0
    own_street = ok(api.as_("worker1", "GET", f"{DIVISIONS}?parent_id={c1['parent_id']}"))
    assert [d["id"] for d in own_street["items"]] == [c1["id"]]


@pytest.mark.parametrize("query", ["level=planet", "active=maybe", "q=" + "x" * 101, "parent_id=" + "a" * 33,
                                   "limit=0", "offset=-1"])
def test_bad_list_query_is_422(api: Api, query: str) -> None:
    error(api.as_("admin", "GET", f"{DIVISIONS}?{query}"), 422, "validation_error")


def test_paging(api: Api) -> None:
    first = ok(api.as_("admin", "GET", f"{DIVISIONS}?limit=5"))
    second = ok(api.as_("admin", "GET", f"{DIVISIONS}?limit=5&offset=5"))
    assert len(first["items"]) == 5 and first["total"] == second["total"]
    assert not {d["id"] for d in first["items"]} & {d["id"] for d in second["items"]}
