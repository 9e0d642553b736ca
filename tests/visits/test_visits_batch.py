"""app/visits/batch.py `record_visits`: per-item results, exactly the good items written, audited and logged.

The batch is what sync push calls (its HTTP tests are in tests/sync); here it is called in-process, in a
unit of work as a request would run it, and the database is checked afterwards. POST /visits is the same
path with one item (tests/visits/test_visits.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from app.core import context
from app.core.actor import Actor, AreaScope, Role
from app.core.db import unit_of_work
from app.core.types import city_date
from app.visits.recording import ItemResult, VisitItem, record_visits
from app.visits.schemas import VisitCreate
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import iso, post_visit, visit_body, visit_start
from tests.visits import API, client_id, now, resident

EDUCATION = {"item_code": "education", "quantity": 1}
CONTRACEPTIVES = {"item_code": "contraceptives", "quantity": 2, "notes": ["refill"]}


@contextmanager
def acting(world: World, username: str, community: str) -> Iterator[Actor]:
    actor = Actor(world.users[username], username, Role.worker, "batch-test",
                  AreaScope((world.community(community)["path"],)))
    token = context.set_current(context.RequestContext(actor_id=actor.user_id, actor_role=actor.role.value))
    try:
        yield actor
    finally:
        context.reset(token)


def run(engine: Engine, world: World, bodies: list[dict[str, Any]], *, user: str = "worker1", community: str = "c1",
        lang: str = "en") -> list[ItemResult]:
    with acting(world, user, community) as actor, unit_of_work(engine=engine) as session:
        return record_visits(session, actor, [VisitItem(VisitCreate.model_validate(b)) for b in bodies], lang=lang)


def visits_of(engine: Engine, ids: list[str]) -> set[str]:
    found = rows(engine, "SELECT id FROM visits")
    return {r["id"] for r in found} & set(ids)


def audit_of(engine: Engine, action: str, ids: list[str]) -> dict[str, str]:
    found = rows(engine, "SELECT target_id, fields FROM audit_events WHERE action = :a", a=action)
    return {r["target_id"]: r["fields"] for r in found if r["target_id"] in ids}


def logged(engine: Engine, table: str, ids: list[str]) -> list[dict[str, Any]]:
    found = rows(engine, "SELECT record_id, area_path, op, seq FROM sync_log WHERE table_name = :t", t=table)
    return sorted((r for r in found if r["record_id"] in ids), key=lambda r: r["record_id"])


def test_mixed_batch_writes_exactly_the_good_items(api: Api, world: World, engine: Engine) -> None:
    who, other, far = resident(engine, world), resident(engine, world, skip=1), resident(engine, world, "c3")
    stored = post_visit(api, visit_body(who, id=client_id(), services=[EDUCATION]))
    replay = visit_body(who, id=stored["id"], started_at=stored["started_at"], ended_at=stored["ended_at"],
                        services=[EDUCATION])
    good_id, shared_delivery = client_id(), client_id()
    d1, d2 = client_id(), client_id()
    good = visit_body(who, id=good_id, services=[{**CONTRACEPTIVES, "id": d1}, {**EDUCATION, "id": d2}])
    bodies = [
        good,
        visit_body(far, id=client_id()),  # out of scope
        visit_body(other, id=client_id(), started_at=iso(now() - timedelta(days=120)),
                   ended_at=iso(now() - timedelta(days=120) + timedelta(minutes=5))),  # too old
        visit_body(other, id=client_id(), services=[{"item_code": "no_such_item"}]),  # not in the catalogue
        visit_body(other, id=client_id(), services=[{**EDUCATION, "id": d1}]),  # delivery id claimed above
        visit_body(other, id=client_id(), services=[{**EDUCATION, "id": stored["services"][0]["id"]}]),  # stored
        replay,  # a retry of the stored visit
        {**replay, "outcome": "refused", "services": []},  # another visit under the stored id
        good,  # the good item again in the same batch: a replay of it
        {**good, "mode": "phone"},  # the good item's id with other content
        visit_body(other, services=[{**EDUCATION, "id": shared_delivery}]),  # good, server id
        visit_body(other, id=client_id(), dwelling_id=world.dwellings[world.community("c3")["id"]][0]),
    ]
    before = {t: rows(engine, f"SELECT count(*) AS n FROM {t}")[0]["n"]  # noqa: S608
              for t in ("visits", "service_deliveries")}
    results = run(engine, world, bodies)

    assert [(r.status, r.code) for r in results] == [
        ("created", None), ("rejected", "not_found"), ("rejected", "visit_too_old"),
        ("rejected", "service_item_unknown"), ("rejected", "delivery_id_taken"), ("rejected", "delivery_id_taken"),
        ("unchanged", None), ("rejected", "visit_id_taken"), ("unchanged", None), ("rejected", "visit_id_taken"),
        ("created", None), ("rejected", "not_found")]
    assert results[0].id == good_id and results[0].delivery_ids == [d1, d2]
    assert results[6].id == stored["id"] and results[6].delivery_ids == [stored["services"][0]["id"]]
    assert results[8].delivery_ids == [d1, d2]
    assert results[3].details == {"codes": ["no_such_item"], "catalog_version": 1}
    assert results[1].message == "Not found." and results[11].details == {"field": "dwelling_id"}
    created = [results[0].id, results[10].id]
    assert len(results[10].id) == 32 and results[10].delivery_ids == [shared_delivery]

    # Exactly the good ones are stored, with what POST /visits would store.
    every = [r.id for r in results]
    assert visits_of(engine, every) == {*created, stored["id"]}
    after = {t: rows(engine, f"SELECT count(*) AS n FROM {t}")[0]["n"]  # noqa: S608
             for t in ("visits", "service_deliveries")}
    assert (after["visits"] - before["visits"], after["service_deliveries"] - before["service_deliveries"]) == (2, 3)
    row = rows(engine, "SELECT * FROM visits WHERE id = :v", v=good_id)[0]
    assert (row["resident_id"], row["worker_id"], row["area_path"], row["catalog_version"], row["flags"]) == (
        who["id"], world.users["worker1"], who["area_path"], 1, "[]")
    assert (row["review_state"], row["version"], row["distance_m"]) == ("submitted", 1, 0.0)
    deliveries = rows(engine, "SELECT * FROM service_deliveries WHERE visit_id = :v ORDER BY item_code", v=good_id)
    assert [(d["id"], d["item_code"], d["quantity"], json.loads(d["notes"]), str(d["delivered_on"]))
            for d in deliveries] == [
        (d1, "contraceptives", 2, ["refill"], city_date(visit_start()).isoformat()),
        (d2, "education", 1, [], city_date(visit_start()).isoformat())]

    # One audit event per written visit, naming its deliveries (ids and field names only, never values), and
    # the sync log for both tables.
    delivery_ids = [d1, d2, shared_delivery]
    visit_events = audit_of(engine, "visits.create", every)
    assert set(visit_events) == {*created, stored["id"]}
    names = visit_events[good_id].split(",")
    assert {"resident_id", "started_at", "lat", "flags", "service_deliveries.item_code",
            "service_deliveries.quantity", "service_deliveries.visit_id"} <= set(names)
    assert "reviewed_by" not in names and "service_deliveries.id" in names
    found = rows(engine, "SELECT target_id, detail FROM audit_events WHERE action = 'visits.create'")
    details = {r["target_id"]: json.loads(r["detail"]) for r in found if r["target_id"] in created}
    assert details == {good_id: {"service_deliveries": [d1, d2]},
                       results[10].id: {"service_deliveries": [shared_delivery]}}
    assert audit_of(engine, "service_deliveries.create", delivery_ids) == {}
    assert who["id"] not in visit_events[good_id]  # names, not values
    assert [(r["record_id"], r["op"], r["seq"] is not None) for r in logged(engine, "visits", created)] == sorted(
        (v, "upsert", True) for v in created)
    assert {r["record_id"] for r in logged(engine, "service_deliveries", delivery_ids)} == set(delivery_ids)
    assert {r["area_path"] for r in logged(engine, "service_deliveries", delivery_ids)} == {who["area_path"]}

    # What the batch wrote reads like any visit.
    shown = api.as_("worker1", "GET", f"{API}/visits/{good_id}")
    assert shown.status_code == 200 and {s["id"] for s in shown.json()["services"]} == {d1, d2}


def test_messages_follow_the_language(world: World, engine: Engine) -> None:
    far = resident(engine, world, "c3")
    results = run(engine, world, [visit_body(far, id=client_id())], lang="zh")
    assert (results[0].status, results[0].code, results[0].message) == ("rejected", "not_found", "未找到。")


def test_a_batch_of_rejects_writes_nothing(world: World, engine: Engine) -> None:
    who = resident(engine, world)
    archived = resident(engine, world, skip=2)
    execute(engine, "UPDATE residents SET status = 'ARCHIVED' WHERE id = :r", r=archived["id"])
    before = rows(engine, "SELECT (SELECT count(*) FROM visits) AS v, (SELECT count(*) FROM audit_events) AS a,"
                          " (SELECT count(*) FROM sync_log) AS s")
    results = run(engine, world, [
        visit_body(archived, id=client_id()),
        visit_body(who, id=client_id(), follow_up={"due_date": "2000-01-01", "reason": "other"}),
        visit_body(who, id=client_id(), catalog_version=999),
    ])
    assert [r.code for r in results] == ["resident_not_active", "follow_up_date_range", "catalog_version_unknown"]
    assert rows(engine, "SELECT (SELECT count(*) FROM visits) AS v, (SELECT count(*) FROM audit_events) AS a,"
                        " (SELECT count(*) FROM sync_log) AS s") == before


def test_batch_visits_complete_and_create_tasks_in_order(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    execute(engine, "UPDATE residents SET key_person = :t WHERE id = :r", t=True, r=who["id"])
    month = city_date(visit_start()).strftime("%Y-%m")
    assert api.as_("sup_street", "POST", f"{API}/tasks/generate", json={"month": month}).status_code == 200
    monthly = rows(engine, "SELECT id FROM tasks WHERE resident_id = :r AND kind = 'key_person_monthly'",
                   r=who["id"])[0]["id"]
    start = now() - timedelta(minutes=40)
    due = (city_date(start) + timedelta(days=7)).isoformat()
    asks = visit_body(who, id=client_id(), outcome="not_home", started_at=iso(start),
                      ended_at=iso(start + timedelta(minutes=5)), follow_up={"due_date": due, "reason": "other"})
    meets = visit_body(who, id=client_id(), purpose="key_person")  # later: completes the month and the follow-up
    again = visit_body(who, id=client_id(), purpose="key_person")
    results = run(engine, world, [asks, meets, again])
    assert [r.status for r in results] == ["created"] * 3
    tasks = rows(engine, "SELECT id, kind, state, completed_by_visit_id, source_visit_id FROM tasks "
                         "WHERE resident_id = :r ORDER BY kind", r=who["id"])
    follow = next(t for t in tasks if t["kind"] == "follow_up")
    assert (follow["source_visit_id"], follow["state"], follow["completed_by_visit_id"]) == (
        asks["id"], "done", meets["id"])
    month_task = next(t for t in tasks if t["id"] == monthly)
    assert (month_task["state"], month_task["completed_by_visit_id"]) == ("done", meets["id"])
    shown = api.as_("worker1", "GET", f"{API}/visits/{meets['id']}").json()
    assert sorted(shown["tasks_completed"]) == sorted([monthly, follow["id"]])
    assert api.as_("worker1", "GET", f"{API}/visits/{asks['id']}").json()["tasks_created"] == [follow["id"]]
    assert audit_of(engine, "tasks.update", [monthly, follow["id"]]).keys() == {monthly}
    # The follow-up was created and completed in one flush: one create event naming the completion.
    assert "completed_by_visit_id" in audit_of(engine, "tasks.create", [follow["id"]])[follow["id"]].split(",")
    assert {r["record_id"] for r in logged(engine, "tasks", [monthly, follow["id"]])} == {monthly, follow["id"]}


def test_a_follow_up_is_done_at_once_by_an_earlier_batch_visit(world: World, engine: Engine) -> None:
    """As when posted one by one: a visit earlier in the batch but later in time completes the follow-up
    a later item asks for; a later item's visit does not count as stored."""
    who = resident(engine, world)
    start = now() - timedelta(minutes=50)
    due = (city_date(start) + timedelta(days=7)).isoformat()
    first = visit_body(who, id=client_id())  # started ten minutes ago
    asks = visit_body(who, id=client_id(), outcome="not_home", started_at=iso(start),
                      ended_at=iso(start + timedelta(minutes=5)), follow_up={"due_date": due, "reason": "other"})
    results = run(engine, world, [first, asks])
    assert [r.status for r in results] == ["created", "created"]
    follow = rows(engine, "SELECT state, completed_by_visit_id FROM tasks WHERE source_visit_id = :v",
                  v=asks["id"])
    assert follow == [{"state": "done", "completed_by_visit_id": first["id"]}]
