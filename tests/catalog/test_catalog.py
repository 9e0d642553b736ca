"""The free-service catalogue through the HTTP API: the seed, versions and snapshots, admin changes."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import col

from app.auth.models import User
from app.catalog import service
from app.core.db import unit_of_work
from app.core.types import city_today
from app.main import app
from tests.assertions import assert_error
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import visit_body
from tests.visits import resident

CATALOG = "/api/v1/catalog"
ITEMS = f"{CATALOG}/items"
VERSIONS = f"{CATALOG}/versions"
SEED_CODES = ["education", "contraceptives", "pregnancy_iud_check", "iud_procedure", "termination",
              "sterilisation", "complications", "rh_checkup"]
READERS = ("worker1", "grid_worker", "sup_street", "sup_district", "admin", "auditor")
NOT_ADMINS = ("worker1", "sup_street", "sup_district", "auditor")


def new_item(**over: Any) -> dict[str, Any]:
    body = {"code": "hpv_screening", "name_zh": "宫颈癌筛查", "name_en": "Cervical cancer screening",
            "description": "HPV 检测。", "unit": "次", "sort_order": 9, "effective_from": "2026-01-01",
            "note": "Provincial list 2026"}
    body.update(over)
    return body


def add(api: Api, **over: Any) -> dict[str, Any]:
    response = api.as_("admin", "POST", ITEMS, json=new_item(**over))
    assert response.status_code == 201, response.text
    return dict(response.json())


def seed_item(api: Api, code: str) -> dict[str, Any]:
    items = api.as_("admin", "GET", CATALOG).json()["items"]
    return dict(next(i for i in items if i["code"] == code))


def snapshot(api: Api, version: int) -> dict[str, Any]:
    response = api.as_("worker1", "GET", f"{VERSIONS}/{version}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def version_count(engine: Engine) -> int:
    return int(rows(engine, "SELECT count(*) AS n FROM catalog_versions")[0]["n"])


# --- the seed -------------------------------------------------------------------------------------------


def test_seed_is_version_one_with_the_eight_statutory_items(api: Api, engine: Engine) -> None:
    body = api.as_("worker1", "GET", CATALOG).json()
    assert body["version"] == 1
    assert [i["code"] for i in body["items"]] == SEED_CODES
    first = body["items"][0]
    assert (first["name_zh"], first["name_en"], first["sort_order"]) == (
        "宣传教育与咨询", "Policy and reproductive-health education and counselling", 1)
    assert {i["effective_from"] for i in body["items"]} == {"2009-10-01"}
    assert all(i["effective_to"] is None and not i["retired"] and i["since_version"] == 1 and i["sensitive"]
               for i in body["items"])
    assert all(i["description"] and i["unit"] for i in body["items"])
    # Fixed ids: every deployment names the seed items alike.
    assert first["id"] == "aba0bd7dc4ab595d928b13f422180d60"

    versions = api.as_("worker1", "GET", VERSIONS).json()
    assert versions["total"] == 1
    assert versions["items"][0]["version"] == 1 and versions["items"][0]["item_count"] == 8
    assert "2009" in versions["items"][0]["note"] and versions["items"][0]["published_by"] is None

    snap = snapshot(api, 1)
    assert [i["code"] for i in snap["items"]] == SEED_CODES
    stored = rows(engine, "SELECT id, code, name_zh, name_en, sort_order FROM service_items ORDER BY sort_order")
    assert [(i["id"], i["code"], i["name_zh"], i["name_en"], i["sort_order"]) for i in snap["items"]] == [
        (r["id"], r["code"], r["name_zh"], r["name_en"], r["sort_order"]) for r in stored]


@pytest.mark.parametrize("user", READERS)
def test_every_staff_role_reads_the_catalogue(api: Api, user: str) -> None:
    for url in (CATALOG, VERSIONS, f"{VERSIONS}/1"):
        assert api.as_(user, "GET", url).status_code == 200, (user, url)


@pytest.mark.parametrize("role", ["landlord", "police", "outflow_city"])
def test_partner_roles_may_not_read_the_catalogue(api: Api, world: World, engine: Engine, role: str) -> None:
    api.headers("worker1")  # log in first, then turn the account into a partner account
    with engine.begin() as conn:
        conn.execute(update(User).where(col(User.id) == world.users["worker1"]).values(role=role))
    for url in (CATALOG, VERSIONS, f"{VERSIONS}/1"):
        assert_error(api.as_("worker1", "GET", url), 403, "forbidden")


def test_unknown_version_is_404(api: Api) -> None:
    assert_error(api.as_("worker1", "GET", f"{VERSIONS}/2"), 404, "not_found")
    assert api.as_("worker1", "GET", f"{VERSIONS}/0").status_code == 422


def test_versions_are_paged_newest_first(api: Api) -> None:
    add(api, code="one_more")
    add(api, code="two_more")
    page = api.as_("auditor", "GET", VERSIONS, params={"limit": 2}).json()
    assert (page["total"], page["limit"]) == (3, 2)
    assert [v["version"] for v in page["items"]] == [3, 2]
    assert [v["item_count"] for v in page["items"]] == [10, 9]
    rest = api.as_("auditor", "GET", VERSIONS, params={"limit": 2, "offset": 2}).json()
    assert [v["version"] for v in rest["items"]] == [1]


# --- adding ---------------------------------------------------------------------------------------------


def test_admin_adds_an_item_and_publishes_a_version(api: Api, world: World, engine: Engine) -> None:
    before = json.loads(rows(engine, "SELECT items FROM catalog_versions WHERE version = 1")[0]["items"])
    body = add(api)
    assert body["catalog_version"] == 2
    item = body["item"]
    assert (item["code"], item["since_version"], item["version"], item["retired"]) == ("hpv_screening", 2, 1, False)

    stored = rows(engine, "SELECT * FROM service_items WHERE code = 'hpv_screening'")
    assert len(stored) == 1 and stored[0]["id"] == item["id"] and stored[0]["since_version"] == 2
    version = rows(engine, "SELECT * FROM catalog_versions WHERE version = 2")[0]
    assert version["note"] == "Provincial list 2026" and version["published_by"] == world.users["admin"]

    snap = snapshot(api, 2)
    assert [i["code"] for i in snap["items"]] == [*SEED_CODES, "hpv_screening"]
    assert snap["items"][-1] == {"id": item["id"], "code": "hpv_screening", "name_zh": "宫颈癌筛查",
                                 "name_en": "Cervical cancer screening", "description": "HPV 检测。", "unit": "次",
                                 "sort_order": 9, "effective_from": "2026-01-01", "effective_to": None,
                                 "sensitive": True}
    # The old snapshot is untouched.
    assert json.loads(rows(engine, "SELECT items FROM catalog_versions WHERE version = 1")[0]["items"]) == before
    assert len(snapshot(api, 1)["items"]) == 8
    assert api.as_("worker1", "GET", CATALOG).json()["version"] == 2


def test_duplicate_code_is_409_and_publishes_nothing(api: Api, engine: Engine) -> None:
    assert_error(api.as_("admin", "POST", ITEMS, json=new_item(code="education")), 409, "service_item_code_taken")
    add(api)
    assert_error(api.as_("admin", "POST", ITEMS, json=new_item()), 409, "service_item_code_taken")
    assert version_count(engine) == 2


@pytest.mark.parametrize("code", ["x", "Education", "9lives", "has-dash", "a" * 21, "名字", ""])
def test_item_code_format(api: Api, engine: Engine, code: str) -> None:
    assert_error(api.as_("admin", "POST", ITEMS, json=new_item(code=code)), 422, "validation_error")
    assert version_count(engine) == 1


def test_code_limits_both_sides(api: Api) -> None:
    add(api, code="ab")
    add(api, code="a" * 20)


@pytest.mark.parametrize(("field", "value"), [("name_zh", ""), ("name_zh", "名" * 61), ("name_en", "x" * 121),
                                              ("description", "x" * 501), ("unit", "x" * 11), ("sort_order", -1),
                                              ("sort_order", 10_001), ("effective_from", "1989-12-31"),
                                              ("note", ""), ("note", "x" * 201), ("extra", 1)])
def test_item_input_bounds(api: Api, field: str, value: Any) -> None:
    assert_error(api.as_("admin", "POST", ITEMS, json=new_item(**{field: value})), 422, "validation_error")


def test_effective_dates_order_on_add(api: Api, engine: Engine) -> None:
    body = new_item(effective_from="2026-01-02", effective_to="2026-01-01")
    assert_error(api.as_("admin", "POST", ITEMS, json=body), 422, "effective_dates_order")
    assert version_count(engine) == 1
    add(api, effective_from="2026-01-01", effective_to="2026-01-01")  # a one-day item is fine


@pytest.mark.parametrize("user", NOT_ADMINS)
def test_only_admins_change_the_catalogue(api: Api, engine: Engine, user: str) -> None:
    item = seed_item(api, "education")
    assert_error(api.as_(user, "POST", ITEMS, json=new_item()), 403, "forbidden")
    assert_error(api.as_(user, "PATCH", f"{ITEMS}/{item['id']}", json={"version": 1, "note": "x", "unit": "份"}),
                 403, "forbidden")
    assert_error(api.as_(user, "POST", f"{ITEMS}/{item['id']}/retire",
                         json={"version": 1, "note": "x", "effective_to": "2026-12-31"}), 403, "forbidden")
    assert version_count(engine) == 1


# --- editing ----------------------------------------------------------------------------------------------


def test_admin_edits_an_item(api: Api, engine: Engine) -> None:
    item = seed_item(api, "contraceptives")
    response = api.as_("admin", "PATCH", f"{ITEMS}/{item['id']}",
                       json={"version": 1, "note": "Rename", "name_zh": "免费避孕药具", "sort_order": 20})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["catalog_version"] == 2
    assert (body["item"]["name_zh"], body["item"]["version"], body["item"]["code"]) == ("免费避孕药具", 2,
                                                                                        "contraceptives")
    stored = rows(engine, "SELECT name_zh, sort_order, version FROM service_items WHERE id = :id", id=item["id"])
    assert stored == [{"name_zh": "免费避孕药具", "sort_order": 20, "version": 2}]
    new = snapshot(api, 2)["items"]
    assert new[-1]["code"] == "contraceptives" and new[-1]["name_zh"] == "免费避孕药具"  # reordered last
    old = snapshot(api, 1)["items"]
    assert old[1]["code"] == "contraceptives" and old[1]["name_zh"] == "免费发放避孕药具"


def test_edit_errors(api: Api, engine: Engine) -> None:
    item = seed_item(api, "education")
    url = f"{ITEMS}/{item['id']}"
    assert_error(api.as_("admin", "PATCH", url, json={"version": 2, "note": "x", "unit": "份"}), 409, "stale_version")
    assert_error(api.as_("admin", "PATCH", url, json={"version": 1, "note": "x", "code": "other"}),
                 422, "validation_error")
    assert_error(api.as_("admin", "PATCH", url, json={"version": 1, "note": "x"}), 422, "nothing_to_change")
    assert_error(api.as_("admin", "PATCH", url, json={"version": 1, "note": "x", "name_zh": None}),
                 422, "field_required")
    assert_error(api.as_("admin", "PATCH", url, json={"version": 1, "note": "x", "effective_to": "2009-09-30"}),
                 422, "effective_dates_order")
    assert_error(api.as_("admin", "PATCH", f"{ITEMS}/{'0' * 32}", json={"version": 1, "note": "x", "unit": "份"}),
                 404, "not_found")
    assert version_count(engine) == 1
    # An end date can be set and cleared again.
    set_end = api.as_("admin", "PATCH", url, json={"version": 1, "note": "x", "effective_to": "2009-10-01"})
    assert set_end.status_code == 200 and set_end.json()["item"]["effective_to"] == "2009-10-01"
    cleared = api.as_("admin", "PATCH", url, json={"version": 2, "note": "x", "effective_to": None})
    assert cleared.status_code == 200 and cleared.json()["item"]["effective_to"] is None
    assert version_count(engine) == 3


# --- retiring -----------------------------------------------------------------------------------------------


def test_admin_retires_an_item(api: Api, engine: Engine) -> None:
    item = seed_item(api, "sterilisation")
    url = f"{ITEMS}/{item['id']}/retire"
    response = api.as_("admin", "POST", url, json={"version": 1, "note": "No longer offered",
                                                     "effective_to": "2026-06-30"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["catalog_version"] == 2
    assert (body["item"]["retired"], body["item"]["retired_in_version"], body["item"]["effective_to"]) == (
        True, 2, "2026-06-30")
    stored = rows(engine, "SELECT effective_to, retired_in_version FROM service_items WHERE id = :id", id=item["id"])
    assert [(str(r["effective_to"]), r["retired_in_version"]) for r in stored] == [("2026-06-30", 2)]
    # Still listed (marked), still in the snapshot with its end date; the old snapshot has no end date.
    listed = api.as_("worker1", "GET", CATALOG).json()
    assert len(listed["items"]) == 8 and seed_item(api, "sterilisation")["retired"] is True
    assert next(i for i in snapshot(api, 2)["items"] if i["code"] == "sterilisation")["effective_to"] == "2026-06-30"
    assert next(i for i in snapshot(api, 1)["items"] if i["code"] == "sterilisation")["effective_to"] is None
    # `on` keeps only the items in effect that day: the last day still counts.
    on_last = api.as_("worker1", "GET", CATALOG, params={"on": "2026-06-30"}).json()["items"]
    after = api.as_("worker1", "GET", CATALOG, params={"on": "2026-07-01"}).json()["items"]
    assert "sterilisation" in {i["code"] for i in on_last}
    assert [i["code"] for i in after] == [c for c in SEED_CODES if c != "sterilisation"]

    assert_error(api.as_("admin", "POST", url, json={"version": 2, "note": "again", "effective_to": "2026-07-31"}),
                 409, "service_item_retired")
    # A retired item's end date cannot be cleared by an edit.
    assert_error(api.as_("admin", "PATCH", f"{ITEMS}/{item['id']}",
                         json={"version": 2, "note": "x", "effective_to": None}), 409, "service_item_retired")
    assert version_count(engine) == 2


def test_retire_errors(api: Api, engine: Engine) -> None:
    item = seed_item(api, "termination")
    url = f"{ITEMS}/{item['id']}/retire"
    assert_error(api.as_("admin", "POST", url, json={"version": 1, "note": "x", "effective_to": "2009-09-30"}),
                 422, "effective_dates_order")
    assert_error(api.as_("admin", "POST", url, json={"version": 3, "note": "x", "effective_to": "2026-12-31"}),
                 409, "stale_version")
    assert_error(api.as_("admin", "POST", url, json={"version": 1, "note": "x"}), 422, "validation_error")
    assert_error(api.as_("admin", "POST", f"{ITEMS}/{'0' * 32}/retire",
                         json={"version": 1, "note": "x", "effective_to": "2026-12-31"}), 404, "not_found")
    assert version_count(engine) == 1
    # Retiring on the first day it was effective is allowed (both sides of the order rule).
    ok = api.as_("admin", "POST", url, json={"version": 1, "note": "x", "effective_to": "2009-10-01"})
    assert ok.status_code == 200, ok.text


def test_catalogue_on_a_date_before_the_seed_is_empty(api: Api) -> None:
    assert api.as_("worker1", "GET", CATALOG, params={"on": "2009-09-30"}).json()["items"] == []
    assert len(api.as_("worker1", "GET", CATALOG, params={"on": "2009-10-01"}).json()["items"]) == 8


# --- concurrency --------------------------------------------------------------------------------------------


def test_simultaneous_publishes_take_distinct_versions(api: Api, engine: Engine) -> None:
    headers = api.headers("admin")
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(4)

    def publish(i: int) -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.post(ITEMS, headers=headers, json=new_item(code=f"parallel_{i}", sort_order=10 + i))
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status for status, _ in results) == [201] * 4, results
    assert sorted(body["catalog_version"] for _, body in results) == [2, 3, 4, 5]
    # Each version's snapshot holds the items published up to it: the last one all twelve.
    counts = [len(json.loads(r["items"])) for r in rows(engine, "SELECT items FROM catalog_versions ORDER BY version")]
    assert counts == [8, 9, 10, 11, 12]


# --- resolving delivered items (what a visit is checked against) ----------------------------------------------


def visit_with(engine: Engine, world: World, services: list[str], **over: Any) -> dict[str, Any]:
    body = visit_body(resident(engine, world), mode="phone", checkin=None,
                      services=[{"item_code": c, "quantity": 1} for c in services])
    body.update(over)
    return body


def test_visit_items_checked_against_the_version_used(api: Api, world: World, engine: Engine) -> None:
    visits = "/api/v1/visits"
    assert_error(api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["education"], catalog_version=2)),
                 422, "catalog_version_unknown")
    body = assert_error(api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["education", "no_such"])),
                        422, "service_item_unknown")
    assert body["details"]["codes"] == ["no_such"]
    # An item added in version 2 is unknown to a phone still on version 1.
    add(api, code="hpv_screening", effective_from="2009-10-01")
    assert_error(api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["hpv_screening"],
                                                                     catalog_version=1)),
                 422, "service_item_unknown")
    # Retired as of two days ago (city time): a visit made just now under the current version is refused; a phone that
    # recorded it under version 2 (before the retirement was published) is not.
    item = seed_item(api, "sterilisation")
    last_day = (city_today() - timedelta(days=2)).isoformat()
    retired = api.as_("admin", "POST", f"{ITEMS}/{item['id']}/retire",
                      json={"version": 1, "note": "x", "effective_to": last_day})
    assert retired.status_code == 200 and retired.json()["catalog_version"] == 3
    body = assert_error(api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["sterilisation"])),
                        422, "service_item_not_effective")
    assert body["details"]["codes"] == ["sterilisation"]
    ok = api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["sterilisation"], catalog_version=2))
    assert ok.status_code == 201, ok.text
    assert ok.json()["catalog_version"] == 2
    assert rows(engine, "SELECT item_id FROM service_deliveries WHERE visit_id = :v", v=ok.json()["id"]) == [
        {"item_id": item["id"]}]
    # Without a version the current one is recorded.
    current = api.as_("worker1", "POST", visits, json=visit_with(engine, world, ["education"]))
    assert current.status_code == 201 and current.json()["catalog_version"] == 3


def test_resolve_items_directly(api: Api, engine: Engine) -> None:
    add(api, code="late_item", effective_from="2026-03-01", effective_to="2026-03-31")
    with unit_of_work(write=False, engine=engine) as session:
        assert service.current_version(session) == 2
        assert service.resolve_items(session, [], None, date(2026, 1, 1)) == (2, {})
        version, items = service.resolve_items(session, ["education", "late_item", "education"], None,
                                               date(2026, 3, 31))
        assert version == 2 and sorted(items) == ["education", "late_item"]
        assert items["education"].id == "aba0bd7dc4ab595d928b13f422180d60"
        for day in (date(2026, 2, 28), date(2026, 4, 1)):
            with pytest.raises(service.ServiceItemNotEffective) as caught:
                service.resolve_items(session, ["education", "late_item"], 2, day)
            assert caught.value.details["codes"] == ["late_item"]
        with pytest.raises(service.ServiceItemUnknown):
            service.resolve_items(session, ["late_item"], 1, date(2026, 3, 15))
        with pytest.raises(service.CatalogVersionUnknown):
            service.resolve_items(session, ["education"], 3, date(2026, 3, 15))
        with pytest.raises(service.ServiceItemNotEffective):
            service.resolve_items(session, ["education"], 1, date(2009, 9, 30))
