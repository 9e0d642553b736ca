"""Assistance requests (协查) through the HTTP API: the whole life of an outgoing and an incoming request, who
sees what, the audit trail, invalid transitions, and overdue requests in the worker's tasks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from tests.conftest import Api, World
from tests.cycle.assist_helpers import ME, URL, act, draft, incoming, set_today, woman
from tests.db import all_audit_text, audit_events, rows
from tests.factories import id_number


def test_outgoing_request_from_draft_to_answer(api: Api, world: World, engine: Engine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))
    resident = woman(api, world, "102")
    created = draft(api, resident["id"], topic="family_planning", urgent=True)
    assert (created["direction"], created["state"], created["partner_city"]) == ("outgoing", "draft", "411600")
    assert created["due_on"] is None and created["subject_id_number"] == resident["id_number"]

    sent = act(api, "worker1", created, "send")
    assert (sent["state"], sent["sent_on"], sent["due_on"]) == ("sent", "2026-11-05", "2026-11-20")
    # The partner's side of an outgoing request is recorded by an admin, never by the worker.
    refused = api.as_("worker1", "POST", f"{URL}/{sent['id']}/progress", json={"state": "matched", "version": 2})
    assert (refused.status_code, refused.json()["code"]) == (403, "partner_side_only")
    matched = act(api, "admin", sent, "progress", {"state": "matched"})
    verifying = act(api, "admin", matched, "progress", {"state": "verifying"})
    answered = act(api, "admin", verifying, "answer", {"finding": "confirmed", "answered_on": "2026-11-04"},
                   status=422)
    assert answered["code"] == "answer_date"  # before it was sent
    answered = act(api, "admin", verifying, "answer", {"finding": "confirmed", "note": "电话核实"})
    assert (answered["state"], answered["finding"], answered["answered_on"], answered["late"]) == (
        "answered", "confirmed", "2026-11-05", False)
    assert answered["answered_by"] == world.users["admin"] and answered["version"] == 5

    # Every write is in the audit chain, with field names and never values.
    writes = audit_events(engine, "assistance_requests.update")
    assert len(audit_events(engine, "assistance_requests.create")) == 1 and len(writes) == 4
    assert {w["target_id"] for w in writes} == {created["id"]}
    text = all_audit_text(engine)
    assert resident["id_number"] not in text and "电话核实" not in text


def test_incoming_request_matched_verified_and_answered(api: Api, world: World, engine: Engine) -> None:
    resident = woman(api, world, "104")
    received = city_today() - timedelta(days=2)
    request = incoming(api, resident["id_number"], "ZK-2026-0001", received)
    assert (request["direction"], request["state"], request["resident_id"]) == ("incoming", "matched",
                                                                                  resident["id"])
    assert request["community_id"] == world.community("c1")["id"] and request["sent_on"] == received.isoformat()

    listed = api.as_("worker1", "GET", URL, params={"direction": "incoming"}).json()["items"]
    [item] = [i for i in listed if i["id"] == request["id"]]
    assert item["subject_id_masked"] == resident["id_number"][:4] + "*" * 10 + resident["id_number"][-4:]
    assert "subject_id_number" not in item

    read = api.as_("worker1", "GET", f"{URL}/{request['id']}", params={"purpose": "assistance"})
    assert read.status_code == 200 and read.json()["subject_id_number"] == resident["id_number"]
    [event] = audit_events(engine, "assistance.read")
    assert (event["target_id"], event["purpose"], event["outcome"]) == (request["id"], "assistance", "success")
    assert event["area_path"] == rows(engine, "SELECT area_path FROM residents WHERE id = :r", r=resident["id"])[0][
        "area_path"]

    verifying = act(api, "worker1", request, "progress", {"state": "verifying"})
    missing = act(api, "worker1", verifying, "answer", {"finding": "confirmed"}, status=422)
    assert missing["code"] == "answer_fields"  # a 婚育证明 request is answered with its status
    answered = act(api, "worker1", verifying, "answer", {"finding": "confirmed", "fp_certificate_status": "valid"})
    assert (answered["state"], answered["fp_certificate_status"], answered["late"]) == ("answered", "valid", False)
    again = act(api, "worker1", answered, "answer", {"finding": "differs", "fp_certificate_status": "expired"},
                status=409)
    assert (again["code"], again["details"]) == ("invalid_transition", {"from": "answered", "to": "answered"})


def test_incoming_request_for_nobody_here_is_unmatched(api: Api, world: World) -> None:
    """No registered resident with that ID number, or one registered in another city than the asking one (a
    city hears only about its own registered people): unmatched, lying at the city level, out of workers' view."""
    resident = woman(api, world, "106")  # 户籍地 周口
    stranger = incoming(api, id_number(birth="19850303", seq="208"), "ZK-2026-0002", city_today())
    other_city = incoming(api, resident["id_number"], "XY-2026-0001", city_today(), partner="411500")
    for request in (stranger, other_city):
        assert (request["state"], request["resident_id"], request["community_id"]) == ("unmatched", None, None)
        assert api.as_("worker1", "GET", f"{URL}/{request['id']}").status_code == 404
        assert api.as_("sup_district", "GET", f"{URL}/{request['id']}").status_code == 404
        assert api.as_("admin", "GET", f"{URL}/{request['id']}").json()["state"] == "unmatched"
    ended = act(api, "admin", stranger, "progress", {"state": "verifying"}, status=409)
    assert ended["code"] == "invalid_transition"


def test_scope_and_roles(api: Api, world: World) -> None:
    resident = woman(api, world, "108")
    request = draft(api, resident["id"])
    for outsider in ("worker2", "worker3", "sup_other"):
        assert api.as_(outsider, "GET", f"{URL}/{request['id']}").status_code == 404, outsider
        assert request["id"] not in {i["id"] for i in api.as_(outsider, "GET", URL).json()["items"]}
    sent = api.as_("worker2", "POST", f"{URL}/{request['id']}/send", json={"version": 1})
    assert sent.status_code == 404
    assert api.as_("worker2", "POST", URL, json={"resident_id": resident["id"], "topic": "fp_certificate"}
                   ).status_code == 404
    for reader in ("sup_street", "sup_district", "admin"):
        assert api.as_(reader, "GET", f"{URL}/{request['id']}").json()["id"] == request["id"], reader
    # Supervisors read; they do not write. Auditors read the audit views, not requests.
    assert api.as_("sup_street", "POST", f"{URL}/{request['id']}/send", json={"version": 1}).status_code == 403
    assert api.as_("auditor", "GET", URL).status_code == 403
    # Registering a partner city's request is an admin's (on the partner's behalf).
    body = {"partner_city": "411600", "partner_reference": "ZK-R-1", "id_number": resident["id_number"],
            "name": "刘梅", "topic": "residence", "received_on": city_today().isoformat()}
    for user in ("worker1", "sup_district", "auditor"):
        refused = api.as_(user, "POST", f"{URL}/incoming", json=body)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), user


def test_invalid_transitions_and_stale_versions(api: Api, world: World) -> None:
    resident = woman(api, world, "110")
    request = draft(api, resident["id"], topic="fp_certificate")
    early = act(api, "admin", request, "answer", {"finding": "confirmed", "fp_certificate_status": "valid"},
                status=409)
    assert early["details"] == {"from": "draft", "to": "answered"}
    assert act(api, "admin", request, "progress", {"state": "matched"}, status=409)["code"] == "invalid_transition"
    sent = act(api, "worker1", request, "send")
    stale = act(api, "worker1", request, "send", status=409)
    assert stale["code"] == "stale_version"
    assert act(api, "worker1", sent, "send", status=409)["code"] == "invalid_transition"
    unmatched = act(api, "admin", sent, "progress", {"state": "unmatched"})
    assert act(api, "admin", unmatched, "progress", {"state": "matched"}, status=409)["code"] == "invalid_transition"
    # An incoming request is never sent by us.
    other = woman(api, world, "112")
    arrived = incoming(api, other["id_number"], "ZK-2026-0003", city_today())
    assert act(api, "worker1", arrived, "send", status=409)["code"] == "invalid_transition"


def test_overdue_requests_show_in_the_workers_tasks(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    today = city_today()
    late = woman(api, world, "114")
    fresh = woman(api, world, "116")
    # Received 40 days ago, normal: past its due date. Received today: due later, ours to answer.
    overdue = incoming(api, late["id_number"], "ZK-2026-0004", today - timedelta(days=40), topic="residence",
                       name="刘梅梅")
    pending = incoming(api, fresh["id_number"], "ZK-2026-0005", today, topic="residence")
    # Our own request, sent 20 days ago as urgent: the partner city is late.
    outgoing = draft(api, fresh["id"], topic="family_planning", urgent=True)
    set_today(monkeypatch, today - timedelta(days=20))
    outgoing = act(api, "worker1", outgoing, "send")
    monkeypatch.undo()

    mine = api.as_("worker1", "GET", ME).json()
    states = {t["id"]: t["state"] for t in mine["assistance"]}
    assert states == {overdue["id"]: "overdue", outgoing["id"]: "overdue"}
    assert all(t["due_on"] < today.isoformat() for t in mine["assistance"])
    # An incoming request is named as the partner city sent it; our own, by the resident as registered.
    names = {t["id"]: (t["direction"], t["subject_name"], t["topic"]) for t in mine["assistance"]}
    assert names == {overdue["id"]: ("incoming", "刘梅梅", "residence"),
                     outgoing["id"]: ("outgoing", "刘梅", "family_planning")}
    ahead = api.as_("worker1", "GET", ME, params={"upcoming_days": 31}).json()["assistance"]
    assert {t["id"] for t in ahead} == {overdue["id"], outgoing["id"], pending["id"]}
    assert api.as_("worker2", "GET", ME).json()["assistance"] == []
    listed = api.as_("sup_street", "GET", URL, params={"state": "overdue"}).json()["items"]
    assert {i["id"] for i in listed} >= {overdue["id"], outgoing["id"]} and pending["id"] not in {
        i["id"] for i in listed}

    # A late answer is still an answer: it leaves the tasks, marked late.
    answered = act(api, "worker1", overdue, "answer", {"finding": "differs"})
    assert (answered["state"], answered["late"]) == ("answered", True)
    left = {t["id"] for t in api.as_("worker1", "GET", ME).json()["assistance"]}
    assert left == {outgoing["id"]}
