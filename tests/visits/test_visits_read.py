"""Reading visits: one visit (audited), lists with filters, a resident's visits and service history (audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_date
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import iso, post_visit, visit_body
from tests.visits import API, BLIND_TO_C1, SEES_C1, VISITS, now, resident

EDUCATION = {"item_code": "education", "quantity": 1}


def audit(engine: Engine, action: str) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM audit_events WHERE action = :a ORDER BY id", a=action)


def started(days_ago: int, **over: Any) -> dict[str, Any]:
    start = now() - timedelta(days=days_ago, minutes=10)
    return {"started_at": iso(start), "ended_at": iso(start + timedelta(minutes=5)),
            "checkin": None, "no_coordinates_reason": "gps_unavailable", **over}


# --- one visit ----------------------------------------------------------------------------------------------


def test_get_visit_scope_and_audit(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world), services=[EDUCATION]))
    url = f"{VISITS}/{visit['id']}"
    for user in SEES_C1:
        response = api.as_(user, "GET", url, params={"purpose": "review"})
        assert response.status_code == 200, (user, response.text)
        assert response.json()["services"][0]["name_en"]
    for user in BLIND_TO_C1:
        assert api.as_(user, "GET", url).status_code == 404, user
    assert api.as_("auditor", "GET", url).status_code == 403
    reads = audit(engine, "visit.read")
    assert [(r["target_id"], r["fields"], r["purpose"]) for r in reads] == [
        (visit["id"], "checkin,services", "review")] * len(SEES_C1)
    assert {r["actor_id"] for r in reads} == {world.users[u] for u in SEES_C1}
    assert all(r["detail"] is None for r in reads)
    assert api.as_("worker1", "GET", f"{VISITS}/{'0' * 32}").status_code == 404


def test_default_purpose_and_bad_purpose(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)))
    assert api.as_("worker1", "GET", f"{VISITS}/{visit['id']}").status_code == 200
    assert audit(engine, "visit.read")[0]["purpose"] == "case_work"
    bad = api.as_("worker1", "GET", f"{VISITS}/{visit['id']}", params={"purpose": "Just Looking"})
    assert bad.status_code == 422


def test_visit_follows_its_resident_to_a_new_area(api: Api, world: World, engine: Engine) -> None:
    """After a move, the receiving community sees the resident's earlier visits; the old one keeps them."""
    who = resident(engine, world)
    visit = post_visit(api, visit_body(who, services=[EDUCATION]))
    url = f"{VISITS}/{visit['id']}"
    assert api.as_("worker2", "GET", url).status_code == 404
    c2 = world.community("c2")
    execute(engine, "UPDATE residents SET community_id = :c, area_path = :p WHERE id = :r",
            c=c2["id"], p=c2["path"], r=who["id"])
    assert api.as_("worker2", "GET", url).status_code == 200
    assert api.as_("worker1", "GET", url).status_code == 200
    history = api.as_("worker2", "GET", f"{API}/residents/{who['id']}/services", params={"purpose": "visit"})
    assert [s["visit_id"] for s in history.json()["items"]] == [visit["id"]]
    # Lists and reviews stay with the area the visit was recorded in.
    assert api.as_("worker2", "GET", VISITS, params={"resident_id": who["id"]}).json()["total"] == 0
    assert api.as_("worker1", "GET", VISITS, params={"resident_id": who["id"]}).json()["total"] == 1
    assert api.as_("worker1", "GET", f"{API}/residents/{who['id']}/visits").status_code == 404


# --- lists --------------------------------------------------------------------------------------------------


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [v["id"] for v in response.json()["items"]]


def test_list_filters_and_order(api: Api, world: World, engine: Engine) -> None:
    a, b = resident(engine, world, skip=0), resident(engine, world, skip=1)
    old = post_visit(api, visit_body(a, **started(2), mode="phone", purpose="key_person"))
    mid = post_visit(api, visit_body(b, **started(1), outcome="not_home"))
    new = post_visit(api, visit_body(a, checkin={"lat": a["lat"] + 0.01, "lng": a["lng"]}), user="sup_street")
    assert review(api, mid["id"]) == 200
    everything = ids(api.as_("worker1", "GET", VISITS))
    assert everything == [new["id"], mid["id"], old["id"]]
    mid_day = city_date(now() - timedelta(days=1, minutes=10)).isoformat()
    query = {
        (("resident_id", a["id"]),): [new["id"], old["id"]],
        (("worker_id", world.users["sup_street"]),): [new["id"]],
        (("community_id", world.community("c1")["id"]),): everything,
        (("community_id", world.community("c2")["id"]),): [],
        (("from", mid_day),): [new["id"], mid["id"]],
        (("to", mid_day),): [mid["id"], old["id"]],
        (("from", mid_day), ("to", mid_day)): [mid["id"]],
        (("review_state", "approved"),): [mid["id"]],
        (("review_state", "submitted"),): [new["id"], old["id"]],
        (("flagged", "true"),): [new["id"], mid["id"]],  # outside_radius; no_coordinates
        (("flagged", "false"),): [old["id"]],  # a phone call, within VISIT_LATE_HOURS
        (("mode", "phone"),): [old["id"]],
        (("purpose", "key_person"),): [old["id"]],
    }
    for params, expected in query.items():
        assert ids(api.as_("worker1", "GET", VISITS, params=dict(params))) == expected, params
    for user in BLIND_TO_C1:
        assert ids(api.as_(user, "GET", VISITS)) == [], user
    assert api.as_("auditor", "GET", VISITS).status_code == 403
    assert ids(api.as_("admin", "GET", VISITS)) == everything
    page = api.as_("worker1", "GET", VISITS, params={"limit": 1, "offset": 1}).json()
    assert (page["total"], [v["id"] for v in page["items"]]) == (3, [mid["id"]])
    item = api.as_("worker1", "GET", VISITS).json()["items"][0]
    assert "services" not in item and "checkin" not in item and item["flags"] == ["outside_radius"]


def review(api: Api, visit_id: str) -> int:
    return int(api.as_("sup_street", "POST", f"{VISITS}/{visit_id}/review",
                       json={"decision": "approve", "version": 1}).status_code)


@pytest.mark.parametrize(("query", "code"), [
    ("review_state=done", "validation_error"), ("mode=car", "validation_error"), ("flagged=maybe", "validation_error"),
    ("from=yesterday", "date_format"), ("to=0", "date_format"), ("from=20260501", "date_format"),
    ("resident_id=" + "x" * 33, "validation_error"),
])
def test_list_rejects_bad_filters(api: Api, query: str, code: str) -> None:
    response = api.as_("worker1", "GET", f"{VISITS}?{query}")
    assert (response.status_code, response.json()["code"]) == (422, code)


def test_resident_visits(api: Api, world: World, engine: Engine) -> None:
    who, other = resident(engine, world, skip=0), resident(engine, world, skip=1)
    first = post_visit(api, visit_body(who, **started(3)))
    second = post_visit(api, visit_body(who))
    post_visit(api, visit_body(other))
    url = f"{API}/residents/{who['id']}/visits"
    for user in SEES_C1:
        assert ids(api.as_(user, "GET", url)) == [second["id"], first["id"]], user
    for user in BLIND_TO_C1:
        assert api.as_(user, "GET", url).status_code == 404, user
    assert api.as_("auditor", "GET", url).status_code == 403


# --- service history ----------------------------------------------------------------------------------------


def test_service_history_is_audited_and_needs_a_purpose(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    older = post_visit(api, visit_body(who, **started(5), services=[{"item_code": "rh_checkup"}]))
    newer = post_visit(api, visit_body(who, services=[
        {"item_code": "contraceptives", "quantity": 2, "notes": ["first_time"]}, EDUCATION]))
    url = f"{API}/residents/{who['id']}/services"
    missing = api.as_("worker1", "GET", url)
    assert (missing.status_code, missing.json()["code"]) == (422, "validation_error")
    assert api.as_("worker1", "GET", url, params={"purpose": "curiosity"}).status_code == 422
    response = api.as_("worker1", "GET", url, params={"purpose": "service_delivery"})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["item_code"], i["visit_id"]) for i in items[2:]] == [("rh_checkup", older["id"])]
    assert {i["item_code"] for i in items[:2]} == {"contraceptives", "education"}
    first = next(i for i in items if i["item_code"] == "contraceptives")
    assert (first["quantity"], first["notes"], first["name_zh"], first["worker_id"], first["community_id"]) == (
        2, ["first_time"], "免费发放避孕药具", world.users["worker1"], world.community("c1")["id"])
    assert first["visit_id"] == newer["id"]
    reads = audit(engine, "resident.read.services")
    assert [(r["target_id"], r["purpose"], r["actor_id"]) for r in reads] == [
        (who["id"], "service_delivery", world.users["worker1"])]
    for user in BLIND_TO_C1:
        assert api.as_(user, "GET", url, params={"purpose": "visit"}).status_code == 404
    assert api.as_("auditor", "GET", url, params={"purpose": "visit"}).status_code == 403
    assert len(audit(engine, "resident.read.services")) == 1
