"""The outflow city's change feed: arrivals, departures, monthly verification results and 婚育证明 status of its
registered people (户籍地 prefix) since a cursor, through the profile, every item in the disclosure ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.verify_helpers import record, verifications
from tests.db import audit_events, rows
from tests.factories import id_number
from tests.people.import_helpers import csv_file, person, upload
from tests.people.rec_helpers import put_health, valid_doc
from tests.sharing.outflow_helpers import NEVER, OUTFLOW_FIELDS, resident
from tests.sharing.partner_helpers import V1, bearer, make_client

FEED = V1 + "/partner/outflow/feed"


def pages(api: Api, headers: dict[str, str], cursor: str | None = None, limit: int = 500) -> tuple[list[Any], str]:
    """Every item after `cursor`, page by page; and the last cursor."""
    items: list[Any] = []
    while True:
        page = ok(api.client.post(FEED, json={"cursor": cursor, "limit": limit}, headers=headers))
        items += page["items"]
        cursor = page["cursor"]
        assert len(page["items"]) <= limit
        if not page["has_more"]:
            return items, cursor


def events(items: list[Any]) -> list[tuple[str, str]]:
    return [(i["event"], i["person"]["id"]) for i in items]


def test_the_feed_follows_the_city_people(api: Api, world: World, engine: Engine) -> None:
    client = make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301")
    headers = bearer(api, client)
    a = resident(api, world, "worker1", "c1", "101", "130102")
    b = resident(api, world, "worker3", "c3", "103", "130181")
    other = resident(api, world, "worker1", "c1", "105", "130202")
    first, cursor = pages(api, headers)
    assert events(first) == [("arrival", a["id"]), ("arrival", b["id"])] and other["id"] not in str(first)
    for item in first:
        assert set(item["person"]) <= OUTFLOW_FIELDS and not set(item["person"]) & NEVER
        assert "verification_status" not in item["person"] and item["person"]["hukou_code"].startswith("1301")
    assert first[1]["person"]["residence_community"] == world.community("c3")["name"]

    # Changes since: a health record (never shown, no event), an ordinary edit (no event), the month's
    # verification result (opening the month is no event), a 婚育证明, a departure.
    assert put_health(api, a["id"]).status_code == 200
    ok(api.as_("worker1", "PATCH", f"{V1}/residents/{a['id']}", json={"version": a["version"], "phone": None}))
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    [pending] = [v for v in verifications(api, "worker1") if v["resident_id"] == a["id"]]
    record(api, "worker1", pending, "PRESENT")
    doc = ok(api.as_("worker1", "POST", f"{V1}/residents/{a['id']}/fp-documents", json=valid_doc()), 201)
    ok(api.as_("worker1", "PATCH", f"{V1}/fp-documents/{doc['id']}", json={"version": doc["version"],
                                                                           "status": "expired"}))
    current = ok(api.as_("worker3", "GET", f"{V1}/residents/{b['id']}"))
    ok(api.as_("worker3", "POST", f"{V1}/residents/{b['id']}/leave", json={
        "version": current["version"], "left_on": current["arrival_date"], "reason": "left_city"}))

    later, end = pages(api, headers, cursor, limit=1)
    assert events(later) == [("verification", a["id"]), ("fp_document", a["id"]), ("fp_document", a["id"]),
                             ("departure", b["id"])]
    verification, *documents, departure = [i["person"] for i in later]
    assert verification["verification_status"] == "PRESENT" and verification["verification_month"] == pending["month"]
    assert "residence_community" not in verification and "fp_document_status" not in verification
    assert [d["fp_document_status"] for d in documents] == ["expired", "expired"]  # shown as it is now
    assert departure["status"] == "LEFT" and departure["left_on"] == current["arrival_date"]
    assert "contraception" not in str(later) and "phone" not in str(later)
    assert ok(api.client.post(FEED, json={"cursor": end}, headers=headers))["items"] == []

    # Every item is in the ledger, with the groups it showed.
    ledger = rows(engine, "SELECT resident_id, field_groups, partner_id FROM disclosures ORDER BY disclosed_at")
    assert {r["partner_id"] for r in ledger} == {client.user_id}
    assert {(r["resident_id"], r["field_groups"]) for r in ledger} == {
        (a["id"], "identity,residence"), (b["id"], "identity,residence"), (a["id"], "identity,verification"),
        (a["id"], "fp_document,identity")}
    assert other["id"] not in {r["resident_id"] for r in ledger}
    assert audit_events(engine, "sharing.outflow_feed")


def test_the_profile_narrows_the_feed(api: Api, world: World, engine: Engine) -> None:
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 1, "field_groups": ["identity", "fp_document"], "legal_basis": "x", "purpose": "y",
        "approval_required": False, "retention_days": 30}))
    headers = bearer(api, make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="130102"))
    a = resident(api, world, "worker1", "c1", "101", "130102")
    ok(api.as_("worker1", "POST", f"{V1}/residents/{a['id']}/fp-documents", json=valid_doc()), 201)
    items, _ = pages(api, headers)
    # No residence group: arrivals are not shown at all.
    assert events(items) == [("fp_document", a["id"])]
    assert set(items[0]["person"]) == {"id", "name", "sex", "birth_date", "id_number", "hukou_code",
                                       "fp_document_status"}
    assert rows(engine, "SELECT field_groups FROM disclosures") == [{"field_groups": "fp_document,identity"}]


def test_feed_refusals(api: Api, world: World) -> None:
    client = make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301")
    headers = bearer(api, client)
    for cursor in ("bm9wZQ", "cDE6MQ", "bzE6eA", "bzI6eA", "bzI6MS54", "!!"):  # junk, police's, roster's, o2:x, o2:1.x
        assert_error(api.client.post(FEED, json={"cursor": cursor}, headers=headers), 422, "invalid_cursor")
    assert_error(api.client.post(FEED, json={"limit": 501}, headers=headers), 422, "validation_error")
    roster_only = bearer(api, client, scope="outflow:feed")
    assert_error(api.client.post(FEED, json={}, headers=roster_only), 403, "insufficient_scope")
    station = bearer(api, make_client(api, "police", "station-1", division_ids=[world.community("c1")["parent_id"]]))
    assert_error(api.client.post(FEED, json={}, headers=station), 403, "forbidden")
    assert_error(api.as_("admin", "POST", FEED, json={}), 403, "forbidden")
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 1, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": True,
        "retention_days": 30}))
    held = api.client.post(FEED, json={}, headers=headers)  # held: tests/sharing/test_disclosure_approvals.py
    assert held.status_code == 202 and held.json()["state"] == "pending" and "items" not in held.json()
    unset = bearer(api, make_client(api, "outflow_city", "xinyang"))
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 2, "field_groups": ["identity", "residence"], "legal_basis": "x", "purpose": "y",
        "approval_required": False, "retention_days": 30}))
    resident(api, world, "worker1", "c1", "101", "411602")
    assert ok(api.client.post(FEED, json={}, headers=unset))["items"] == []


def test_a_page_may_end_inside_one_transaction(api: Api, world: World) -> None:
    """One import is one transaction: its change-log entries share a sequence number, and pages of one entry
    still give every arrival once (the police feed pages the same way)."""
    records = [person(world, "c1", 姓名=f"河北{seq}", 公民身份号码=id_number(seq=seq, area="130102"),
                      户籍地代码="130102", 住所编号=world.dwellings[world.community("c1")["id"]][i])
               for i, seq in enumerate(("101", "103", "105"))]
    ok(upload(api, "worker1", csv_file(records), dry_run=False), 201)
    city = bearer(api, make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301"))
    items, _ = pages(api, city, limit=1)
    assert sorted(i["person"]["name"] for i in items) == ["河北101", "河北103", "河北105"]
    assert {i["event"] for i in items} == {"arrival"}
    station = bearer(api, make_client(api, "police", "station-1", division_ids=[world.community("c1")["id"]]))
    seen: list[str] = []
    cursor = None
    while True:
        page = ok(api.client.post(V1 + "/partner/police/feed", json={"cursor": cursor, "limit": 1}, headers=station))
        seen += [i["person"]["name"] for i in page["items"] if i["person"]["name"].startswith("河北")]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert sorted(seen) == ["河北101", "河北103", "河北105"]
    # A cursor of the sequence number alone (given out before) still works: the whole transaction was read.
    old_style = ok(api.client.post(V1 + "/partner/police/feed", json={"cursor": "cDE6MA"}, headers=station))
    names = [i["person"]["name"] for i in old_style["items"]]
    assert sorted(n for n in names if n.startswith("河北")) == sorted(seen)
