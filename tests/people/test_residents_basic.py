from __future__ import annotations

from typing import Any

from tests.conftest import Api, World
from tests.factories import id_number

URL = "/api/v1/residents"


def body(world: World, community: str = "c1", **over: Any) -> dict[str, Any]:
    c = world.community(community)
    data = {
        "name": "张丽", "id_number": "411602199003150025", "phone": "+86 138-0013-8000",
        "hukou_code": "411602", "arrival_date": "2026-10-01", "dwelling_id": world.dwellings[c["id"]][0],
    }
    data.update(over)
    return data


def test_register_read_and_search(api: Api, world: World) -> None:
    created = api.as_("worker1", "POST", URL, json=body(world))
    assert created.status_code == 201, created.text
    r = created.json()
    assert (r["sex"], r["birth_date"], r["phone"], r["id_verified"]) == ("F", "1990-03-15", "13800138000", True)
    assert r["key_person"] is True  # woman of 30-something with nothing on file yet
    found = api.as_("worker1", "GET", URL, params={"id_number": "411602199003150025"}).json()
    assert found["total"] == 1 and found["items"][0]["id_number_masked"] == "4116**********0025"
    assert api.as_("worker2", "GET", f"{URL}/{r['id']}").status_code == 404
    assert api.as_("auditor", "GET", f"{URL}/{r['id']}").status_code == 403


def test_same_id_elsewhere_starts_transfer(api: Api, world: World) -> None:
    assert api.as_("worker1", "POST", URL, json=body(world)).status_code == 201
    again = api.as_("worker3", "POST", URL, json=body(world, "c3", name="张 丽"))
    assert again.status_code == 409
    assert again.json()["code"] == "resident_registered_elsewhere"
    assert set(again.json()["details"]) == {"transfer_request_id"}


def test_page_totals_hold_whether_or_not_the_list_is_counted(api: Api, world: World) -> None:
    """`paginate` counts only when a page cannot tell the total: every kind of page gives the same total."""
    names = [f"页{n}" for n in ("甲", "乙", "丙", "丁", "戊")]
    for i, name in enumerate(names):
        created = api.as_("worker1", "POST", URL, json=body(world, name=name, id_number=id_number(f"1990010{i + 1}")))
        assert created.status_code == 201, created.text

    def page(limit: int, offset: int) -> dict[str, Any]:
        answer = api.as_("worker1", "GET", URL, params={"q": "页", "limit": limit, "offset": offset})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    assert [p["total"] for p in (page(2, 0), page(2, 4), page(2, 9), page(50, 0))] == [5, 5, 5, 5]
    assert (len(page(2, 0)["items"]), len(page(2, 4)["items"]), len(page(2, 9)["items"])) == (2, 1, 0)
    assert page(5, 0)["total"] == 5  # a full page that happens to be all of it: counted
    nothing = api.as_("worker1", "GET", URL, params={"q": "无此人"}).json()
    assert (nothing["total"], nothing["items"]) == (0, [])


def test_search_filters_bind_their_values(api: Api, world: World) -> None:
    """The search statement is built once per scope and set of filters: each request's values are its own, a
    name prefix's `%` and `_` match only themselves, and filters combine."""
    made = {}
    for i, name in enumerate(("查_甲", "查%乙", "查丙")):
        created = api.as_("worker1", "POST", URL, json=body(world, name=name, id_number=id_number(f"1985020{i + 1}"),
                                                           phone=f"1390000000{i}"))
        assert created.status_code == 201, created.text
        made[name] = created.json()

    def names(**params: Any) -> list[str]:
        answer = api.as_("worker1", "GET", URL, params=params)
        assert answer.status_code == 200, answer.text
        return [item["name"] for item in answer.json()["items"]]

    for name, resident in made.items():  # the same statement, each value in turn
        assert names(id_number=resident["id_number"]) == [name]
    assert names(q="查_") == ["查_甲"] and names(q="查%") == ["查%乙"]
    assert sorted(names(q="查")) == sorted(made)  # (the order is the database's collation)
    assert names(q="查", phone="13900000002") == ["查丙"]
    assert names(q="查", phone="13900000002", id_number=made["查_甲"]["id_number"]) == []
    key = made["查丙"]["key_person"]
    assert "查丙" in names(q="查", key_person=str(key).lower())
    assert "查丙" not in names(q="查", key_person=str(not key).lower())
