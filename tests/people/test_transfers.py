from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import IntegrityError

from app.core.types import city_today
from app.main import app
from app.people.models import TransferRequest
from tests.conftest import BACKEND, Api, World
from tests.db import audit_events, execute, rows
from tests.factories import dwelling_id, register_resident, resident_body
from tests.people.wf_helpers import RESIDENTS, listed, listed_ids

URL = "/api/v1/transfers"
TRANSFER_KEYS = {
    "id",
    "status",
    "side",
    "resident_id",
    "to_community_id",
    "to_dwelling_id",
    "requested_by",
    "decided_by",
    "reason",
    "created_at",
    "decided_at",
}


def request_transfer(api: Api, world: World, user: str = "worker3", community: str = "c3", **over: Any) -> str:
    """`user` registers an ID that worker1 already holds: 409 and a transfer request id."""
    response = api.as_(user, "POST", RESIDENTS, json=resident_body(dwelling_id(world, community), name="张 丽", **over))
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "resident_registered_elsewhere"
    return str(response.json()["details"]["transfer_request_id"])


def test_full_flow_accept_moves_the_resident(api: Api, world: World, engine: Engine) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    c3 = world.community("c3")
    target = world.dwellings[c3["id"]][0]

    response = api.as_("worker3", "POST", RESIDENTS, json=resident_body(dwelling_id(world, "c3"), name="张 丽"))
    assert response.status_code == 409
    body = response.json()
    # The requester learns that a transfer was opened, and nothing about the holder's record.
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "resident_registered_elsewhere"
    assert set(body["details"]) == {"transfer_request_id"}
    tid = body["details"]["transfer_request_id"]
    assert held["id"] not in response.text and world.community("c1")["id"] not in response.text
    same_id = rows(engine, "SELECT id FROM residents WHERE id_number = :n", n=held["id_number"])
    assert same_id == [{"id": held["id"]}]  # no second record

    incoming = [t for t in listed(api, "worker1", URL, direction="incoming") if t["id"] == tid]
    assert len(incoming) == 1
    item = incoming[0]
    assert set(item) == TRANSFER_KEYS
    assert (item["id"], item["status"], item["side"], item["resident_id"]) == (tid, "pending", "holder", held["id"])
    assert item["to_community_id"] == c3["id"] and item["to_dwelling_id"] is None

    outgoing = [t for t in listed(api, "worker3", URL, direction="outgoing") if t["id"] == tid]
    assert len(outgoing) == 1
    mine = outgoing[0]
    assert set(mine) == TRANSFER_KEYS
    assert (mine["side"], mine["resident_id"], mine["to_dwelling_id"]) == ("requester", None, target)
    assert held["id"] not in json.dumps(outgoing)
    assert tid not in listed_ids(api, "worker3", URL, direction="incoming")

    # Outsiders see nothing; the requester cannot decide for the holder.
    assert tid not in listed_ids(api, "worker2", URL)
    assert api.as_("worker2", "GET", f"{URL}/{tid}").status_code == 404
    assert api.as_("worker2", "POST", f"{URL}/{tid}/accept").status_code == 404
    assert api.as_("sup_other", "POST", f"{URL}/{tid}/accept").json()["code"] == "transfer_holder_only"
    denied = api.as_("worker3", "POST", f"{URL}/{tid}/accept")
    assert (denied.status_code, denied.json()["code"]) == (403, "transfer_holder_only")

    accepted = api.as_("worker1", "POST", f"{URL}/{tid}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["decided_by"] == world.users["worker1"]

    # The record has left worker1's scope and entered worker3's.
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{held['id']}").status_code == 404
    moved = api.as_("worker3", "GET", f"{RESIDENTS}/{held['id']}")
    assert moved.status_code == 200
    r = moved.json()
    assert (r["community_id"], r["dwelling_id"], r["version"], r["name"]) == (c3["id"], target, 2, "张丽")
    tenancies = rows(engine, "SELECT * FROM tenancies WHERE resident_id = :r ORDER BY move_in, move_out", r=held["id"])
    assert len(tenancies) == 2
    closed = next(t for t in tenancies if t["move_out"] is not None)
    current = next(t for t in tenancies if t["move_out"] is None)
    assert str(closed["move_out"]) == city_today().isoformat()
    assert (current["dwelling_id"], current["source"], str(current["move_in"])) == (
        target,
        "worker",
        city_today().isoformat(),
    )

    # Once accepted, the requester may know which record it was.
    assert api.as_("worker3", "GET", f"{URL}/{tid}").json()["resident_id"] == held["id"]

    # Only pending transfers can be decided.
    for user, action, payload in (
        ("worker1", "accept", None),
        ("worker1", "reject", {"reason": "x"}),
        ("worker3", "cancel", None),
    ):
        again = api.as_(user, "POST", f"{URL}/{tid}/{action}", json=payload)
        assert (again.status_code, again.json()["code"]) == (409, "transfer_not_pending"), action

    events = audit_events(engine, "transfer.accept")
    assert [e["target_id"] for e in events] == [tid]
    assert json.loads(events[0]["detail"]) == {"resident_id": held["id"]}
    assert events[0]["actor_id"] == world.users["worker1"]


def test_reject_needs_a_reason_and_keeps_the_record(api: Api, world: World, engine: Engine) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)
    for payload in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201}, {"reason": "ok", "extra": 1}):
        bad = api.as_("worker1", "POST", f"{URL}/{tid}/reject", json=payload)
        assert bad.status_code == 422, payload
    assert api.as_("worker3", "POST", f"{URL}/{tid}/reject", json={"reason": "不是"}).status_code == 403
    assert api.as_("worker2", "POST", f"{URL}/{tid}/reject", json={"reason": "不是"}).status_code == 404

    rejected = api.as_("worker1", "POST", f"{URL}/{tid}/reject", json={"reason": "本人仍在本社区居住"})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == ("rejected", "本人仍在本社区居住")
    seen = api.as_("worker3", "GET", f"{URL}/{tid}").json()
    assert (seen["status"], seen["reason"], seen["resident_id"]) == ("rejected", "本人仍在本社区居住", None)

    still = api.as_("worker1", "GET", f"{RESIDENTS}/{held['id']}").json()
    assert (still["community_id"], still["version"]) == (world.community("c1")["id"], 1)
    assert api.as_("worker1", "POST", f"{URL}/{tid}/accept").json()["code"] == "transfer_not_pending"
    assert audit_events(engine, "transfer.reject")[0]["target_id"] == tid
    # The reason text is kept on the request, not copied into the audit log.
    assert "本人仍在本社区居住" not in str(rows(engine, "SELECT * FROM audit_events"))

    # A later registration opens a fresh request.
    assert request_transfer(api, world) != tid


def test_requester_cancels(api: Api, world: World, engine: Engine) -> None:
    register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)
    # Registering again while it is pending finds the same request.
    assert request_transfer(api, world) == tid
    denied = api.as_("worker1", "POST", f"{URL}/{tid}/cancel")
    assert (denied.status_code, denied.json()["code"]) == (403, "transfer_requester_only")
    assert api.as_("worker2", "POST", f"{URL}/{tid}/cancel").status_code == 404
    assert api.as_("worker3", "POST", f"{URL}/{tid}/cancel", json={"reason": "x" * 201}).status_code == 422

    cancelled = api.as_("worker3", "POST", f"{URL}/{tid}/cancel", json={"reason": "登记错误"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = api.as_("worker1", "POST", f"{URL}/{tid}/accept")
    assert (again.status_code, again.json()["code"]) == (409, "transfer_not_pending")
    assert audit_events(engine, "transfer.cancel")[0]["target_id"] == tid

    # Cancelling needs no body at all.
    tid2 = request_transfer(api, world)
    assert api.as_("worker3", "POST", f"{URL}/{tid2}/cancel").json()["status"] == "cancelled"


def test_who_sees_what(api: Api, world: World) -> None:
    register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)

    def sees(user: str, **params: str) -> bool:
        return tid in listed_ids(api, user, URL, **params)

    assert sees("sup_street", direction="incoming") and not sees("sup_street", direction="outgoing")
    assert sees("sup_district")
    assert sees("sup_other", direction="outgoing") and not sees("sup_other", direction="incoming")
    assert not sees("worker2")
    assert sees("admin", status="pending") and not sees("admin", status="accepted")
    admin_view = api.as_("admin", "GET", f"{URL}/{tid}").json()
    assert admin_view["side"] == "both" and admin_view["resident_id"] and admin_view["to_dwelling_id"]
    assert api.as_("auditor", "GET", URL).status_code == 403
    assert api.as_("auditor", "POST", f"{URL}/{tid}/accept").status_code == 403
    assert api.as_("worker1", "GET", URL, params={"direction": "sideways"}).status_code == 422
    assert api.as_("worker1", "GET", URL, params={"status": "done"}).status_code == 422
    assert api.as_("worker1", "GET", f"{URL}/nope").status_code == 404
    assert api.as_("worker1", "POST", f"{URL}/nope/accept").status_code == 404

    # A supervisor above the holding community can decide.
    assert api.as_("sup_district", "POST", f"{URL}/{tid}/accept").json()["status"] == "accepted"


def test_accept_after_the_holder_marked_the_person_left(api: Api, world: World, engine: Engine) -> None:
    """The holder learns the person left (to the requester's community): accepting hands the record over and
    registers it again there, from the arrival date the requester gave."""
    held = register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world, arrival_date="2026-03-02")
    left = api.as_(
        "worker1",
        "POST",
        f"{RESIDENTS}/{held['id']}/leave",
        json={"version": 1, "left_on": "2026-02-01", "reason": "moved_within_city"},
    )
    assert left.status_code == 200, left.text
    accepted = api.as_("worker1", "POST", f"{URL}/{tid}/accept")
    assert accepted.status_code == 200, accepted.text
    now = api.as_("worker3", "GET", f"{RESIDENTS}/{held['id']}").json()
    target = world.dwellings[world.community("c3")["id"]][0]
    assert (now["status"], now["dwelling_id"], now["arrival_date"], now["left_on"]) == (
        "REGISTERED", target, "2026-03-02", None)
    current = rows(engine, "SELECT * FROM tenancies WHERE resident_id = :r AND move_out IS NULL", r=held["id"])
    assert [(t["dwelling_id"], str(t["move_in"])) for t in current] == [(target, "2026-03-02")]


def test_accept_after_the_record_moved_away_is_stale(api: Api, world: World) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)
    c2_dwelling = world.dwellings[world.community("c2")["id"]][0]
    moved = api.as_("sup_street", "POST", f"{RESIDENTS}/{held['id']}/move",
                    json={"version": 1, "dwelling_id": c2_dwelling, "moved_on": "2026-02-01"})
    assert moved.status_code == 200, moved.text
    stale = api.as_("worker1", "POST", f"{URL}/{tid}/accept")
    assert (stale.status_code, stale.json()["code"]) == (409, "transfer_stale")
    assert api.as_("worker2", "GET", f"{RESIDENTS}/{held['id']}").json()["version"] == 2
    # The holder can still close it.
    assert api.as_("worker1", "POST", f"{URL}/{tid}/reject", json={"reason": "已迁走"}).status_code == 200


def test_other_pending_requests_follow_the_person(api: Api, world: World, engine: Engine) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    from_c3 = request_transfer(api, world, "worker3", "c3")
    from_c2 = request_transfer(api, world, "worker2", "c2")
    assert api.as_("worker1", "POST", f"{URL}/{from_c3}/accept").status_code == 200

    # worker2's request now goes to the new holder, c3.
    assert api.as_("worker1", "GET", f"{URL}/{from_c2}").status_code == 404
    view = api.as_("worker3", "GET", f"{URL}/{from_c2}").json()
    assert (view["side"], view["status"], view["resident_id"]) == ("holder", "pending", held["id"])
    assert api.as_("worker3", "POST", f"{URL}/{from_c2}/accept").status_code == 200
    assert api.as_("worker2", "GET", f"{RESIDENTS}/{held['id']}").json()["community_id"] == world.community("c2")["id"]
    assert rows(engine, "SELECT count(*) AS n FROM tenancies WHERE resident_id = :r", r=held["id"])[0]["n"] == 3


def test_accept_when_the_requested_dwelling_was_retired(api: Api, world: World, engine: Engine) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)
    target = world.dwellings[world.community("c3")["id"]][0]
    execute(engine, "UPDATE dwellings SET active = :f WHERE id = :d", f=False, d=target)
    gone = api.as_("worker1", "POST", f"{URL}/{tid}/accept")
    assert (gone.status_code, gone.json()["code"]) == (409, "transfer_dwelling_unavailable")
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{held['id']}").json()["version"] == 1
    assert api.as_("worker1", "GET", f"{URL}/{tid}").json()["status"] == "pending"


def _pending_row(held: dict[str, Any], world: World, **over: Any) -> dict[str, Any]:
    c3 = world.community("c3")
    return {"id": uuid.uuid4().hex, "resident_id": held["id"], "from_area_path": world.community("c1")["path"],
            "to_community_id": c3["id"], "to_area_path": c3["path"], "to_dwelling_id": world.dwellings[c3["id"]][0],
            "district_code": c3["district_code"], "requested_by": world.users["worker3"], "status": "pending",
            "created_at": datetime.now(UTC), **over}


def test_one_open_request_per_person_and_community_in_the_database(api: Api, world: World, engine: Engine) -> None:
    held = register_resident(api, "worker1", dwelling_id(world))
    tid = request_transfer(api, world)
    table = TransferRequest.__table__  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(table).values(**_pending_row(held, world)))
    # Closed requests of the pair may be many; another community may ask at the same time.
    with engine.begin() as conn:
        conn.execute(insert(table).values(**_pending_row(held, world, status="cancelled")))
        conn.execute(insert(table).values(**_pending_row(held, world, status="rejected")))
        c2 = world.community("c2")
        conn.execute(insert(table).values(**_pending_row(held, world, to_community_id=c2["id"],
                                                         to_area_path=c2["path"], to_dwelling_id=None)))
    assert request_transfer(api, world) == tid


def test_a_registration_racing_another_answers_with_its_request(api: Api, world: World, engine: Engine) -> None:
    """Another registration's request is written but not committed when this one looks for an open request:
    the index makes this one wait, then it answers with the other's request instead of opening a second."""
    held = register_resident(api, "worker1", dwelling_id(world))
    raced = _pending_row(held, world)
    headers = api.headers("worker3")
    answers: list[Any] = []

    def register_in_c3() -> None:
        with TestClient(app) as client:
            body = resident_body(dwelling_id(world, "c3"), name="张丽")
            answers.append(client.post(RESIDENTS, headers=headers, json=body))

    thread = threading.Thread(target=register_in_c3)
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(insert(TransferRequest.__table__).values(**raced))  # type: ignore[attr-defined]
        thread.start()
        if BACKEND == "postgresql":  # commit once the registration waits on the index entry
            waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            with engine.connect() as watcher:
                while watcher.execute(waiting).scalar_one() == 0 and thread.is_alive():
                    watcher.rollback()  # pg_stat_activity is a snapshot taken once per transaction
                    threading.Event().wait(0.02)
        transaction.commit()
    thread.join()
    assert (answers[0].status_code, answers[0].json()) == (409, {
        "code": "resident_registered_elsewhere", "message": answers[0].json()["message"],
        "details": {"transfer_request_id": raced["id"]}})
    pending = rows(engine, "SELECT id FROM transfer_requests WHERE status = 'pending'")
    assert pending == [{"id": raced["id"]}]
