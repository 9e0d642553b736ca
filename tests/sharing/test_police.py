"""Police stations: look-up by ID number and the arrivals/departures feed, inside the jurisdiction only, through
the police profile, rate-limited, every answer in the disclosure ledger."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.types import city_today
from app.sharing.partners.rules import encode_cursor
from app.sharing.police.service import CURSOR_TAG
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import audit_events, execute, rows
from tests.factories import dwelling_id, id_number, phone_visit_body, post_visit, register_resident
from tests.people.import_helpers import csv_file, upload
from tests.people.import_helpers import person as import_person
from tests.people.rec_helpers import put_health
from tests.sharing.partner_helpers import V1, Client, bearer, make_client

LOOKUP, FEED = V1 + "/partner/police/lookup", V1 + "/partner/police/feed"
PROFILE_FIELDS = {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "hukou_address", "dwelling_address",
                  "arrival_date", "status", "left_on", "residence_permit_no"}
IDENTITY = {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "hukou_address"}
# What no police answer may ever hold, at any depth.
NEVER = {"contraception", "contraception_since", "pregnancy", "pregnancy_noted_on", "children", "health", "visits",
         "visit", "services", "deliveries", "phone", "employer", "occupation", "marital_status", "notes"}


def station(api: Api, world: World, *divisions: str, client_id: str = "station-1") -> Client:
    return make_client(api, "police", client_id, division_ids=list(divisions or [world.community("c1")["parent_id"]]))


def person(api: Api, world: World, community: str, seq: str, index: int = 1) -> dict[str, Any]:
    user = {"c1": "worker1", "c2": "worker2", "c3": "worker3"}[community]
    return register_resident(api, user, dwelling_id(world, community, index), id_number=id_number(seq=seq),
                             name="住户" + seq)


def feed_all(api: Api, headers: dict[str, str], cursor: str | None = None, limit: int = 100) -> tuple[list[Any], str]:
    items: list[Any] = []
    while True:
        page = ok(api.client.post(FEED, json={"cursor": cursor, "limit": limit}, headers=headers))
        items += page["items"]
        cursor = page["cursor"]
        if not page["has_more"]:
            return items, cursor


def test_lookup_in_the_jurisdiction(api: Api, world: World, engine: Engine) -> None:
    here, far = person(api, world, "c1", "101"), person(api, world, "c3", "103")
    client = station(api, world)
    headers = bearer(api, client)
    found = ok(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    assert set(found["person"]) == PROFILE_FIELDS and found["person"]["id"] == here["id"]
    assert found["person"]["dwelling_address"] and found["disclosure"]["legal_basis"] == "《居住证暂行条例》"
    assert_error(api.client.post(LOOKUP, json={"id_number": far["id_number"]}, headers=headers), 404, "not_found")
    assert_error(api.client.post(LOOKUP, json={"id_number": id_number(seq="555")}, headers=headers), 404,
                 "not_found")
    assert_error(api.client.post(LOOKUP, json={"id_number": "12345678901234567"}, headers=headers), 422)
    ledger = rows(engine, "SELECT resident_id, partner_kind, partner_id, field_groups FROM disclosures")
    assert ledger == [{"resident_id": here["id"], "partner_kind": "police", "partner_id": client.user_id,
                       "field_groups": "identity,residence"}]
    read = audit_events(engine, "sharing.police_lookup.read")
    assert len(read) == 1 and here["id_number"] not in str(read) and here["name"] not in str(read)
    dossier = ok(api.as_("worker1", "GET", f"{V1}/residents/{here['id']}/dossier"))
    assert [d["partner_kind"] for d in dossier["disclosures"]] == ["police"]


def test_lookups_are_rate_limited_per_client(api: Api, world: World, engine: Engine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "partner_lookup_limit", 2)
    here = person(api, world, "c1", "101")
    headers = bearer(api, station(api, world))
    other = bearer(api, station(api, world, client_id="station-2"))
    body = {"id_number": here["id_number"]}
    ok(api.client.post(LOOKUP, json=body, headers=headers))
    assert_error(api.client.post(LOOKUP, json={"id_number": id_number(seq="555")}, headers=headers), 404)
    for _ in range(2):
        refused = assert_error(api.client.post(LOOKUP, json=body, headers=headers), 429, "rate_limited")
        assert refused["details"]["retry_after_seconds"] > 0
    assert int(api.client.post(LOOKUP, json=body, headers=headers).headers["retry-after"]) > 0
    ok(api.client.post(LOOKUP, json=body, headers=other))  # each client has its own count
    assert len(audit_events(engine, "sharing.enumeration_alert")) == 1
    assert len(rows(engine, "SELECT resident_id FROM disclosures")) == 2


def test_the_profile_decides_what_leaves(api: Api, world: World, engine: Engine) -> None:
    here = person(api, world, "c1", "101")
    headers = bearer(api, station(api, world))
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/police", json={
        "version": 1, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": False,
        "retention_days": 30}))
    found = ok(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers))
    assert set(found["person"]) == IDENTITY and found["disclosure"]["profile_version"] == 2
    assert rows(engine, "SELECT field_groups, legal_basis FROM disclosures") == [
        {"field_groups": "identity", "legal_basis": "x"}]
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/police", json={
        "version": 2, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": True,
        "retention_days": 30}))
    # Held for a supervisor's approval (tests/sharing/test_disclosure_approvals.py): nothing disclosed.
    held = api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers)
    assert held.status_code == 202 and held.json()["state"] == "pending" and "person" not in held.json()
    assert api.client.post(FEED, json={}, headers=headers).status_code == 202
    assert len(rows(engine, "SELECT id FROM disclosures")) == 1


def test_feed_of_arrivals_and_departures(api: Api, world: World, engine: Engine) -> None:
    a, c, far = person(api, world, "c1", "101"), person(api, world, "c2", "105"), person(api, world, "c3", "103")
    headers = bearer(api, station(api, world))
    items, cursor = feed_all(api, headers)
    assert sorted((i["event"], i["person"]["id"]) for i in items) == sorted([("arrival", a["id"]),
                                                                             ("arrival", c["id"])])
    assert all(set(i["person"]) == PROFILE_FIELDS for i in items)
    ok(api.as_("worker1", "POST", f"{V1}/residents/{a['id']}/leave",
               json={"version": a["version"], "left_on": city_today().isoformat(), "reason": "left_city"}))
    later, cursor = feed_all(api, headers, cursor)
    assert [(i["event"], i["person"]["id"], i["person"]["status"]) for i in later] == [("departure", a["id"], "LEFT")]
    assert ok(api.client.post(FEED, json={"cursor": cursor}, headers=headers))["items"] == []
    one_by_one, _ = feed_all(api, headers, limit=1)
    assert [(i["event"], i["person"]["id"]) for i in one_by_one] == [(i["event"], i["person"]["id"])
                                                                    for i in items + later]
    ledger = rows(engine, "SELECT DISTINCT resident_id FROM disclosures")
    assert {r["resident_id"] for r in ledger} == {a["id"], c["id"]} and far["id"] not in str(ledger)
    assert audit_events(engine, "sharing.police_feed")


def test_a_move_out_is_a_departure_with_identity_only(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    a = person(api, world, "c1", "101")
    headers = bearer(api, station(api, world, c1["id"]))
    cursor = feed_all(api, headers)[1]
    ok(api.as_("sup_street", "POST", f"{V1}/residents/{a['id']}/move",
               json={"version": a["version"], "dwelling_id": dwelling_id(world, "c2", 1),
                     "moved_on": city_today().isoformat()}))
    items, _ = feed_all(api, headers, cursor)
    assert [i["event"] for i in items] == ["departure"] and set(items[0]["person"]) == IDENTITY
    assert rows(engine, "SELECT field_groups FROM disclosures ORDER BY disclosed_at")[-1] == {
        "field_groups": "identity"}
    assert_error(api.client.post(LOOKUP, json={"id_number": a["id_number"]}, headers=headers), 404, "not_found")


def test_pages_that_end_inside_one_transaction_lose_nothing(api: Api, world: World, engine: Engine) -> None:
    """An import logs all its residents under one sequence number: a page may end among them."""
    records = [import_person(world, "c1", 姓名=f"住户{i}", 公民身份号码=id_number(seq=f"{300 + i}")) for i in range(5)]
    report = ok(upload(api, "worker1", csv_file(records), dry_run=False), 201)
    assert report["created"] == 5
    headers = bearer(api, station(api, world))
    whole, _ = feed_all(api, headers)
    for limit in (1, 2, 3):
        paged, cursor = feed_all(api, headers, limit=limit)
        assert [i["person"]["id"] for i in paged] == [i["person"]["id"] for i in whole] and len(whole) == 5
        assert ok(api.client.post(FEED, json={"cursor": cursor}, headers=headers))["items"] == []
    seq = rows(engine, "SELECT MAX(seq) AS seq FROM sync_log")[0]["seq"]
    before = encode_cursor(CURSOR_TAG, str(seq - 1))  # a cursor of the bare sequence number, given out before
    assert len(feed_all(api, headers, before)[0]) == 5
    assert feed_all(api, headers, encode_cursor(CURSOR_TAG, str(seq)))[0] == []


@pytest.mark.parametrize("cursor", ["x", "cDE6LTE", "cDI6MQ", "!!!!", "p1:5", "cDE6MS4", "cDE6MS54", "cDE6LjE"])
def test_a_foreign_cursor_is_refused(api: Api, world: World, cursor: str) -> None:
    headers = bearer(api, station(api, world))
    assert_error(api.client.post(FEED, json={"cursor": cursor}, headers=headers), 422, "invalid_cursor")


def test_no_jurisdiction_sees_nothing(api: Api, world: World) -> None:
    here = person(api, world, "c1", "101")
    headers = bearer(api, make_client(api, "police", "station-0"))
    assert_error(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers), 404)
    assert ok(api.client.post(FEED, json={}, headers=headers))["items"] == []


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


def test_police_answers_hold_only_profile_fields_from_the_jurisdiction(api: Api, world: World) -> None:
    """Walks every police response: a field outside the profile, any health/visit/service field, or a record
    outside the jurisdiction fails the test."""
    placed = (("c1", "101", "worker1"), ("c2", "105", "worker2"), ("c3", "103", "worker3"))
    people = [person(api, world, community, seq) for community, seq, _ in placed]
    for p, (_, _, user) in zip(people, placed, strict=True):
        assert put_health(api, p["id"], user=user).status_code == 200
        post_visit(api, phone_visit_body(p["id"]), user)
    inside = {people[0]["id"], people[1]["id"]}
    headers = bearer(api, station(api, world))
    answers = [api.client.post(LOOKUP, json={"id_number": p["id_number"]}, headers=headers) for p in people]
    answers.append(api.client.post(FEED, json={"limit": 2}, headers=headers))
    answers.append(api.client.post(FEED, json={}, headers=headers))
    found = 0
    for response in answers:
        body = response.json()
        assert not keys_anywhere(body) & NEVER, body
        if response.status_code != 200:
            assert response.status_code == 404, response.text
            continue
        persons = [body["person"]] if "person" in body else [i["person"] for i in body["items"]]
        for shown in persons:
            found += 1
            assert set(shown) <= PROFILE_FIELDS, shown
            assert shown["id"] in inside, shown
            assert "iud" not in str(shown)
    assert found >= 4


def test_without_a_profile_nothing_leaves(api: Api, world: World, engine: Engine) -> None:
    here = person(api, world, "c1", "101")
    headers = bearer(api, station(api, world))
    execute(engine, "DELETE FROM disclosure_profiles WHERE kind = 'police'")
    assert_error(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=headers), 409,
                 "profile_missing")
    assert_error(api.client.post(FEED, json={}, headers=headers), 409, "profile_missing")
    assert rows(engine, "SELECT id FROM disclosures") == []
