from __future__ import annotations

from typing import Any

from tests.conftest import Api, World

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
