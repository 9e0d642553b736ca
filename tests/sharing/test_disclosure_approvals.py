"""The approval queue: while a partner kind's profile requires a supervisor's approval of each disclosure, its
pulls are held (202), a supervisor of the area approves or denies, and the partner collects an approved answer
once, through the route's own service (the same ledger entries and audit events as a direct pull)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.sharing.landlord_helpers import confirmed_landlord, free_dwellings, move_in_body
from tests.sharing.outflow_helpers import resident as hukou_resident
from tests.sharing.partner_helpers import V1, bearer, make_client
from tests.sharing.police_helpers import UPLOAD, send, to_csv

LOOKUP, FEED = V1 + "/partner/police/lookup", V1 + "/partner/police/feed"
QUEUE, MINE = V1 + "/sharing/disclosure-requests", V1 + "/partner/disclosure-requests"


def require_approval(api: Api, kind: str, required: bool = True) -> int:
    """The kind's profile, with approval required (or not): its new version."""
    profile = ok(api.as_("admin", "GET", f"{V1}/sharing/profiles/{kind}"))
    body = {key: profile[key] for key in ("version", "field_groups", "legal_basis", "purpose", "retention_days")}
    return int(ok(api.as_("admin", "PUT", f"{V1}/sharing/profiles/{kind}",
                          json={**body, "approval_required": required}))["version"])


def station(api: Api, world: World, client_id: str = "station-1", **form: str) -> dict[str, str]:
    client = make_client(api, "police", client_id, division_ids=[world.community("c1")["parent_id"]])
    return bearer(api, client, **form)


def held(response: Any) -> str:
    body = ok(response, 202)
    assert body["state"] == "pending" and set(body) >= {"request_id", "route", "expires_at"}, body
    assert not {"person", "items", "answer"} & set(body)
    return str(body["request_id"])


def stored(engine: Engine, request_id: str) -> dict[str, Any]:
    return rows(engine, "SELECT state, params, version, decided_by FROM disclosure_requests WHERE id = :i",
                i=request_id)[0]


def test_a_held_lookup_is_approved_then_collected_once(api: Api, world: World, engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="301"),
                             name="待批")
    headers = station(api, world)
    require_approval(api, "police")
    request_id = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    assert rows(engine, "SELECT id FROM disclosures") == []
    assert here["id_number"] in stored(engine, request_id)["params"]  # kept to answer later
    assert ok(api.client.get(f"{MINE}/{request_id}", headers=headers))["state"] == "pending"
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=headers), 409, "not_approved")

    [item] = ok(api.as_("sup_street", "GET", QUEUE, params={"state": "pending"}))["items"]
    assert item["id"] == request_id and item["asked"] == {"id_number": here["id_number"]}
    assert item["route"] == "police_lookup" and item["partner_name"] == "station-1"
    assert audit_events(engine, "sharing.disclosure_requests.read")
    approved = ok(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    assert approved["state"] == "approved" and approved["decided_by"] == world.users["sup_street"]
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 2}), 409,
                 "invalid_transition")
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/deny", json={"version": 2, "reason": "x"}),
                 409, "invalid_transition")

    answer = ok(api.client.post(f"{MINE}/{request_id}/collect", headers=headers))
    assert answer["route"] == "police_lookup" and answer["answer"]["person"]["id"] == here["id"]
    assert answer["answer"]["disclosure"]["legal_basis"] == "《居住证暂行条例》"
    assert rows(engine, "SELECT resident_id, partner_kind FROM disclosures") == [
        {"resident_id": here["id"], "partner_kind": "police"}]
    dossier = ok(api.as_("worker1", "GET", f"{V1}/residents/{here['id']}/dossier"))
    assert [d["partner_kind"] for d in dossier["disclosures"]] == ["police"]
    assert len(audit_events(engine, "sharing.police_lookup.read")) == 1  # as a direct look-up
    assert stored(engine, request_id)["state"] == "collected" and stored(engine, request_id)["params"] == "{}"
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=headers), 409, "already_collected")
    assert len(rows(engine, "SELECT id FROM disclosures")) == 1
    for action in ("held", "approved", "collected"):
        assert len(audit_events(engine, f"sharing.disclosure_request.{action}", request_id)) == 1, action
    assert here["id_number"] not in all_audit_text(engine)


def test_a_denied_request_discloses_nothing(api: Api, world: World, engine: Engine) -> None:
    register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="303"))
    headers = station(api, world)
    require_approval(api, "police")
    first = held(api.client.post(FEED, json={"limit": 50}, headers=headers))
    second = held(api.client.post(FEED, json={}, headers=headers))
    assert ok(api.as_("sup_street", "GET", f"{QUEUE}/{first}"))["asked"] == {"cursor": None, "limit": 50}
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{second}/approve", json={"version": 7}), 409,
                 "stale_version")
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{first}/deny", json={"version": 1, "reason": ""}), 422)
    denied = ok(api.as_("sup_street", "POST", f"{QUEUE}/{first}/deny", json={"version": 1, "reason": "无依据"}))
    assert denied["state"] == "denied" and denied["reason"] == "无依据" and denied["asked"] == {}
    assert stored(engine, first)["params"] == "{}"
    mine = ok(api.client.get(f"{MINE}/{first}", headers=headers))
    assert mine["state"] == "denied" and "reason" not in mine  # the reason is staff's
    assert_error(api.client.post(f"{MINE}/{first}/collect", headers=headers), 409, "not_approved")
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{first}/approve", json={"version": 2}), 409,
                 "invalid_transition")
    assert rows(engine, "SELECT id FROM disclosures") == []
    assert len(audit_events(engine, "sharing.disclosure_request.denied", first)) == 1
    assert [i["id"] for i in ok(api.as_("sup_street", "GET", QUEUE, params={"state": "denied"}))["items"]] == [first]


def test_requests_expire(api: Api, world: World, engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="305"))
    headers = station(api, world)
    require_approval(api, "police")
    pending = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    approved = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    ok(api.as_("sup_street", "POST", f"{QUEUE}/{approved}/approve", json={"version": 1}))
    execute(engine, "UPDATE disclosure_requests SET expires_at = created_at WHERE id IN (:a, :b)", a=pending,
            b=approved)
    listed = ok(api.as_("sup_street", "GET", QUEUE, params={"state": "expired"}))["items"]
    assert {i["id"] for i in listed} == {pending, approved}  # derived before any write
    assert ok(api.as_("sup_street", "GET", QUEUE, params={"state": "pending"}))["items"] == []
    assert ok(api.client.get(f"{MINE}/{approved}", headers=headers))["state"] == "expired"
    assert_error(api.client.post(f"{MINE}/{approved}/collect", headers=headers), 409, "request_expired")
    assert_error(api.as_("sup_street", "POST", f"{QUEUE}/{pending}/approve", json={"version": 1}), 409,
                 "request_expired")
    for request_id in (pending, approved):  # the ID number is gone
        assert stored(engine, request_id)["state"] == "expired" and stored(engine, request_id)["params"] == "{}"
    assert rows(engine, "SELECT id FROM disclosures") == []
    assert audit_events(engine, "sharing.disclosure_request.expired")


def test_who_sees_and_decides(api: Api, world: World, engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="307"))
    headers = station(api, world)
    other = station(api, world, "station-2")
    require_approval(api, "police")
    request_id = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    # Another partner: 404 on its state and its collection, as for an id that does not exist.
    assert_error(api.client.get(f"{MINE}/{request_id}", headers=other), 404, "not_found")
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=other), 404, "not_found")
    assert_error(api.client.get(f"{MINE}/{'0' * 32}", headers=headers), 404, "not_found")
    # A supervisor of another district: 404, and the list shows nothing of it.
    assert_error(api.as_("sup_other", "GET", f"{QUEUE}/{request_id}"), 404, "not_found")
    assert_error(api.as_("sup_other", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}), 404)
    assert ok(api.as_("sup_other", "GET", QUEUE))["items"] == []
    # Workers: 403; auditors read, never decide; staff never reach the partner side.
    for call in (("GET", QUEUE, None), ("GET", f"{QUEUE}/{request_id}", None),
                 ("POST", f"{QUEUE}/{request_id}/approve", {"version": 1})):
        assert_error(api.as_("worker1", call[0], call[1], json=call[2]), 403, "forbidden")
    assert [i["id"] for i in ok(api.as_("auditor", "GET", QUEUE))["items"]] == [request_id]
    assert_error(api.as_("auditor", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}), 403)
    assert_error(api.as_("auditor", "POST", f"{QUEUE}/{request_id}/deny", json={"version": 1, "reason": "x"}), 403)
    assert_error(api.as_("sup_street", "POST", f"{MINE}/{request_id}/collect"), 403, "forbidden")
    assert stored(engine, request_id)["state"] == "pending"
    # The district's supervisor and an admin see it too; a partner cannot decide.
    assert [i["id"] for i in ok(api.as_("sup_district", "GET", QUEUE))["items"]] == [request_id]
    assert_error(api.client.post(f"{QUEUE}/{request_id}/approve", json={"version": 1}, headers=headers), 403)
    ok(api.as_("admin", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    # Approved, still another partner's: 404.
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=other), 404, "not_found")
    assert rows(engine, "SELECT id FROM disclosures") == []


def test_collect_needs_the_route_scope(api: Api, world: World, engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="309"))
    client = make_client(api, "police", "station-1", division_ids=[world.community("c1")["parent_id"]])
    require_approval(api, "police")
    request_id = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=bearer(api, client)))
    ok(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    narrow = bearer(api, client, scope="police:feed")
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=narrow), 403, "insufficient_scope")
    assert ok(api.client.get(f"{MINE}/{request_id}", headers=narrow))["state"] == "approved"
    assert ok(api.client.post(f"{MINE}/{request_id}/collect", headers=bearer(api, client)))["answer"]["person"]


def test_a_lookup_of_nobody_is_held_too_and_answers_404_once_approved(api: Api, world: World,
                                                                      engine: Engine) -> None:
    """Whether someone lives in the jurisdiction is itself disclosed only once approved."""
    headers = station(api, world)
    far = register_resident(api, "worker3", dwelling_id(world, "c3", 1), id_number=id_number(seq="311"))
    require_approval(api, "police")
    request_id = held(api.client.post(LOOKUP, json={"id_number": far["id_number"]}, headers=headers))
    ok(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=headers), 404, "not_found")
    assert stored(engine, request_id)["state"] == "collected" and stored(engine, request_id)["params"] == "{}"
    assert rows(engine, "SELECT id FROM disclosures") == []


def test_landlord_tenants_and_outflow_roster_are_held_and_collected(api: Api, world: World, engine: Engine) -> None:
    landlord = confirmed_landlord(api, world)
    tenant = register_resident(api, "worker1", free_dwellings(engine, world)[0]["id"], name="租客戊",
                               id_number=id_number(seq="313"), phone=None)
    ok(api.as_(landlord.phone, "POST", f"{V1}/partner/landlord/move-ins",
               json=move_in_body(landlord.dwelling_id, name="租客戊", id_number=tenant["id_number"])), 201)
    require_approval(api, "landlord")
    request_id = held(api.as_(landlord.phone, "GET", f"{V1}/partner/landlord/tenants", params={"limit": 10}))
    assert ok(api.as_("sup_street", "GET", f"{QUEUE}/{request_id}"))["asked"] == {"limit": 10, "offset": 0}
    ok(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    answer = ok(api.as_(landlord.phone, "POST", f"{MINE}/{request_id}/collect"))["answer"]
    assert [t["name"] for t in answer["items"]] == ["租客戊"] and answer["items"][0]["id_number_masked"]
    assert rows(engine, "SELECT partner_kind FROM disclosures WHERE resident_id = :r", r=tenant["id"]) == [
        {"partner_kind": "landlord"}]

    person = hukou_resident(api, world, "worker1", "c1", "315", "130102")
    city = bearer(api, make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301"))
    require_approval(api, "outflow_city")
    roster = held(api.client.post(V1 + "/partner/outflow/residents", json={}, headers=city))
    # An outflow city has no area: its requests are the whole city's, decided by admins.
    assert_error(api.as_("sup_street", "GET", f"{QUEUE}/{roster}"), 404)
    ok(api.as_("admin", "POST", f"{QUEUE}/{roster}/approve", json={"version": 1}))
    items = ok(api.client.post(f"{MINE}/{roster}/collect", headers=city))["answer"]["items"]
    assert [i["id"] for i in items] == [person["id"]]
    assert rows(engine, "SELECT partner_kind FROM disclosures WHERE resident_id = :r", r=person["id"]) == [
        {"partner_kind": "outflow_city"}]


def test_a_profile_without_approval_answers_directly_again(api: Api, world: World, engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="317"))
    headers = station(api, world)
    require_approval(api, "police")
    request_id = held(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    ok(api.as_("sup_street", "POST", f"{QUEUE}/{request_id}/approve", json={"version": 1}))
    require_approval(api, "police", False)
    assert ok(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))["person"]
    # Approved under another profile version: closed, never answered under this one.
    assert_error(api.client.post(f"{MINE}/{request_id}/collect", headers=headers), 409, "profile_changed")
    assert stored(engine, request_id)["state"] == "expired" and stored(engine, request_id)["params"] == "{}"
    assert len(rows(engine, "SELECT id FROM disclosures")) == 1


def test_routes_that_cannot_wait_stay_refused(api: Api, world: World, engine: Engine) -> None:
    headers = station(api, world)
    require_approval(api, "police")
    c1 = world.community("c1")
    data = to_csv([{"kind": "registration", "id_number": id_number(seq="319"), "name": "不等", "sex": "",
                    "community_code": c1["code"], "address": "x", "date": "2026-11-20"}])
    assert_error(send(api, headers, data, "wait-1"), 403, "disclosure_needs_approval")
    assert UPLOAD.endswith("/registrations")
    assert rows(engine, "SELECT id FROM disclosure_requests") == []
