"""Registering an ID number the city already holds for someone who left: the details must match the record,
and a record held by another area stays theirs (and unseen) until they hand it over."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api, World
from tests.db import rows
from tests.factories import dwelling_id, register_resident, resident_body, valid_id
from tests.people.wf_helpers import RESIDENTS
from tests.sync.helpers import ids, pull
from tests.sync.push_helpers import push, resident_raw, wid

V1 = "/api/v1"
TRANSFERS = V1 + "/transfers"
PRIVATE = {"phone": "13912345678", "ethnicity": "回族", "hukou_address": "河南省周口市某村", "employer": "某某食品厂"}


def phone_visit(resident_id: str) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return {"resident_id": resident_id, "mode": "phone", "purpose": "routine", "outcome": "met",
            "started_at": start.isoformat(), "ended_at": (start + timedelta(minutes=5)).isoformat(),
            "services": [{"item_code": "education", "quantity": 1}]}


def left_from_c1(api: Api, world: World, **over: Any) -> dict[str, Any]:
    """A person worker1 registered in c1, with a 婚育证明 and a visit on file, who then left."""
    held = register_resident(api, "worker1", dwelling_id(world), **{**PRIVATE, **over})
    doc = api.as_("worker1", "POST", f"{RESIDENTS}/{held['id']}/fp-documents",
                  json={"status": "valid", "number": "FP-410-778899"})
    assert doc.status_code == 201, doc.text
    visit = api.as_("worker1", "POST", V1 + "/visits", json=phone_visit(held["id"]))
    assert visit.status_code == 201, visit.text
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{held['id']}/leave",
                   json={"version": held["version"], "left_on": "2026-02-01", "reason": "left_city"})
    assert left.status_code == 200, left.text
    return {**left.json(), "visit_id": visit.json()["id"]}


def history_reads(resident_id: str, visit_id: str) -> list[tuple[str, dict[str, str]]]:
    """Every route that answers with a resident's record or history."""
    base = f"{RESIDENTS}/{resident_id}"
    return [(base, {}), (f"{base}/tenancies", {}), (f"{base}/fp-documents", {}), (f"{base}/dossier", {}),
            (f"{base}/health", {"purpose": "visit"}), (f"{base}/services", {"purpose": "visit"}),
            (f"{base}/visits", {}), (f"{base}/corrections", {}), (f"{V1}/visits/{visit_id}", {})]


def sees_nothing(api: Api, user: str, person: dict[str, Any]) -> None:
    for url, params in history_reads(person["id"], person["visit_id"]):
        response = api.as_(user, "GET", url, params=params)
        assert response.status_code == 404, (url, response.text)
    for url, params in ((f"{V1}/visits", {"resident_id": person["id"]}), (f"{V1}/tasks", {"resident_id": person["id"]}),
                        (RESIDENTS, {"id_number": person["id_number"]})):
        listed = api.as_(user, "GET", url, params=params)
        assert listed.status_code == 200 and listed.json()["items"] == [], (url, listed.text)


def test_left_elsewhere_waits_for_the_holder(api: Api, world: World, engine: Engine) -> None:
    person = left_from_c1(api, world)
    c3_dwelling = world.dwellings[world.community("c3")["id"]][0]
    # Any name: refused, and nothing is opened or changed.
    wrong = api.as_("worker3", "POST", RESIDENTS,
                    json=resident_body(dwelling_id(world, "c3"), name="李四", arrival_date="2026-03-01"))
    assert (wrong.status_code, wrong.json()["code"]) == (409, "resident_identity_mismatch"), wrong.text
    assert wrong.json()["details"] == {"fields": ["name"]}
    assert rows(engine, "SELECT id FROM transfer_requests") == []

    # The right name: a transfer request, and nothing of the record.
    asked = api.as_("worker3", "POST", RESIDENTS,
                    json=resident_body(dwelling_id(world, "c3"), name="张丽", arrival_date="2026-03-01"))
    assert (asked.status_code, asked.json()["code"]) == (409, "resident_registered_elsewhere"), asked.text
    assert set(asked.json()["details"]) == {"transfer_request_id"}
    for secret in (*PRIVATE.values(), person["id"], "FP-410-778899"):
        assert secret not in asked.text
    tid = asked.json()["details"]["transfer_request_id"]
    again = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3", 1), name="张丽"))
    assert again.json()["details"] == {"transfer_request_id": tid}  # one open request per community
    stored = rows(engine, "SELECT status, community_id, version FROM residents WHERE id = :r", r=person["id"])
    assert stored == [{"status": "LEFT", "community_id": world.community("c1")["id"], "version": person["version"]}]
    mine = api.as_("worker3", "GET", f"{TRANSFERS}/{tid}").json()
    assert (mine["side"], mine["status"], mine["resident_id"]) == ("requester", "pending", None)
    sees_nothing(api, "worker3", person)

    # The holder decides; until then the requester saw nothing, afterwards the record is theirs.
    incoming = api.as_("worker1", "GET", f"{TRANSFERS}/{tid}").json()
    assert (incoming["side"], incoming["resident_id"], incoming["to_dwelling_id"]) == ("holder", person["id"], None)
    dossier = api.as_("worker1", "GET", f"{RESIDENTS}/{person['id']}/dossier")
    assert [t["to_dwelling_id"] for t in dossier.json()["transfer_requests"]] == [None]
    assert c3_dwelling not in dossier.text
    accepted = api.as_("worker1", "POST", f"{TRANSFERS}/{tid}/accept")
    assert accepted.status_code == 200, accepted.text
    now = api.as_("worker3", "GET", f"{RESIDENTS}/{person['id']}").json()
    assert (now["status"], now["community_id"], now["dwelling_id"], now["arrival_date"], now["name"]) == (
        "REGISTERED", world.community("c3")["id"], c3_dwelling, "2026-03-01", "张丽")
    tenancies = api.as_("worker3", "GET", f"{RESIDENTS}/{person['id']}/tenancies").json()["items"]
    assert len(tenancies) == 2
    assert (tenancies[0]["dwelling_id"], tenancies[0]["move_in"], tenancies[0]["current"]) == (
        c3_dwelling, "2026-03-01", True)


def test_rejected_or_cancelled_request_hands_nothing_over(api: Api, world: World, engine: Engine) -> None:
    person = left_from_c1(api, world)
    tid = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3"))).json()["details"][
        "transfer_request_id"]
    assert api.as_("worker1", "POST", f"{TRANSFERS}/{tid}/reject", json={"reason": "查无此人"}).status_code == 200
    sees_nothing(api, "worker3", person)
    tid2 = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3"))).json()["details"][
        "transfer_request_id"]
    assert tid2 != tid
    assert api.as_("worker3", "POST", f"{TRANSFERS}/{tid2}/cancel").status_code == 200
    sees_nothing(api, "worker3", person)
    assert rows(engine, "SELECT status FROM residents WHERE id = :r", r=person["id"]) == [{"status": "LEFT"}]


def test_registered_elsewhere_needs_the_same_name(api: Api, world: World, engine: Engine) -> None:
    register_resident(api, "worker1", dwelling_id(world))
    wrong = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3"), name="张莉"))
    assert (wrong.status_code, wrong.json()["code"]) == (409, "resident_identity_mismatch")
    assert rows(engine, "SELECT id FROM transfer_requests") == []
    # Each refusal is in the audit log (a run of them is someone guessing a name).
    denied = rows(engine, "SELECT detail FROM audit_events WHERE action = 'http.denied'")
    assert [json.loads(d["detail"]) for d in denied] == [{"code": "resident_identity_mismatch"}]
    # Spacing, separators and full-width forms are not a different name.
    for name in ("张 丽", "张丽\u3000", "张丽"):
        same = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3"), name=name))
        assert same.json()["code"] == "resident_registered_elsewhere", name


def test_returning_to_own_area_is_registered_again(api: Api, world: World, engine: Engine) -> None:
    person = left_from_c1(api, world, name="阿依古丽·买买提")
    body = resident_body(dwelling_id(world, "c1", 2), arrival_date="2026-04-01")
    wrong = api.as_("worker1", "POST", RESIDENTS, json={**body, "name": "张丽"})
    assert (wrong.status_code, wrong.json()["code"]) == (409, "resident_identity_mismatch")
    assert rows(engine, "SELECT status FROM residents WHERE id = :r", r=person["id"]) == [{"status": "LEFT"}]
    back = api.as_("worker1", "POST", RESIDENTS, json={**body, "name": "阿依古丽•买买提"})
    assert back.status_code == 201, back.text
    r = back.json()
    assert (r["id"], r["status"], r["arrival_date"], r["name"]) == (
        person["id"], "REGISTERED", "2026-04-01", "阿依古丽·买买提")
    assert rows(engine, "SELECT id FROM transfer_requests") == []


def test_phone_registration_of_someone_who_left_elsewhere(api: Api, world: World, engine: Engine) -> None:
    number = valid_id("41170219910101" + "301")
    person = left_from_c1(api, world, name="手机登记", id_number=number)
    device = "phone-c3-000001"
    last = pull(api, "worker3", device=device)["timestamp"]
    phone_id = wid()
    raw = resident_raw(phone_id, world.dwellings[world.community("c3")["id"]][0], "301")
    assert raw["id_number"] == number
    body = push(api, "worker3", {"residents": {"created": [raw], "updated": [], "deleted": []}}, last, device=device)
    assert [(r["id"], r["code"]) for r in body["rejected"]] == [(phone_id, "resident_registered_elsewhere")]
    assert rows(engine, "SELECT status FROM residents WHERE id = :r", r=person["id"]) == [{"status": "LEFT"}]
    assert len(rows(engine, "SELECT id FROM transfer_requests WHERE resident_id = :r", r=person["id"])) == 1
    # The phone drops its copy and receives nothing of the held record.
    after = pull(api, "worker3", last, device=device)
    assert phone_id in ids(after, "residents", "deleted")
    assert person["id"] not in json.dumps(after)
    # With another name the phone's record is refused the same way, and no request is opened.
    other = {**raw, "id": wid(), "name": "别人"}
    body = push(api, "worker3", {"residents": {"created": [other], "updated": [], "deleted": []}},
                after["timestamp"], device=device)
    assert [r["code"] for r in body["rejected"]] == ["resident_identity_mismatch"]
