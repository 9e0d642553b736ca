"""Outflow cities: their registered people here (户籍地 prefix, anywhere in the city), with monthly verification
and 婚育证明 status, through the outflow-city profile, every page in the disclosure ledger."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import rows
from tests.people.rec_helpers import put_health, valid_doc
from tests.sharing.outflow_helpers import NEVER, OUTFLOW_FIELDS, resident
from tests.sharing.partner_helpers import V1, bearer, make_client

ROSTER = V1 + "/partner/outflow/residents"


def test_roster_of_the_city_people(api: Api, world: World, engine: Engine) -> None:
    # 河北: no demo resident comes from there, so the roster holds only these.
    a = resident(api, world, "worker1", "c1", "101", "130102")
    b = resident(api, world, "worker3", "c3", "103", "130181")
    other = resident(api, world, "worker1", "c1", "105", "130202")
    assert put_health(api, a["id"]).status_code == 200
    ok(api.as_("worker1", "POST", f"{V1}/residents/{a['id']}/fp-documents", json=valid_doc()), 201)
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    client = make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301")
    headers = bearer(api, client)
    page = ok(api.client.post(ROSTER, json={}, headers=headers))
    shown = {i["id"]: i for i in page["items"]}
    assert set(shown) == {a["id"], b["id"]} and other["id"] not in str(page)
    for item in page["items"]:
        assert item["hukou_code"].startswith("1301")
        assert set(item) <= OUTFLOW_FIELDS and not set(item) & NEVER, item
        assert item["verification_status"] == "PENDING" and item["verification_month"]
    assert shown[a["id"]]["fp_document_status"] == "valid" and shown[b["id"]]["fp_document_status"] is None
    assert shown[b["id"]]["residence_community"] == world.community("c3")["name"]
    assert page["disclosure"]["legal_basis"] == "《流动人口计划生育工作条例》"
    ledger = rows(engine, "SELECT resident_id, partner_kind, partner_id FROM disclosures")
    assert sorted(r["resident_id"] for r in ledger) == sorted([a["id"], b["id"]])
    assert {(r["partner_kind"], r["partner_id"]) for r in ledger} == {("outflow_city", client.user_id)}


def test_roster_pages_by_cursor(api: Api, world: World) -> None:
    made = [resident(api, world, "worker1", "c1", seq, "130102")["id"] for seq in ("101", "103", "105")]
    headers = bearer(api, make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="130102"))
    seen: list[str] = []
    cursor = None
    while True:
        page = ok(api.client.post(ROSTER, json={"cursor": cursor, "limit": 2}, headers=headers))
        seen += [i["id"] for i in page["items"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(made)
    assert ok(api.client.post(ROSTER, json={"cursor": cursor}, headers=headers))["items"] == []
    police_cursor = "cDE6MQ"  # the police feed's
    assert_error(api.client.post(ROSTER, json={"cursor": police_cursor}, headers=headers), 422, "invalid_cursor")


def test_partners_stay_on_their_own_routes(api: Api, world: World) -> None:
    city = bearer(api, make_client(api, "outflow_city", "zhoukou", hukou_prefix="4116"))
    station = bearer(api, make_client(api, "police", "station-1",
                                      division_ids=[world.community("c1")["parent_id"]]))
    assert_error(api.client.post(ROSTER, json={}, headers=station), 403, "forbidden")
    assert_error(api.client.post(V1 + "/partner/police/feed", json={}, headers=city), 403, "forbidden")
    assert_error(api.client.get(V1 + "/residents", headers=city), 403, "forbidden")
    unset = bearer(api, make_client(api, "outflow_city", "xinyang"))
    resident(api, world, "worker1", "c1", "101", "411602")
    assert ok(api.client.post(ROSTER, json={}, headers=unset))["items"] == []


def test_the_profile_narrows_the_roster(api: Api, world: World, engine: Engine) -> None:
    resident(api, world, "worker1", "c1", "101", "130102")
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 1, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": False,
        "retention_days": 30}))
    headers = bearer(api, make_client(api, "outflow_city", "shijiazhuang", hukou_prefix="1301"))
    [item] = ok(api.client.post(ROSTER, json={}, headers=headers))["items"]
    assert set(item) == {"id", "name", "sex", "birth_date", "id_number", "hukou_code"}
    assert rows(engine, "SELECT field_groups FROM disclosures") == [{"field_groups": "identity"}]
