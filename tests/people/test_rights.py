"""The resident's right of access: the dossier gathers everything held about one person, and is audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.core.types import city_today
from app.people.models import CorrectionRequest, Disclosure
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, rows
from tests.factories import dwelling_id, register_resident
from tests.people.rec_helpers import API, RESIDENTS, SEES_C1, put_health, resident_fields, valid_doc

AUDIT_KEYS = {"id", "at", "action", "target_type", "fields", "actor_role", "outcome", "purpose"}


def test_dossier_is_complete(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world, "c1", 5), **resident_fields(
        birth="19910707", arrival_date=(city_today() - timedelta(days=90)).isoformat()))
    rid = r["id"]
    moved = api.as_("worker1", "POST", f"{RESIDENTS}/{rid}/move",
                    json={"version": 1, "dwelling_id": dwelling_id(world, "c1", 6),
                          "moved_on": (city_today() - timedelta(days=10)).isoformat()})
    assert moved.status_code == 200, moved.text
    doc = api.as_("worker1", "POST", f"{RESIDENTS}/{rid}/fp-documents", json=valid_doc()).json()
    assert put_health(api, rid, children=[{"birth_date": "2018-03-03", "sex": "M"}]).status_code == 200
    # Someone in another district tries to register the same person: a transfer request.
    elsewhere = api.as_("worker3", "POST", RESIDENTS, json={
        "name": r["name"], "id_number": r["id_number"], "hukou_code": "411602",
        "arrival_date": city_today().isoformat(), "dwelling_id": dwelling_id(world, "c3")})
    assert elsewhere.status_code == 409
    transfer_id = elsewhere.json()["details"]["transfer_request_id"]
    # A look-alike record (same name, birth date, phone; another ID): a duplicate flag.
    twin = register_resident(api, "worker1", dwelling_id(world),
                             **resident_fields(birth="19910707", name=r["name"], phone=r["phone"]))
    with unit_of_work(engine=engine) as session:
        correction = CorrectionRequest(resident_id=rid, area_path="/x/", district_code=r["id_number"][:6],
                                       changes=json.dumps({"phone": "13800000000"}), note="本人来电",
                                       requested_by=world.users["worker1"])
        disclosure = Disclosure(resident_id=rid, district_code="410102", partner_kind="police",
                                partner_id="p" * 32, field_groups="identity,residence",
                                legal_basis="《居住证暂行条例》第十二条")
        session.add_all([correction, disclosure])
        ids = (correction.id, disclosure.id)

    response = api.as_("worker1", "GET", f"{RESIDENTS}/{rid}/dossier")
    assert response.status_code == 200, response.text
    assert "content-disposition" not in response.headers
    d = response.json()
    assert d["resident"]["id"] == rid and d["resident"]["id_number"] == r["id_number"]
    assert [t["current"] for t in d["tenancies"]] == [True, False]
    assert all(t["address"] for t in d["tenancies"])
    assert [f["id"] for f in d["fp_documents"]] == [doc["id"]] and d["fp_documents"][0]["number"] == doc["number"]
    assert d["health"]["contraception"] == "iud" and d["health"]["children"][0]["under_14"] is True
    assert [c["id"] for c in d["corrections"]] == [ids[0]]
    assert d["corrections"][0]["changes"] == {"phone": "13800000000"}
    assert [t["id"] for t in d["transfer_requests"]] == [transfer_id]
    assert [(f["other_resident_id"], f["status"]) for f in d["duplicate_flags"]] == [(twin["id"], "open")]
    assert d["disclosures"] == [{
        "id": ids[1], "partner_kind": "police", "partner_id": "p" * 32, "field_groups": ["identity", "residence"],
        "legal_basis": "《居住证暂行条例》第十二条", "disclosed_at": d["disclosures"][0]["disclosed_at"]}]
    # The audit trail about this person: actions, times, roles, purposes; never values, never staff ids.
    events = d["audit_events"]
    assert all(set(e) == AUDIT_KEYS for e in events)
    actions = {e["action"] for e in events}
    assert {"residents.create", "tenancies.create", "fp_documents.create", "health_records.create",
            "resident.write.health", "transfer_requests.create", "correction_requests.create",
            "disclosures.create", "duplicate_flags.create"} <= actions
    assert d["audit_events_total"] == len(events)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    twin_events = {e["id"] for e in audit_events(engine, "residents.create", twin["id"])}
    assert not twin_events & {e["id"] for e in events}
    serialized = json.dumps(events, ensure_ascii=False)
    assert r["id_number"] not in serialized and r["name"] not in serialized and "iud" not in serialized
    # The dossier read itself is audited, with its purpose and the groups it covered.
    logged = audit_events(engine, "resident.dossier", rid)
    assert len(logged) == 1
    assert logged[0]["purpose"] == "resident_request" and logged[0]["actor_role"] == "worker"
    assert {"health", "fp_document", "identity", "disclosures"} <= set(logged[0]["fields"].split(","))
    assert r["id_number"] not in all_audit_text(engine)


def test_dossier_download_and_scope(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    url = f"{RESIDENTS}/{r['id']}/dossier"
    download = api.as_("worker1", "GET", url, params={"format": "json"})
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="resident-{r["id"]}-dossier.json"'
    assert download.headers["cache-control"] == "no-store"
    assert download.json()["health"] is None and download.json()["disclosures"] == []
    assert api.as_("worker1", "GET", url, params={"format": "pdf"}).status_code == 422
    for user in SEES_C1:
        assert api.as_(user, "GET", url).status_code == 200
    for user in ("worker2", "worker3", "sup_other"):
        assert api.as_(user, "GET", url).status_code == 404
    assert api.as_("auditor", "GET", url).status_code == 403
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{'0' * 32}/dossier").status_code == 404
    assert len(audit_events(engine, "resident.dossier", r["id"])) == 1 + len(SEES_C1)
    denied = rows(engine, "SELECT outcome FROM audit_events WHERE action LIKE 'http.%' AND target_id LIKE :u",
                  u=f"%{r['id']}/dossier")
    assert denied and {d["outcome"] for d in denied} <= {"denied", "not_found"}


def test_dossier_of_the_other_twin_names_the_pair(api: Api, world: World) -> None:
    a = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19930303", name="赵敏"))
    b = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19930303", name="赵敏"))
    d = api.as_("sup_street", "GET", f"{RESIDENTS}/{b['id']}/dossier").json()
    assert [f["other_resident_id"] for f in d["duplicate_flags"]] == [a["id"]]
    assert api.as_("sup_street", "GET", f"{API}/residents/{a['id']}/dossier").json()["duplicate_flags"][0][
        "other_resident_id"] == b["id"]
