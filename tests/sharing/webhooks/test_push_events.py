"""Coverage from the partner's jurisdiction (an endpoint never widens it), the old station told of a move out, and
the outflow city's own events (verifications, 婚育证明, assistance requests): each queued in the change's own
transaction, shaped by the outflow profile as the change feed shapes it, signed, delivered and entered in the
disclosure ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from app.core import events
from app.core.db import unit_of_work
from app.cycle.assistance.events import AssistanceAnswered, AssistanceSent
from app.cycle.assistance.models import AssistanceRequest
from app.cycle.verification.events import OutcomeRecorded
from app.cycle.verification.models import Verification
from app.ledger.outbox.models import OutboxEvent
from app.people.events import FpDocumentChanged
from app.people.models import FpDocument, Resident
from app.sharing.webhooks import delivery
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.assist_helpers import URL, act, draft, incoming, set_today, woman
from tests.cycle.verify_helpers import record, verifications
from tests.db import count, execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.people.rec_helpers import valid_doc
from tests.sharing.outflow_helpers import NEVER, OUTFLOW_FIELDS
from tests.sharing.partner_helpers import V1
from tests.sharing.webhooks.conftest import FAST, HOOKS
from tests.sharing.webhooks.receiver import Receiver

IDENTITY = {"id", "name", "sex", "birth_date", "id_number", "hukou_code"}  # an outflow city's identity group
OUTFLOW_EVENTS = ["resident.arrived", "verification.recorded", "fp_document.changed", "assistance.request_sent",
                  "assistance.answered"]


def hook(api: Api, receiver: Receiver, partner_id: str, event_types: list[str], **over: Any) -> dict[str, Any]:
    made = ok(api.as_("admin", "POST", HOOKS, json={"partner_user_id": partner_id, "url": receiver.url,
                                                    "event_types": event_types, **over}), 201)
    receiver.secret = made["secret"]
    return dict(made)


def queued(engine: Engine) -> list[tuple[str, str | None]]:
    return [(r["type"], r["subject_id"]) for r in rows(
        engine, "SELECT type, subject_id FROM outbox_events ORDER BY created_at, id")]


def received(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for body in receiver.processed.values()]


def test_coverage_is_the_jurisdiction_and_an_endpoint_cannot_widen_it(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str]) -> None:
    c1, c3 = world.community("c1"), world.community("c3")
    station = partner("police", division_ids=[c1["id"]])
    district = next(d for d in world.districts if c1["path"].startswith(d["path"]))
    # Wider than the jurisdiction (its district): accepted, but it covers the jurisdiction only.
    wide = hook(api, receiver, station, ["resident.arrived"], division_id=district["id"])
    assert wide["area_prefix"] == district["path"]
    assert_error(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": station, "url": receiver.url, "event_types": ["resident.arrived"],
        "division_id": c3["id"]}), 422, "webhook_coverage")  # outside the jurisdiction altogether
    assert_error(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": station, "url": receiver.url, "event_types": ["verification.recorded"]}), 422,
        "webhook_event_type")
    city = partner("outflow_city", hukou_prefix="4116")
    assert_error(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": city, "url": receiver.url, "event_types": ["resident.arrived"], "hukou_prefix": "4117"}),
        422, "webhook_coverage")
    assert_error(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": city, "url": receiver.url, "event_types": ["resident.moved_out"]}), 422,
        "webhook_event_type")
    unset = ok(api.as_("admin", "POST", V1 + "/sharing/clients", json={
        "client_id": "bare", "display_name": "bare", "kind": "police"}), 201)["user_id"]
    assert_error(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": unset, "url": receiver.url, "event_types": ["resident.arrived"]}), 422, "webhook_coverage")
    city_hook = hook(api, receiver, city, ["resident.arrived"], hukou_prefix="41")  # wider than 4116
    assert city_hook["hukou_prefix"] == "41"

    inside = register_resident(api, "worker1", dwelling_id(world, "c1", 1), hukou_code="411702",
                               id_number=id_number(seq="130", area="411702"))
    register_resident(api, "worker2", dwelling_id(world, "c2", 1), id_number=id_number(seq="132", area="411702"),
                      hukou_code="411702")  # the same district, outside the station's community
    theirs = register_resident(api, "worker3", dwelling_id(world, "c3", 1), hukou_code="411602",
                               id_number=id_number(seq="134", area="411602"))
    assert sorted(queued(engine)) == sorted([("resident.arrived", inside["id"]), ("resident.arrived", theirs["id"])])
    by_endpoint = {r["endpoint_id"]: r["subject_id"] for r in rows(engine, "SELECT * FROM outbox_events")}
    assert by_endpoint == {wide["id"]: inside["id"], city_hook["id"]: theirs["id"]}

    # The jurisdiction, changed by an admin, is followed at once; a disabled client hears nothing.
    client = ok(api.as_("admin", "GET", f"{V1}/sharing/clients/{station}"))
    ok(api.as_("admin", "PUT", f"{V1}/sharing/clients/{station}/jurisdiction", json={
        "version": client["version"], "division_ids": [world.community("c2")["id"]]}))
    register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="136", area="411702"),
                      hukou_code="411702")
    assert len(queued(engine)) == 2


def test_a_move_out_is_told_to_the_old_station_with_identity_only(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str]) -> None:
    old = partner("police", division_ids=[world.community("c1")["id"]])
    new = partner("police", division_ids=[world.community("c2")["id"]])
    old_hook = hook(api, receiver, old, ["resident.arrived", "resident.moved", "resident.moved_out"])
    new_hook = hook(api, receiver, new, ["resident.moved", "resident.moved_out"])
    receiver.secret = ""
    resident = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    moved = api.as_("admin", "POST", f"{V1}/residents/{resident['id']}/move", json={
        "version": resident["version"], "dwelling_id": dwelling_id(world, "c2", 1), "moved_on": "2026-10-01"})
    assert moved.status_code == 200, moved.text
    events_ = rows(engine, "SELECT type, endpoint_id, body FROM outbox_events ORDER BY created_at, id")
    assert [(e["type"], e["endpoint_id"]) for e in events_] == [
        ("resident.arrived", old_hook["id"]), ("resident.moved", new_hook["id"]),
        ("resident.moved_out", old_hook["id"])]
    out = json.loads(events_[2]["body"])
    assert set(out["resident"]) == IDENTITY | {"hukou_address"} and out["field_groups"] == ["identity"]
    assert out["resident"]["id"] == resident["id"] and "dwelling_address" not in out["resident"]
    # Delivered (the receiver checks the old station's signature on each), entered with identity only.
    receiver.secret = old_hook["secret"]
    execute(engine, "UPDATE webhook_endpoints SET active = :a WHERE id = :i", a=False, i=new_hook["id"])
    delivery.run(engine=engine, policy=FAST, once=True)
    assert [b["type"] for b in received(receiver)] == ["resident.arrived", "resident.moved_out"]
    assert receiver.refused == []
    ledger = rows(engine, "SELECT partner_id, field_groups FROM disclosures ORDER BY disclosed_at")
    assert {(r["partner_id"], r["field_groups"]) for r in ledger} == {(old, "identity,residence"), (old, "identity")}


def test_outflow_events_are_shaped_by_the_profile_signed_delivered_and_disclosed(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str]) -> None:
    city = partner("outflow_city", hukou_prefix="4116")
    hook(api, receiver, city, OUTFLOW_EVENTS)
    theirs = woman(api, world, "140")
    woman(api, world, "142", hukou="411702")  # another city's: nothing at all
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    [pending] = [v for v in verifications(api, "worker1") if v["resident_id"] == theirs["id"]]
    record(api, "worker1", pending, "PRESENT")
    doc = ok(api.as_("worker1", "POST", f"{V1}/residents/{theirs['id']}/fp-documents", json=valid_doc()), 201)
    doc = ok(api.as_("worker1", "PATCH", f"{V1}/fp-documents/{doc['id']}", json={
        "version": doc["version"], "number": "豫周婚育2024-000124"}))  # not a status change: no event
    ok(api.as_("worker1", "PATCH", f"{V1}/fp-documents/{doc['id']}", json={"version": doc["version"],
                                                                           "status": "expired"}))
    assert [t for t, _ in queued(engine)] == ["resident.arrived", "verification.recorded", "fp_document.changed",
                                              "fp_document.changed"]
    assert {s for _, s in queued(engine)} == {theirs["id"]}
    assert delivery.run(engine=engine, policy=FAST, once=True) == 4
    assert receiver.refused == [] and len(receiver.processed) == 4
    arrived, verified, recorded, changed = received(receiver)
    for body in (arrived, verified, recorded, changed):
        assert set(body["resident"]) <= OUTFLOW_FIELDS and not set(body["resident"]) & NEVER
    assert set(arrived["resident"]) == IDENTITY | {"residence_district_code", "residence_community", "arrival_date",
                                                   "status", "left_on"}  # no dwelling address or phone
    assert arrived["resident"]["residence_community"] == world.community("c1")["name"]
    assert set(verified["resident"]) == IDENTITY | {"verification_status", "verification_month"}
    assert (verified["resident"]["verification_status"], verified["resident"]["verification_month"]) == (
        "PRESENT", pending["month"])
    assert (recorded["resident"]["fp_document_status"], changed["resident"]["fp_document_status"]) == (
        "valid", "expired")
    assert set(changed["resident"]) == IDENTITY | {"fp_document_status"}
    ledger = rows(engine, "SELECT resident_id, partner_id, field_groups FROM disclosures")
    # One entry per person, group set and settling round (the two 婚育证明 events went out in one round).
    assert sorted(r["field_groups"] for r in ledger) == [
        "fp_document,identity", "identity,residence", "identity,verification"]
    assert {(r["resident_id"], r["partner_id"]) for r in ledger} == {(theirs["id"], city)}


def test_a_group_removed_from_the_profile_withholds_its_events(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str]) -> None:
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 1, "field_groups": ["identity", "verification"], "legal_basis": "x", "purpose": "y",
        "approval_required": False, "retention_days": 30}))
    hook(api, receiver, partner("outflow_city", hukou_prefix="4116"), OUTFLOW_EVENTS)
    theirs = woman(api, world, "144")  # no residence group: no arrival
    ok(api.as_("worker1", "POST", f"{V1}/residents/{theirs['id']}/fp-documents", json=valid_doc()), 201)
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    [pending] = [v for v in verifications(api, "worker1") if v["resident_id"] == theirs["id"]]
    record(api, "worker1", pending, "PRESENT")
    assert [t for t, _ in queued(engine)] == ["verification.recorded"]
    delivery.run(engine=engine, policy=FAST, once=True)
    [body] = received(receiver)
    assert "fp_document_status" not in body["resident"] and "residence_community" not in body["resident"]
    assert body["profile_version"] == 2 and body["field_groups"] == ["identity", "verification"]


def test_assistance_events_go_to_the_city_the_request_is_with(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))
    zhoukou = hook(api, receiver, partner("outflow_city", hukou_prefix="4116"), OUTFLOW_EVENTS)
    other = partner("outflow_city", hukou_prefix="4117")
    hook(api, receiver, other, OUTFLOW_EVENTS)
    receiver.secret = zhoukou["secret"]
    resident = woman(api, world, "146")
    sent = act(api, "worker1", draft(api, resident["id"]), "send")
    asked = incoming(api, resident["id_number"], "ZK-9", date(2026, 11, 5), topic="residence")
    [mine] = [r for r in ok(api.as_("worker1", "GET", URL, params={"direction": "incoming"}))["items"]
              if r["id"] == asked["id"]]
    act(api, "worker1", mine, "answer", {"finding": "confirmed"})
    types = [(r["type"], r["endpoint_id"]) for r in rows(
        engine, "SELECT type, endpoint_id FROM outbox_events WHERE type LIKE 'assistance.%' ORDER BY created_at")]
    assert types == [("assistance.request_sent", zhoukou["id"]), ("assistance.answered", zhoukou["id"])]
    assert count(engine, "outbox_events") == 3  # 周口's: the arrival, the request sent, the answer; 驻马店: none
    delivery.run(engine=engine, policy=FAST, once=True)
    bodies = {b["type"]: b for b in received(receiver)}
    assert bodies["assistance.request_sent"]["request"]["id"] == sent["id"]
    assert bodies["assistance.request_sent"]["resident"]["id_number"] == resident["id_number"]
    assert set(bodies["assistance.request_sent"]["resident"]) == IDENTITY
    assert (bodies["assistance.answered"]["request"]["state"], bodies["assistance.answered"]["request"]["finding"]) \
        == ("answered", "confirmed")
    assert "answer_note" not in bodies["assistance.answered"]["request"]
    ledger = {r["field_groups"] for r in rows(engine, "SELECT field_groups FROM disclosures")}
    assert "assistance,identity" in ledger


@pytest.mark.parametrize("kind", ["verification", "fp_document", "sent", "answered"])
def test_an_outflow_event_rolled_back_with_its_change_is_gone(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[..., str], kind: str) -> None:
    hook(api, receiver, partner("outflow_city", hukou_prefix="4116"), OUTFLOW_EVENTS)
    resident = woman(api, world, "148")
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    ok(api.as_("worker1", "POST", f"{V1}/residents/{resident['id']}/fp-documents", json=valid_doc()), 201)
    act(api, "worker1", draft(api, resident["id"]), "send")
    before = count(engine, "outbox_events")
    with pytest.raises(RuntimeError), unit_of_work(engine=engine) as session:
        person = session.get_one(Resident, resident["id"])
        request = session.execute(select(AssistanceRequest)).scalars().first()
        assert request is not None
        if kind == "verification":
            found = session.execute(select(Verification).where(Verification.resident_id == person.id)).scalar_one()
            found.outcome, found.month = "PRESENT", found.month
            events.emit(session, OutcomeRecorded(found, person))
        elif kind == "fp_document":
            doc = session.execute(select(FpDocument).where(FpDocument.resident_id == person.id)).scalars().one()
            events.emit(session, FpDocumentChanged(doc, person))
        elif kind == "sent":
            events.emit(session, AssistanceSent(request))
        else:
            request.direction = "incoming"
            events.emit(session, AssistanceAnswered(request))
        inside = session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()
        assert inside == before + 1  # queued in the change's transaction...
        raise RuntimeError("the change fails after its event was queued")
    assert count(engine, "outbox_events") == before  # ...and gone with it
