"""Push delivery end to end: a change queues an event in its own transaction, the worker POSTs it signed to a real
receiver, retries failures, dead-letters after N tries, an admin redelivers, and each delivered record enters the
resident's disclosure ledger once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from app.core import events
from app.core.db import unit_of_work
from app.ledger.outbox.models import OutboxEvent
from app.ledger.outbox.service import Policy, claim, settle
from app.people.events import ResidentLeft
from app.people.models import Resident
from app.sharing.webhooks import delivery
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, count, execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.sharing.webhooks.conftest import FAST, HOOKS
from tests.sharing.webhooks.receiver import Receiver

# The police profile's identity and residence groups (app/sharing/profiles/rules.py).
IDENTITY_AND_RESIDENCE = {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "hukou_address",
                          "dwelling_address", "arrival_date", "status", "left_on", "residence_permit_no"}


def deliver(engine: Engine) -> int:
    return delivery.run(engine=engine, policy=FAST, once=True)


def events_of(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, "SELECT id, type, endpoint_id, subject_id, state, attempts, last_status, last_error "
                        "FROM outbox_events ORDER BY created_at, id")


def attempts(api: Api, hook: dict[str, Any], event_id: str) -> list[dict[str, Any]]:
    return list(ok(api.as_("admin", "GET", f"{HOOKS}/{hook['id']}/events/{event_id}/deliveries"))["items"])


def test_an_arrival_is_pushed_signed_to_the_covering_partner_and_disclosed(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook()
    near = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    register_resident(api, "worker3", dwelling_id(world, "c3", 1), id_number=id_number(seq="120"))  # not covered
    [queued] = events_of(engine)
    assert (queued["type"], queued["subject_id"], queued["state"]) == ("resident.arrived", near["id"], "pending")

    receiver.probe = engine.pool.checkedout  # type: ignore[attr-defined]
    assert deliver(engine) == 1
    assert receiver.probed == [0]  # the worker held no connection while the request was out
    assert list(receiver.processed) == [queued["id"]] and receiver.refused == []
    sent = json.loads(receiver.processed[queued["id"]])
    assert (sent["id"], sent["type"]) == (queued["id"], "resident.arrived")
    assert set(sent["resident"]) == IDENTITY_AND_RESIDENCE  # the profile: no phone, health, visits or services
    assert (sent["resident"]["id"], sent["resident"]["id_number"]) == (near["id"], near["id_number"])
    [after] = events_of(engine)
    assert (after["state"], after["attempts"], after["last_status"]) == ("delivered", 1, 200)
    [attempt] = attempts(api, hook, queued["id"])
    assert (attempt["status_code"], attempt["outcome"], attempt["error"]) == (200, "delivered", None)

    # The delivered record is in the resident's disclosure ledger, shown in the dossier.
    [entry] = rows(engine, "SELECT resident_id, partner_kind, partner_id, field_groups FROM disclosures")
    assert entry == {"resident_id": near["id"], "partner_kind": "police", "partner_id": hook["partner_user_id"],
                     "field_groups": "identity,residence"}
    dossier = ok(api.as_("worker1", "GET", f"/api/v1/residents/{near['id']}/dossier"))
    assert [d["partner_kind"] for d in dossier["disclosures"]] == ["police"]
    assert len(audit_events(engine, "sharing.push")) == 1
    assert near["id_number"] not in all_audit_text(engine) and near["name"] not in all_audit_text(engine)
    assert deliver(engine) == 0  # nothing is sent twice


def test_an_outflow_city_hears_of_its_own_registered_people(
        api: Api, world: World, engine: Engine, receiver: Receiver, partner: Callable[[str], str]) -> None:
    hook = ok(api.as_("admin", "POST", HOOKS, json={
        "partner_user_id": partner("outflow_city"), "url": receiver.url, "event_types": ["resident.arrived"],
        "hukou_prefix": "4116"}), 201)
    receiver.secret = hook["secret"]
    theirs = register_resident(api, "worker1", dwelling_id(world, "c1", 1), hukou_code="411602")
    register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="122", area="411702"),
                      hukou_code="411702")
    assert [e["subject_id"] for e in events_of(engine)] == [theirs["id"]]
    assert deliver(engine) == 1
    assert rows(engine, "SELECT partner_kind FROM disclosures") == [{"partner_kind": "outflow_city"}]


def test_moves_and_departures_are_pushed_in_order(api: Api, world: World, engine: Engine, receiver: Receiver,
                                                 police_hook: Callable[..., dict[str, Any]]) -> None:
    police_hook()
    resident = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    moved = ok(api.as_("worker1", "POST", f"/api/v1/residents/{resident['id']}/move", json={
        "version": resident["version"], "dwelling_id": dwelling_id(world, "c1", 2), "moved_on": "2026-10-01"}))
    ok(api.as_("worker1", "POST", f"/api/v1/residents/{resident['id']}/leave", json={
        "version": moved["version"], "left_on": "2026-11-01", "reason": "left_city"}))
    assert [e["type"] for e in events_of(engine)] == ["resident.arrived", "resident.moved", "resident.left"]
    assert deliver(engine) == 3
    bodies = [json.loads(body) for body in receiver.processed.values()]
    assert [b["type"] for b in bodies] == ["resident.arrived", "resident.moved", "resident.left"]
    assert bodies[2]["resident"]["status"] != "REGISTERED" and bodies[2]["resident"]["left_on"] == "2026-11-01"


def test_a_rolled_back_change_leaves_no_event(api: Api, world: World, engine: Engine,
                                              police_hook: Callable[..., dict[str, Any]]) -> None:
    police_hook()
    resident = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    assert count(engine, "outbox_events") == 1
    with pytest.raises(RuntimeError), unit_of_work(engine=engine) as session:
        events.emit(session, ResidentLeft(session.get_one(Resident, resident["id"])))
        queued = session.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()
        assert queued == 2  # queued in the change's transaction...
        raise RuntimeError("the change fails after its event was queued")
    assert count(engine, "outbox_events") == 1  # ...and gone with it


def test_failures_are_retried_with_the_same_id_and_the_receiver_dedupes(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    receiver.script = [500, 503]  # processed, but the acknowledgement is lost twice
    deliver(engine)
    [event] = events_of(engine)
    assert (event["state"], event["attempts"]) == ("delivered", 3)
    assert receiver.deliveries[event["id"]] == 3 and list(receiver.processed) == [event["id"]]
    assert receiver.duplicates() == 2
    log = attempts(api, hook, event["id"])
    assert [(a["attempt"], a["status_code"], a["error"], a["outcome"]) for a in log] == [
        (1, 500, "http_5xx", "retry"), (2, 503, "http_5xx", "retry"), (3, 200, None, "delivered")]
    assert count(engine, "disclosures") == 1  # entered once, when it was delivered


def test_dead_lettered_after_n_tries_then_redelivered_by_an_admin(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    receiver.script = [500, 500, 500]
    deliver(engine)
    dead = ok(api.as_("admin", "GET", f"{HOOKS}/{hook['id']}/events", params={"state": "dead"}))["items"]
    assert [(e["attempts"], e["last_status"], e["last_error"]) for e in dead] == [(3, 500, "http_5xx")]
    assert count(engine, "disclosures") == 0
    event_id = dead[0]["id"]
    again = ok(api.as_("admin", "POST", f"{HOOKS}/{hook['id']}/events/{event_id}/redeliver"))
    assert (again["state"], again["attempts"]) == ("pending", 0)
    assert len(audit_events(engine, "webhooks.redeliver", event_id)) == 1
    assert deliver(engine) == 1
    assert receiver.deliveries[event_id] == 4 and list(receiver.processed) == [event_id]
    assert [e["state"] for e in events_of(engine)] == ["delivered"] and count(engine, "disclosures") == 1
    assert_error(api.as_("admin", "POST", f"{HOOKS}/{hook['id']}/events/{event_id}/redeliver"), 409,
                 "webhook_event_not_dead")
    assert_error(api.as_("admin", "POST", f"{HOOKS}/{hook['id']}/events/{'0' * 32}/redeliver"), 404, "not_found")


def test_an_unreachable_or_slow_receiver_is_retried_then_dead(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    receiver.delay = 0.5
    with httpx.Client(timeout=0.1) as impatient:
        while delivery.deliver_due(impatient, engine=engine, policy=FAST):
            pass
    [event] = events_of(engine)
    assert (event["state"], event["attempts"], event["last_status"], event["last_error"]) == ("dead", 3, None,
                                                                                             "timeout")
    execute(engine, "UPDATE webhook_endpoints SET url = 'http://127.0.0.1:9/closed'")
    execute(engine, "UPDATE outbox_events SET state = 'pending', attempts = 0")
    deliver(engine)
    [event] = events_of(engine)
    assert (event["state"], event["last_error"]) == ("dead", "connect_error")


def test_an_inactive_endpoint_gets_nothing(api: Api, world: World, engine: Engine, receiver: Receiver,
                                           police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    ok(api.as_("admin", "PATCH", f"{HOOKS}/{hook['id']}", json={"version": 1, "active": False}))
    register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="124"))
    deliver(engine)
    [event] = events_of(engine)  # the second arrival queued nothing; the first is dead, unsent
    assert (event["state"], event["last_error"], event["attempts"]) == ("dead", "endpoint_gone", 1)
    assert receiver.deliveries == {} and count(engine, "disclosures") == 0


def test_a_failure_waits_its_backoff_and_a_claim_holds_its_lease(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    patient = Policy(max_attempts=5, backoff_seconds=60, backoff_max_seconds=3600, lease_seconds=60, batch_size=50)
    assert all(timedelta(seconds=30) <= patient.backoff(1) <= timedelta(seconds=60) for _ in range(50))
    assert all(timedelta(seconds=120) <= patient.backoff(3) <= timedelta(seconds=240) for _ in range(50))
    assert all(timedelta(seconds=1800) <= patient.backoff(30) <= timedelta(seconds=3600) for _ in range(50))
    police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    with unit_of_work(engine=engine) as session:
        token, claimed = claim(session, patient)
    with unit_of_work(engine=engine) as session:  # leased: another worker finds nothing due
        assert claim(session, patient)[1] == []
    receiver.script = [500]
    with httpx.Client() as client:
        outcome = delivery.send(client, claimed[0], delivery.Target(receiver.url, receiver.secret, "police", "x"))
    with unit_of_work(engine=engine) as session:
        assert settle(session, patient, token, claimed, [outcome]) == []
    [event] = events_of(engine)
    assert (event["state"], event["attempts"], event["last_error"]) == ("pending", 1, "http_5xx")
    with httpx.Client() as client:  # not due before its backoff has passed
        assert delivery.deliver_due(client, engine=engine, policy=patient) == 0


def test_an_attempt_that_cannot_even_be_made_is_that_attempts_failure() -> None:
    event = OutboxEvent(id="e" * 32, type="resident.arrived", endpoint_id="x", body="{}")
    with httpx.Client() as client:
        broken = delivery.send(client, event, delivery.Target("http://127.0.0.1:port/", "s", "police", "x"))
        gone = delivery.send(client, event, None)
    assert (broken.status, broken.error, broken.ok) == (None, "send_error", False)
    assert (gone.status, gone.error) == (None, "endpoint_gone")


def test_delivered_events_and_their_log_are_purged_after_the_keeping_time(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    police_hook()
    register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="126"))
    deliver(engine)
    old, recent = (e["id"] for e in events_of(engine))
    execute(engine, "UPDATE outbox_events SET delivered_at = :t WHERE id = :i",
            t=datetime.now(UTC) - timedelta(days=31), i=old)
    assert delivery.purge(engine=engine) == 1  # OUTBOX_KEEP_DAYS = 30
    assert [e["id"] for e in events_of(engine)] == [recent]
    assert [r["event_id"] for r in rows(engine, "SELECT event_id FROM outbox_deliveries")] == [recent]
    assert count(engine, "disclosures") == 2  # the ledger keeps its entries


def test_a_push_follows_the_profile_in_force(
        api: Api, world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]]) -> None:
    """Narrowed to identity, the event carries identity fields only and the ledger says so; while the profile
    requires a supervisor's approval of each disclosure, nothing is queued."""
    police_hook()
    profile = ok(api.as_("admin", "GET", "/api/v1/sharing/profiles/police"))
    kept = {key: profile[key] for key in ("legal_basis", "purpose", "retention_days")}
    ok(api.as_("admin", "PUT", "/api/v1/sharing/profiles/police", json={
        **kept, "version": profile["version"], "field_groups": ["identity"], "approval_required": False}))
    first = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    assert deliver(engine) == 1
    [sent] = [json.loads(body) for body in receiver.processed.values()]
    assert "dwelling_address" not in sent["resident"] and "arrival_date" not in sent["resident"]
    assert sent["resident"]["id_number"] == first["id_number"] and sent["profile_version"] == profile["version"] + 1
    assert rows(engine, "SELECT field_groups FROM disclosures") == [{"field_groups": "identity"}]

    ok(api.as_("admin", "PUT", "/api/v1/sharing/profiles/police", json={
        **kept, "version": profile["version"] + 1, "field_groups": ["identity"], "approval_required": True}))
    register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="128"))
    assert len(events_of(engine)) == 1  # the second arrival queued nothing
