"""Supervisor review and corrections: the only ways a recorded visit's story can change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, World
from tests.db import count, rows
from tests.factories import iso, post_visit, visit_body
from tests.visits import API, VISITS, client_id, now, resident, visit_row

EDUCATION = {"item_code": "education", "quantity": 1}
CONTRACEPTIVES = {"item_code": "contraceptives", "quantity": 3}
REVIEW_FIELDS = {"review_state", "reviewed_by", "reviewed_at", "review_reason", "version"}


def review(api: Api, visit_id: str, user: str = "sup_street", **body: Any) -> Any:
    payload = {"decision": "approve", "version": 1, **body}
    return api.as_(user, "POST", f"{VISITS}/{visit_id}/review", json=payload)


def correction(who: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = visit_body(who, **over)
    body.pop("resident_id")
    return {"correction_reason": "wrong_services", **body}


def correct(api: Api, visit_id: str, body: dict[str, Any], user: str = "worker1") -> Any:
    return api.as_(user, "POST", f"{VISITS}/{visit_id}/corrections", json=body)


# --- review -------------------------------------------------------------------------------------------------


def test_approve_changes_only_review_fields(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world), services=[EDUCATION]))
    before = visit_row(engine, visit["id"])
    deliveries = rows(engine, "SELECT * FROM service_deliveries ORDER BY id")
    response = review(api, visit["id"], reason="checked_ok", comment="已电话回访核实")
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["review_state"], out["reviewed_by"], out["review_reason"], out["version"]) == (
        "approved", world.users["sup_street"], "checked_ok", 2)
    after = visit_row(engine, visit["id"])
    changed = {k for k in before if before[k] != after[k]}
    assert changed == REVIEW_FIELDS
    assert rows(engine, "SELECT * FROM service_deliveries ORDER BY id") == deliveries
    history = rows(engine, "SELECT * FROM visit_reviews WHERE visit_id = :v", v=visit["id"])
    assert [(h["decision"], h["reason"], h["comment"], h["reviewed_by"]) for h in history] == [
        ("approved", "checked_ok", "已电话回访核实", world.users["sup_street"])]


def test_flag_then_approve_keeps_history(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)))
    missing = review(api, visit["id"], decision="flag")
    assert (missing.status_code, missing.json()["code"]) == (422, "review_reason_required")
    flagged = review(api, visit["id"], decision="flag", reason="location_mismatch")
    assert flagged.json()["review_state"] == "flagged"
    approved = review(api, visit["id"], user="sup_district", version=2, reason="checked_ok")
    assert approved.status_code == 200, approved.text
    out = api.as_("worker1", "GET", f"{VISITS}/{visit['id']}").json()
    assert out["review_state"] == "approved" and out["version"] == 3
    assert [(r["decision"], r["reason"], r["reviewed_by"]) for r in out["reviews"]] == [
        ("flagged", "location_mismatch", world.users["sup_street"]),
        ("approved", "checked_ok", world.users["sup_district"])]


def test_stale_version_is_409(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)))
    assert review(api, visit["id"]).status_code == 200
    before = visit_row(engine, visit["id"])
    stale = review(api, visit["id"], user="sup_district", decision="flag", reason="incomplete")
    assert (stale.status_code, stale.json()["code"], stale.json()["details"]) == (
        409, "stale_version", {"current_version": 2})
    assert visit_row(engine, visit["id"]) == before
    assert count(engine, "visit_reviews") == 1


@pytest.mark.parametrize(("user", "status", "code"), [
    ("worker1", 403, "forbidden"), ("grid_worker", 403, "forbidden"), ("auditor", 403, "forbidden"),
    ("sup_other", 404, "not_found"), ("admin", 200, None), ("sup_district", 200, None)])
def test_who_may_review(api: Api, world: World, engine: Engine, user: str, status: int, code: str | None) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)))
    response = review(api, visit["id"], user=user)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code
        assert visit_row(engine, visit["id"])["review_state"] == "submitted"
        assert count(engine, "visit_reviews") == 0


def test_supervisor_cannot_review_own_visit(api: Api, world: World, engine: Engine) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)), user="sup_street")
    own = review(api, visit["id"])
    assert (own.status_code, own.json()["code"]) == (403, "own_visit_review")
    assert count(engine, "visit_reviews") == 0
    assert review(api, visit["id"], user="sup_district").status_code == 200


@pytest.mark.parametrize("body", [{"comment": "x" * 301}, {"decision": "reject"}, {"reason": "she_is_pregnant"},
                                  {"version": 0}, {"state": "approved"}])
def test_review_input_is_validated(api: Api, world: World, engine: Engine, body: dict[str, Any]) -> None:
    visit = post_visit(api, visit_body(resident(engine, world)))
    response = review(api, visit["id"], **body)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert count(engine, "visit_reviews") == 0


# --- corrections -------------------------------------------------------------------------------------------------


def services_of(api: Api, resident_id: str) -> list[tuple[str, int, str]]:
    response = api.as_("worker1", "GET", f"{API}/residents/{resident_id}/services", params={"purpose": "visit"})
    assert response.status_code == 200, response.text
    return [(s["item_code"], s["quantity"], s["visit_id"]) for s in response.json()["items"]]


def test_author_corrects_and_original_is_superseded(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    original = post_visit(api, visit_body(who, services=[EDUCATION]))
    assert services_of(api, who["id"]) == [("education", 1, original["id"])]
    before = visit_row(engine, original["id"])
    response = correct(api, original["id"], correction(who, services=[CONTRACEPTIVES]))
    assert response.status_code == 201, response.text
    fixed = response.json()
    assert fixed["id"] != original["id"] and fixed["corrects_visit_id"] == original["id"]
    assert fixed["correction_reason"] == "wrong_services" and fixed["resident_id"] == who["id"]
    assert fixed["review_state"] == "submitted" and fixed["worker_id"] == world.users["worker1"]
    assert visit_row(engine, original["id"]) == before  # the original itself never changes
    shown = api.as_("worker1", "GET", f"{VISITS}/{original['id']}").json()
    assert shown["corrected_by_id"] == fixed["id"]
    listed = api.as_("worker1", "GET", f"{API}/residents/{who['id']}/visits").json()["items"]
    assert {v["id"]: v["corrected_by_id"] for v in listed} == {original["id"]: fixed["id"], fixed["id"]: None}
    # The superseded visit's deliveries leave the service history; its rows stay.
    assert services_of(api, who["id"]) == [("contraceptives", 3, fixed["id"])]
    assert count(engine, "service_deliveries") == 2


def test_a_visit_is_corrected_once(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    original = post_visit(api, visit_body(who))
    first = correct(api, original["id"], correction(who, outcome="refused", correction_reason="wrong_outcome"))
    assert first.status_code == 201
    again = correct(api, original["id"], correction(who))
    assert (again.status_code, again.json()["code"]) == (409, "already_corrected")
    assert again.json()["details"] == {"corrected_by_id": first.json()["id"]}
    newest = correct(api, first.json()["id"], correction(who, correction_reason="wrong_outcome"))
    assert newest.status_code == 201 and newest.json()["corrects_visit_id"] == first.json()["id"]
    assert count(engine, "visits") == 3


@pytest.mark.parametrize(("user", "status", "code"), [
    ("sup_street", 201, None), ("worker2", 404, "not_found"), ("sup_other", 404, "not_found"),
    ("admin", 403, "forbidden"), ("auditor", 403, "forbidden")])
def test_who_may_correct(api: Api, world: World, engine: Engine, user: str, status: int, code: str | None) -> None:
    who = resident(engine, world)
    original = post_visit(api, visit_body(who))
    response = correct(api, original["id"], correction(who), user=user)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code and count(engine, "visits") == 1
    else:
        assert response.json()["worker_id"] == world.users[user]


def test_another_worker_in_scope_is_not_the_author(api: Api, world: World, engine: Engine) -> None:
    grid = world.grids[world.community("c1")["id"]][0]
    who = rows(engine, "SELECT r.id, d.lat, d.lng FROM residents r JOIN dwellings d ON d.id = r.dwelling_id "
                       "WHERE r.area_path = :p AND r.status = 'REGISTERED' ORDER BY r.id", p=grid["path"])[0]
    original = post_visit(api, visit_body(who))
    assert api.as_("grid_worker", "GET", f"{VISITS}/{original['id']}").status_code == 200
    response = correct(api, original["id"], correction(who), user="grid_worker")
    assert (response.status_code, response.json()["code"]) == (403, "not_visit_author")
    assert count(engine, "visits") == 1


def test_correction_is_validated_like_a_visit(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    original = post_visit(api, visit_body(who))
    cases = [
        ({**correction(who), "resident_id": who["id"]}, "validation_error"),
        ({k: v for k, v in correction(who).items() if k != "correction_reason"}, "validation_error"),
        (correction(who, correction_reason="because"), "validation_error"),
        (correction(who, checkin=None), "checkin_required"),
        (correction(who, outcome="not_home", services=[EDUCATION]), "services_need_contact"),
        (correction(who, started_at=iso(now() - timedelta(days=100)),
                    ended_at=iso(now() - timedelta(days=100))), "visit_too_old"),
    ]
    for body, code in cases:
        response = correct(api, original["id"], body)
        assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert count(engine, "visits") == 1


def test_correction_retry_with_client_id(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    original = post_visit(api, visit_body(who))
    body = correction(who, id=client_id())
    first = correct(api, original["id"], body)
    assert first.status_code == 201
    retry = correct(api, original["id"], body)
    assert (retry.status_code, retry.json()) == (200, first.json())
    other = post_visit(api, visit_body(who))
    elsewhere = correct(api, other["id"], body)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (409, "visit_id_taken")
    # A new visit posted with a correction's id is not a retry either.
    as_new = api.as_("worker1", "POST", VISITS, json=visit_body(who, id=body["id"]))
    assert (as_new.status_code, as_new.json()["code"]) == (409, "visit_id_taken")
    assert count(engine, "visits") == 3
