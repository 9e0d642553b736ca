"""Landlords and dwellings, tenancies, 婚育证明 and the reproductive-health record, through the HTTP API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.people.rec_helpers import (
    API,
    BLIND_TO_C1,
    LANDLORDS,
    RESIDENTS,
    SEES_C1,
    dwelling_version,
    free_dwelling,
    key_person,
    landlord_body,
    put_health,
    resident_fields,
    valid_doc,
    years_ago,
)

TODAY = city_today()


def statuses(api: Api, users: tuple[str, ...], method: str, url: str, **kwargs: Any) -> dict[str, int]:
    return {u: api.as_(u, method, url, **kwargs).status_code for u in users}


def assert_scoped_read(api: Api, url: str, **kwargs: Any) -> None:
    """Own area and its supervisors see it; neighbours and other districts get 404; the auditor 403."""
    assert statuses(api, SEES_C1, "GET", url, **kwargs) == dict.fromkeys(SEES_C1, 200)
    assert statuses(api, BLIND_TO_C1, "GET", url, **kwargs) == dict.fromkeys(BLIND_TO_C1, 404)
    assert api.as_("auditor", "GET", url, **kwargs).status_code == 403


# --- landlords ------------------------------------------------------------------------------------------


def test_register_landlord_with_dwelling(api: Api, world: World, engine: Engine) -> None:
    home = free_dwelling(engine, world)
    before = dwelling_version(engine, home)
    raw_id = id_number("19700101", male=True).lower().replace("x", "x")
    r = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(id_number=raw_id, phone="+86 137 0000 1111",
                                                                 dwelling_id=home))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id_number"] == raw_id.upper() and body["phone"] == "13700001111"
    assert body["district_code"] == world.community("c1")["district_code"]
    assert [d["id"] for d in body["dwellings"]] == [home]
    assert body["dwellings"][0]["landlord_id"] == body["id"]
    assert dwelling_version(engine, home) == before + 1


def test_landlord_id_unique_city_wide(api: Api, world: World, engine: Engine) -> None:
    number = id_number("19650505", male=True)
    first = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(id_number=number,
                                                                     dwelling_id=free_dwelling(engine, world)))
    assert first.status_code == 201
    # In the caller's area the existing record is named, so it can be attached instead.
    mate = api.as_("sup_street", "POST", LANDLORDS, json=landlord_body(id_number=number))
    assert mate.status_code == 409 and mate.json()["code"] == "landlord_exists"
    assert mate.json()["details"] == {"landlord_id": first.json()["id"]}
    # Outside it, nothing is named: no id, no details.
    again = api.as_("worker3", "POST", LANDLORDS, json=landlord_body(id_number=number, name="王建"))
    assert again.status_code == 409
    assert again.json()["code"] == "landlord_registered_elsewhere"
    assert again.json()["details"] is None and first.json()["id"] not in again.text
    assert len(rows(engine, "SELECT id FROM landlords WHERE id_number = :n", n=number)) == 1


def test_landlord_registered_elsewhere_is_linked_only_with_dwelling_and_name(
        api: Api, world: World, engine: Engine) -> None:
    number = id_number("19660606", male=True)
    first = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(
        id_number=number, dwelling_id=free_dwelling(engine, world))).json()
    theirs = free_dwelling(engine, world, "c3")
    wrong_name = api.as_("worker3", "POST", LANDLORDS,
                         json=landlord_body(id_number=number, name="王建", dwelling_id=theirs))
    assert wrong_name.status_code == 409 and wrong_name.json()["code"] == "landlord_registered_elsewhere"
    no_dwelling = api.as_("worker3", "POST", LANDLORDS, json=landlord_body(id_number=number))
    assert no_dwelling.status_code == 409 and no_dwelling.json()["code"] == "landlord_registered_elsewhere"
    assert rows(engine, "SELECT landlord_id FROM dwellings WHERE id = :d", d=theirs)[0]["landlord_id"] is None
    assert api.as_("worker3", "GET", f"{LANDLORDS}/{first['id']}").status_code == 404
    # The worker met the landlord: same ID number and name (spacing and width aside), with their dwelling.
    linked = api.as_("worker3", "POST", LANDLORDS,
                     json=landlord_body(id_number=number, name=" 王 建国", dwelling_id=theirs))
    assert linked.status_code == 200, linked.text
    assert linked.json()["id"] == first["id"] and [d["id"] for d in linked.json()["dwellings"]] == [theirs]
    assert rows(engine, "SELECT landlord_id FROM dwellings WHERE id = :d", d=theirs)[0]["landlord_id"] == first["id"]
    assert len(rows(engine, "SELECT id FROM landlords WHERE id_number = :n", n=number)) == 1
    assert len(audit_events(engine, "landlord.link", first["id"])) == 1
    # Each side sees only its own dwellings of that landlord.
    mine = api.as_("worker1", "GET", f"{LANDLORDS}/{first['id']}").json()
    assert theirs not in [d["id"] for d in mine["dwellings"]]


def test_landlord_update_to_id_outside_scope_names_nothing(api: Api, world: World, engine: Engine) -> None:
    theirs = api.as_("worker3", "POST", LANDLORDS, json=landlord_body(
        dwelling_id=free_dwelling(engine, world, "c3"))).json()
    mine = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(dwelling_id=free_dwelling(engine, world))).json()
    clash = api.as_("worker1", "PATCH", f"{LANDLORDS}/{mine['id']}",
                    json={"version": 1, "id_number": theirs["id_number"]})
    assert clash.status_code == 409 and clash.json()["code"] == "landlord_registered_elsewhere"
    assert theirs["id"] not in clash.text


@pytest.mark.parametrize(("over", "code"), [
    ({"id_number": "41160219700101001"}, "id_format"),
    ({"id_number": "411602197013010011"}, "id_birth_date"),
    ({"phone": "12345"}, "phone_format"),
    ({"name": ""}, "validation_error"),
    ({"name": "x" * 51}, "validation_error"),
    ({"owner": True}, "validation_error"),
    ({"name": "王\x00"}, "nul_byte"),
])
def test_landlord_input_errors(api: Api, over: dict[str, Any], code: str) -> None:
    r = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(**over))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code


def test_landlord_bad_check_digit(api: Api) -> None:
    good = id_number("19700101", male=True)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    r = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(id_number=bad))
    assert r.status_code == 422 and r.json()["code"] == "id_check_digit"


def test_landlord_scope_follows_dwellings(api: Api, world: World, engine: Engine) -> None:
    created = api.as_("worker1", "POST", LANDLORDS,
                      json=landlord_body(dwelling_id=free_dwelling(engine, world))).json()
    url = f"{LANDLORDS}/{created['id']}"
    assert_scoped_read(api, url)
    assert api.as_("worker1", "PATCH", url, json={"version": 1, "name": "王"}).status_code == 200
    for user in BLIND_TO_C1:
        assert api.as_(user, "PATCH", url, json={"version": 2, "name": "王二"}).status_code == 404
    assert api.as_("auditor", "PATCH", url, json={"version": 2, "name": "王二"}).status_code == 403
    listed = {u: {i["id"] for i in api.as_(u, "GET", LANDLORDS, params={"limit": 200, "q": "王"}).json()["items"]}
              for u in ("worker1", "worker2", "worker3", "admin")}
    assert created["id"] in listed["worker1"] and created["id"] in listed["admin"]
    assert created["id"] not in listed["worker2"] and created["id"] not in listed["worker3"]


def test_landlord_list_is_masked_and_id_search_audited(api: Api, world: World, engine: Engine) -> None:
    number = id_number("19720304", male=True)
    created = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(id_number=number,
                                                                       dwelling_id=free_dwelling(engine, world)))
    assert created.status_code == 201
    page = api.as_("worker1", "GET", LANDLORDS, params={"id_number": number}).json()
    assert page["total"] == 1
    item = page["items"][0]
    assert item["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert item["phone_masked"] == "137****1111"
    assert "id_number" not in item and "phone" not in item
    search = audit_events(engine, "landlord.search")
    assert search and search[-1]["purpose"] == "lookup" and number not in (search[-1]["detail"] or "")


def test_landlord_full_read_is_audited(api: Api, world: World, engine: Engine) -> None:
    created = api.as_("worker1", "POST", LANDLORDS,
                      json=landlord_body(dwelling_id=free_dwelling(engine, world))).json()
    r = api.as_("worker1", "GET", f"{LANDLORDS}/{created['id']}", params={"purpose": "tenant_report"})
    assert r.status_code == 200 and r.json()["id_number"] == created["id_number"]
    events = audit_events(engine, "landlord.read.identity", created["id"])
    assert len(events) == 1
    assert events[0]["purpose"] == "tenant_report" and events[0]["fields"] == "id_number,phone"
    assert events[0]["actor_id"] == world.users["worker1"]
    assert created["id_number"] not in all_audit_text(engine) and "王建国" not in all_audit_text(engine)


def test_landlord_update_version_and_uniqueness(api: Api, world: World, engine: Engine) -> None:
    a = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(dwelling_id=free_dwelling(engine, world))).json()
    b = api.as_("worker1", "POST", LANDLORDS,
                json=landlord_body(dwelling_id=free_dwelling(engine, world, skip=1))).json()
    url = f"{LANDLORDS}/{a['id']}"
    ok = api.as_("worker1", "PATCH", url, json={"version": 1, "phone": "0086-138 0000 2222"})
    assert ok.status_code == 200 and ok.json()["phone"] == "13800002222" and ok.json()["version"] == 2
    stale = api.as_("worker1", "PATCH", url, json={"version": 1, "name": "x"})
    assert stale.status_code == 409 and stale.json()["details"] == {"current_version": 2}
    clash = api.as_("worker1", "PATCH", url, json={"version": 2, "id_number": b["id_number"]})
    assert clash.status_code == 409 and clash.json()["code"] == "landlord_exists"
    cleared = api.as_("worker1", "PATCH", url, json={"version": 2, "name": None})
    assert cleared.status_code == 422 and cleared.json()["code"] == "field_required"
    assert api.as_("worker1", "PATCH", f"{LANDLORDS}/{'0' * 32}", json={"version": 1}).status_code == 404


def test_unattached_landlord_district_and_visibility(api: Api, world: World) -> None:
    created = api.as_("worker1", "POST", LANDLORDS, json=landlord_body())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["district_code"] == world.community("c1")["district_code"] and body["dwellings"] == []
    url = f"{LANDLORDS}/{body['id']}"
    # Visible district-wide until attached (so the team can attach them), never in another district.
    assert api.as_("worker1", "GET", url).status_code == 200
    assert api.as_("worker2", "GET", url).status_code == 200
    assert api.as_("worker3", "GET", url).status_code == 404
    assert api.as_("sup_other", "GET", url).status_code == 404
    # A city-wide account must name a dwelling: it has no district of its own.
    admin = api.as_("admin", "POST", LANDLORDS, json=landlord_body())
    assert admin.status_code == 422 and admin.json()["code"] == "landlord_dwelling_required"


def test_attach_detach_landlord(api: Api, world: World, engine: Engine) -> None:
    # Registered by a street colleague in a neighbouring community, without a dwelling yet: visible district-wide.
    other = api.as_("worker2", "POST", LANDLORDS, json=landlord_body()).json()
    home = free_dwelling(engine, world)
    url = f"{API}/dwellings/{home}/landlord"
    version = dwelling_version(engine, home)
    attached = api.as_("worker1", "PUT", url, json={"version": version, "landlord_id": other["id"]})
    assert attached.status_code == 200, attached.text
    assert attached.json()["landlord_id"] == other["id"] and attached.json()["version"] == version + 1
    # Scope follows the dwelling now: the neighbour no longer sees the landlord.
    got = api.as_("worker1", "GET", f"{LANDLORDS}/{other['id']}").json()
    assert [d["id"] for d in got["dwellings"]] == [home]
    assert api.as_("worker2", "GET", f"{LANDLORDS}/{other['id']}").status_code == 404
    stale = api.as_("worker1", "PUT", url, json={"version": version, "landlord_id": None})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    detached = api.as_("worker1", "PUT", url, json={"version": version + 1, "landlord_id": None})
    assert detached.status_code == 200 and detached.json()["landlord_id"] is None
    assert rows(engine, "SELECT landlord_id FROM dwellings WHERE id = :d", d=home)[0]["landlord_id"] is None


def test_attach_landlord_outside_scope_is_not_found(api: Api, world: World, engine: Engine) -> None:
    """A landlord of another district cannot be attached by id, and so cannot be read or edited after."""
    theirs = api.as_("worker3", "POST", LANDLORDS, json=landlord_body(
        dwelling_id=free_dwelling(engine, world, "c3"))).json()
    unattached = api.as_("worker3", "POST", LANDLORDS, json=landlord_body()).json()
    home = free_dwelling(engine, world)
    url = f"{API}/dwellings/{home}/landlord"
    for landlord in (theirs, unattached):
        r = api.as_("worker1", "PUT", url, json={"version": dwelling_version(engine, home),
                                                 "landlord_id": landlord["id"]})
        assert r.status_code == 404 and r.json()["details"] == {"field": "landlord_id"}
        assert api.as_("worker1", "GET", f"{LANDLORDS}/{landlord['id']}").status_code == 404
        assert api.as_("worker1", "PATCH", f"{LANDLORDS}/{landlord['id']}",
                       json={"version": 1, "name": "x"}).status_code == 404
    assert rows(engine, "SELECT landlord_id FROM dwellings WHERE id = :d", d=home)[0]["landlord_id"] is None


def test_attach_errors_and_scope(api: Api, world: World, engine: Engine) -> None:
    landlord = api.as_("worker1", "POST", LANDLORDS, json=landlord_body()).json()
    home = free_dwelling(engine, world)
    url = f"{API}/dwellings/{home}/landlord"
    body = {"version": dwelling_version(engine, home), "landlord_id": landlord["id"]}
    for user in BLIND_TO_C1:
        assert api.as_(user, "PUT", url, json=body).status_code == 404
    assert api.as_("auditor", "PUT", url, json=body).status_code == 403
    unknown = api.as_("worker1", "PUT", url, json={**body, "landlord_id": "f" * 32})
    assert unknown.status_code == 404 and unknown.json()["details"] == {"field": "landlord_id"}
    assert api.as_("worker1", "PUT", url, json={"version": body["version"]}).status_code == 422
    assert api.as_("worker1", "PUT", f"{API}/dwellings/{'0' * 32}/landlord", json=body).status_code == 404
    for user in BLIND_TO_C1:
        outside = api.as_(user, "POST", LANDLORDS, json=landlord_body(dwelling_id=free_dwelling(engine, world, skip=1)))
        assert outside.status_code == 404 and outside.json()["details"] == {"field": "dwelling_id"}
    assert api.as_("auditor", "POST", LANDLORDS, json=landlord_body()).status_code == 403
    # Registering a landlord onto a dwelling that already has one: change it explicitly instead.
    assert api.as_("sup_street", "PUT", url, json=body).status_code == 200
    taken = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(dwelling_id=home))
    assert taken.status_code == 409 and taken.json()["code"] == "dwelling_has_landlord"


# --- tenancies ---------------------------------------------------------------------------------------


def test_tenancy_history_and_current_tenants(api: Api, world: World) -> None:
    first, second = dwelling_id(world, "c1", 3), dwelling_id(world, "c1", 4)
    r = register_resident(api, "worker1", dwelling_id(world, "c1", 3),
                          **resident_fields(arrival_date=(TODAY - timedelta(days=60)).isoformat()))
    moved = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/move",
                    json={"version": r["version"], "dwelling_id": second, "moved_on": TODAY.isoformat(),
                          "source": "landlord"})
    assert moved.status_code == 200, moved.text
    history = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}/tenancies").json()
    assert history["total"] == 2
    newest, oldest = history["items"]
    assert (newest["dwelling_id"], newest["current"], newest["source"], newest["move_out"]) == \
        (second, True, "landlord", None)
    assert (oldest["dwelling_id"], oldest["current"], oldest["move_out"]) == (first, False, TODAY.isoformat())
    assert newest["address"] and newest["community_id"] == world.community("c1")["id"]
    tenants = api.as_("worker1", "GET", f"{API}/dwellings/{second}/tenants", params={"limit": 200}).json()
    mine = [t for t in tenants["items"] if t["resident"]["id"] == r["id"]]
    assert len(mine) == 1 and mine[0]["source"] == "landlord"
    assert mine[0]["resident"]["id_number_masked"].count("*") == 10 and "id_number" not in mine[0]["resident"]
    before = api.as_("worker1", "GET", f"{API}/dwellings/{first}/tenants", params={"limit": 200}).json()
    assert r["id"] not in {t["resident"]["id"] for t in before["items"]}
    assert_scoped_read(api, f"{RESIDENTS}/{r['id']}/tenancies")
    assert_scoped_read(api, f"{API}/dwellings/{second}/tenants")
    assert api.as_("worker1", "GET", f"{API}/dwellings/{'0' * 32}/tenants").status_code == 404


# --- 婚育证明 -----------------------------------------------------------------------------------------------


def test_fp_documents_create_list_audited(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    created = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc())
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["checked_by"] == world.users["worker1"] and doc["checked_at"] and doc["version"] == 1
    url = f"{RESIDENTS}/{r['id']}/fp-documents"
    listed = api.as_("worker1", "GET", url, params={"purpose": "verification"})
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["items"]] == [doc["id"]]
    events = audit_events(engine, "resident.read.fp_document", r["id"])
    assert len(events) == 1
    assert (events[0]["purpose"], events[0]["target_type"], events[0]["actor_role"]) == \
        ("verification", "residents", "worker")
    assert_scoped_read(api, url)
    assert len(audit_events(engine, "resident.read.fp_document", r["id"])) == 1 + len(SEES_C1)
    assert doc["number"] not in all_audit_text(engine)
    for user in BLIND_TO_C1:
        assert api.as_(user, "POST", url, json=valid_doc()).status_code == 404
    assert api.as_("auditor", "POST", url, json=valid_doc()).status_code == 403


@pytest.mark.parametrize(("over", "code"), [
    ({"issued_on": "2025-05-01", "expires_on": "2025-04-01", "status": "expired"}, "fp_dates_order"),
    ({"issued_on": (TODAY + timedelta(days=5)).isoformat()}, "date_out_of_range"),
    ({"expires_on": (TODAY - timedelta(days=1)).isoformat()}, "fp_status_expired"),
    ({"expires_on": (TODAY - timedelta(days=1)).isoformat(), "status": "temporary"}, "fp_status_expired"),
    ({"issuing_division": "41160"}, "validation_error"),
    ({"issuing_division": "4116021"}, "validation_error"),
    ({"status": "lost"}, "validation_error"),
    ({"number": "x" * 41}, "validation_error"),
    ({"checked_by": "someone"}, "validation_error"),
])
def test_fp_document_rules(api: Api, world: World, over: dict[str, Any], code: str) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    response = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc(**over))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_fp_document_patch(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    doc = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc()).json()
    url = f"{API}/fp-documents/{doc['id']}"
    renumbered = api.as_("worker1", "PATCH", url, json={"version": 1, "number": "豫周婚育2024-000999"})
    assert renumbered.status_code == 200, renumbered.text
    assert renumbered.json()["checked_at"] == doc["checked_at"]  # not a new check: status unchanged
    rechecked = api.as_("sup_street", "PATCH", url, json={"version": 2, "status": "nonconforming"})
    assert rechecked.status_code == 200
    body = rechecked.json()
    assert body["status"] == "nonconforming" and body["checked_by"] == world.users["sup_street"]
    assert body["checked_at"] > doc["checked_at"] and body["version"] == 3
    stale = api.as_("worker1", "PATCH", url, json={"version": 2, "status": "valid"})
    assert stale.status_code == 409 and stale.json()["details"] == {"current_version": 3}
    order = api.as_("worker1", "PATCH", url, json={"version": 3, "expires_on": "2000-01-01"})
    assert order.status_code == 422 and order.json()["code"] == "fp_dates_order"
    cleared = api.as_("worker1", "PATCH", url, json={"version": 3, "status": None})
    assert cleared.status_code == 422 and cleared.json()["code"] == "field_required"
    for user in BLIND_TO_C1:
        assert api.as_(user, "PATCH", url, json={"version": 3, "status": "valid"}).status_code == 404
    assert api.as_("auditor", "PATCH", url, json={"version": 3, "status": "valid"}).status_code == 403
    assert api.as_("worker1", "PATCH", f"{API}/fp-documents/{'0' * 32}", json={"version": 1}).status_code == 404
    assert rows(engine, "SELECT status FROM fp_documents WHERE id = :d", d=doc["id"])[0]["status"] == "nonconforming"


def test_no_fp_or_health_writes_for_people_who_left(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    doc = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc()).json()
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/leave",
                   json={"version": r["version"], "left_on": TODAY.isoformat(), "reason": "left_city"})
    assert left.status_code == 200, left.text
    for method, url, body in (
        ("POST", f"{RESIDENTS}/{r['id']}/fp-documents", valid_doc()),
        ("PATCH", f"{API}/fp-documents/{doc['id']}", {"version": 1, "status": "expired"}),
    ):
        response = api.as_("worker1", method, url, json=body)
        assert response.status_code == 409 and response.json()["code"] == "resident_not_active"
    health = put_health(api, r["id"])
    assert health.status_code == 409 and health.json()["code"] == "resident_not_active"
    # Reading stays possible (the record is still held).
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}/fp-documents").status_code == 200


# --- reproductive health ----------------------------------------------------------------------------------


def test_health_purpose_required(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    url = f"{RESIDENTS}/{r['id']}/health"
    assert api.as_("worker1", "GET", url).status_code == 422
    assert api.as_("worker1", "GET", url, params={"purpose": "curiosity"}).status_code == 422
    assert api.as_("worker1", "PUT", url, json={"version": 0}).status_code == 422
    assert put_health(api, r["id"], purpose="marketing").status_code == 422


def test_health_read_write_audited(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    url = f"{RESIDENTS}/{r['id']}/health"
    empty = api.as_("worker1", "GET", url, params={"purpose": "visit"})
    assert empty.status_code == 200
    assert (empty.json()["recorded"], empty.json()["version"], empty.json()["children"]) == (False, 0, [])
    written = put_health(api, r["id"], purpose="service_delivery",
                         children=[{"birth_date": "2019-06-01", "sex": "F"}])
    assert written.status_code == 200, written.text
    assert written.json()["version"] == 1 and written.json()["updated_by"] == world.users["worker1"]
    read = api.as_("sup_street", "GET", url, params={"purpose": "key_person_review"})
    assert read.status_code == 200 and read.json()["contraception"] == "iud"
    reads = audit_events(engine, "resident.read.health", r["id"])
    assert [(e["purpose"], e["actor_role"], e["target_type"]) for e in reads] == \
        [("visit", "worker", "residents"), ("key_person_review", "supervisor", "residents")]
    writes = audit_events(engine, "resident.write.health", r["id"])
    assert len(writes) == 1 and writes[0]["purpose"] == "service_delivery"
    assert set(writes[0]["fields"].split(",")) == {"contraception", "contraception_since", "pregnancy", "children"}
    text = all_audit_text(engine)
    assert "iud" not in text and "2019-06-01" not in text and "not_pregnant" not in text
    again = put_health(api, r["id"], version=1, contraception="implant",
                       children=[{"birth_date": "2019-06-01", "sex": "F"}])
    assert again.status_code == 200 and again.json()["version"] == 2
    assert audit_events(engine, "resident.write.health", r["id"])[-1]["fields"] == "contraception"


def test_health_versions(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    assert put_health(api, r["id"]).status_code == 200
    create_again = put_health(api, r["id"], version=0)
    assert create_again.status_code == 409 and create_again.json()["details"] == {"current_version": 1}
    stale = put_health(api, r["id"], version=5)
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    other = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    missing = put_health(api, other["id"], version=1)
    assert missing.status_code == 409 and missing.json()["details"] == {"current_version": 0}


def test_health_children_under_14(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19850101"))
    children = [
        {"birth_date": years_ago(14).isoformat(), "sex": "M"},  # 14 today: no longer under 14
        {"birth_date": (years_ago(14) + timedelta(days=1)).isoformat(), "sex": "F"},  # 14 tomorrow
        {"birth_date": years_ago(3).isoformat(), "sex": "F"},
        {"birth_date": "2005-07-01", "sex": "M"},
    ]
    response = put_health(api, r["id"], purpose="visit", children=children)
    assert response.status_code == 200, response.text
    got = {c["birth_date"]: c["under_14"] for c in response.json()["children"]}
    assert got == {years_ago(14).isoformat(): False, (years_ago(14) + timedelta(days=1)).isoformat(): True,
                   years_ago(3).isoformat(): True, "2005-07-01": False}
    assert response.json()["children_under_14"] == 2
    # Ordered by birth date, as stored.
    assert [c["birth_date"] for c in response.json()["children"]] == sorted(got)


@pytest.mark.parametrize(("over", "code"), [
    ({"contraception_since": (TODAY + timedelta(days=3)).isoformat()}, "date_out_of_range"),
    ({"pregnancy_noted_on": (TODAY + timedelta(days=3)).isoformat()}, "date_out_of_range"),
    ({"children": [{"birth_date": (TODAY + timedelta(days=3)).isoformat(), "sex": "F"}]}, "date_out_of_range"),
    ({"children": [{"birth_date": "1980-01-01", "sex": "F"}]}, "child_birth_date"),
    ({"children": [{"birth_date": "2015-01-01", "sex": "F", "name": "小明"}]}, "validation_error"),
    ({"children": [{"birth_date": "2015-01-01", "sex": "F"}] * 21}, "validation_error"),
    ({"contraception": "prayer"}, "validation_error"),
    ({"pregnancy": "maybe"}, "validation_error"),
    ({"version": -1}, "validation_error"),
    ({"diagnosis": "x"}, "validation_error"),
])
def test_health_rules(api: Api, world: World, over: dict[str, Any], code: str) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    response = put_health(api, r["id"], **over)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_pregnancy_only_for_women(api: Api, world: World) -> None:
    man = register_resident(api, "worker1", dwelling_id(world), **resident_fields(male=True, birth="19880808"))
    response = put_health(api, man["id"], pregnancy="pregnant", contraception="condom")
    assert response.status_code == 422 and response.json()["code"] == "pregnancy_sex"
    assert put_health(api, man["id"], pregnancy="not_pregnant", contraception="condom").status_code == 200


def test_health_scope(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    assert put_health(api, r["id"]).status_code == 200
    url = f"{RESIDENTS}/{r['id']}/health"
    assert_scoped_read(api, url, params={"purpose": "visit"})
    for user in BLIND_TO_C1:
        assert put_health(api, r["id"], user=user, version=1).status_code == 404
    assert put_health(api, r["id"], user="auditor", version=1).status_code == 403
    assert put_health(api, r["id"], user="admin", version=1).status_code == 200
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{'0' * 32}/health", params={"purpose": "visit"}).status_code == 404


# --- key persons (derived) --------------------------------------------------------------------------------


def settled_woman(api: Api, world: World, **over: Any) -> dict[str, Any]:
    """A woman of 30-something with a valid 婚育证明 and an IUD: not a key person."""
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19920202", **over))
    assert api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc()).status_code == 201
    response = put_health(api, r["id"])
    assert response.status_code == 200, response.text
    assert response.json()["key_person"] is False
    return r


def test_key_person_woman_with_iud_and_valid_doc_is_not_key(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19920202"))
    assert key_person(api, r["id"]) is True  # nothing known yet: a visit is due
    assert api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc()).status_code == 201
    assert key_person(api, r["id"]) is True  # no health record yet
    assert put_health(api, r["id"]).json()["key_person"] is False
    assert key_person(api, r["id"]) is False


@pytest.mark.parametrize("change", [
    {"pregnancy": "pregnant", "pregnancy_noted_on": TODAY.isoformat()},
    {"children": [{"birth_date": date(TODAY.year, 1, 1).isoformat(), "sex": "F"}]},
    {"contraception": "condom"},
    {"contraception": None},
])
def test_key_person_health_reasons(api: Api, world: World, change: dict[str, Any]) -> None:
    r = settled_woman(api, world)
    response = put_health(api, r["id"], version=1, **change)
    assert response.status_code == 200, response.text
    assert response.json()["key_person"] is True and key_person(api, r["id"]) is True


def test_key_person_without_valid_document(api: Api, world: World) -> None:
    r = settled_woman(api, world)
    doc = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}/fp-documents").json()["items"][0]
    response = api.as_("worker1", "PATCH", f"{API}/fp-documents/{doc['id']}",
                       json={"version": doc["version"], "status": "expired"})
    assert response.status_code == 200
    assert key_person(api, r["id"]) is True
    back = api.as_("worker1", "PATCH", f"{API}/fp-documents/{doc['id']}", json={"version": 2, "status": "valid"})
    assert back.status_code == 200 and key_person(api, r["id"]) is False


def test_key_person_never_men_or_women_over_49(api: Api, world: World) -> None:
    man = register_resident(api, "worker1", dwelling_id(world), **resident_fields(male=True, birth="19900101"))
    assert key_person(api, man["id"]) is False
    assert put_health(api, man["id"], contraception="none", pregnancy="unknown").json()["key_person"] is False
    fifty = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth=years_ago(50, days=1)))
    assert key_person(api, fifty["id"]) is False
    assert put_health(api, fifty["id"], contraception="none").json()["key_person"] is False
    forty_nine = register_resident(api, "worker1", dwelling_id(world),
                                   **resident_fields(birth=years_ago(50) + timedelta(days=1)))
    assert key_person(api, forty_nine["id"]) is True


def test_seeded_records_read_back(api: Api, world: World, engine: Engine) -> None:
    """Records the demo generator wrote (health, 婚育证明, tenancies) read through the same shapes."""
    seeded = rows(engine, "SELECT r.id FROM residents r JOIN health_records h ON h.resident_id = r.id "
                          "WHERE r.community_id = :c AND h.children <> '[]' ORDER BY r.id LIMIT 3",
                  c=world.community("c1")["id"])
    assert seeded
    for row in seeded:
        for url, params in ((f"{RESIDENTS}/{row['id']}/health", {"purpose": "visit"}),
                            (f"{RESIDENTS}/{row['id']}/fp-documents", {}),
                            (f"{RESIDENTS}/{row['id']}/tenancies", {}),
                            (f"{RESIDENTS}/{row['id']}/dossier", {})):
            response = api.as_("worker1", "GET", url, params=params)
            assert response.status_code == 200, (url, response.text)
        health = api.as_("worker1", "GET", f"{RESIDENTS}/{row['id']}/health", params={"purpose": "visit"}).json()
        assert health["recorded"] is True and health["children"]
