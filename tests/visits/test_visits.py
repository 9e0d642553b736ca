"""Recording visits through the HTTP API: who may, on whom, what is stored, every refusal, client ids."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import CITY_TZ, city_date
from tests.conftest import Api, World
from tests.db import count, execute, rows
from tests.factories import iso, post_visit, visit_body, visit_start
from tests.visits import API, VISITS, client_id, now, resident, visit_row

CONTRACEPTIVES = {"item_code": "contraceptives", "quantity": 2, "notes": ["refill", "at_home"]}
EDUCATION = {"item_code": "education", "quantity": 1}


def stored_counts(engine: Engine) -> tuple[int, int, int]:
    return count(engine, "visits"), count(engine, "service_deliveries"), count(engine, "tasks")


# --- recording ------------------------------------------------------------------------------------------


def test_record_in_person_visit_with_services(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    body = visit_body(who, purpose="key_person", notes=["fp_certificate_checked", "address_confirmed",
                                                        "address_confirmed"],
                      services=[CONTRACEPTIVES, EDUCATION])
    out = post_visit(api, body)
    assert out["resident_id"] == who["id"] and out["worker_id"] == world.users["worker1"]
    assert out["dwelling_id"] == who["dwelling_id"] and out["community_id"] == world.community("c1")["id"]
    assert out["catalog_version"] == 1 and out["flags"] == [] and out["distance_m"] == 0.0
    assert out["review_state"] == "submitted" and out["version"] == 1 and out["reviews"] == []
    assert out["notes"] == ["address_confirmed", "fp_certificate_checked"]
    assert {s["item_code"]: (s["quantity"], s["name_zh"]) for s in out["services"]} == {
        "contraceptives": (2, "免费发放避孕药具"), "education": (1, "宣传教育与咨询")}
    row = visit_row(engine, out["id"])
    assert row["area_path"] == who["area_path"] and row["district_code"] == world.community("c1")["district_code"]
    assert (row["lat"], row["lng"], row["coord_system"], row["provider"]) == (who["lat"], who["lng"], "wgs84", "gps")
    assert json.loads(row["notes"]) == ["address_confirmed", "fp_certificate_checked"]
    deliveries = rows(engine, "SELECT * FROM service_deliveries WHERE visit_id = :v ORDER BY item_code", v=out["id"])
    local_day = city_date(visit_start()).isoformat()
    assert [(d["item_code"], d["quantity"], json.loads(d["notes"]), str(d["delivered_on"]), d["resident_id"],
             d["area_path"]) for d in deliveries] == [
        ("contraceptives", 2, ["at_home", "refill"], local_day, who["id"], who["area_path"]),
        ("education", 1, [], local_day, who["id"], who["area_path"])]


def test_delivered_on_is_the_city_date(api: Api, world: World, engine: Engine) -> None:
    """23:30 UTC is already the next day in the city (UTC+8)."""
    start = (now() - timedelta(days=2)).replace(hour=23, minute=30, second=0, microsecond=0)
    out = post_visit(api, visit_body(resident(engine, world), started_at=iso(start),
                                     ended_at=iso(start + timedelta(minutes=10)), checkin=None,
                                     no_coordinates_reason="gps_unavailable", services=[EDUCATION]))
    assert out["services"][0]["delivered_on"] == (start.date() + timedelta(days=1)).isoformat()


def test_phone_visit_needs_no_checkin(api: Api, world: World, engine: Engine) -> None:
    out = post_visit(api, visit_body(resident(engine, world), mode="phone", checkin=None))
    assert out["checkin"] is None and out["distance_m"] is None and out["flags"] == []
    assert visit_row(engine, out["id"])["lat"] is None


@pytest.mark.parametrize(("user", "status"), [("admin", 403), ("auditor", 403), ("worker2", 404), ("worker3", 404),
                                              ("sup_other", 404), ("sup_street", 201), ("sup_district", 201)])
def test_who_may_record(api: Api, world: World, engine: Engine, user: str, status: int) -> None:
    before = stored_counts(engine)
    response = api.as_(user, "POST", VISITS, json=visit_body(resident(engine, world), services=[EDUCATION]))
    assert response.status_code == status, response.text
    if status == 201:
        assert visit_row(engine, response.json()["id"])["worker_id"] == world.users[user]
    else:
        assert stored_counts(engine) == before


def test_grid_worker_sees_only_their_grid(api: Api, world: World, engine: Engine) -> None:
    grid = world.grids[world.community("c1")["id"]][0]
    inside = rows(engine, "SELECT r.id, d.lat, d.lng FROM residents r JOIN dwellings d ON d.id = r.dwelling_id "
                          "WHERE r.area_path = :p AND r.status = 'REGISTERED' ORDER BY r.id", p=grid["path"])[0]
    outside = rows(engine, "SELECT r.id, d.lat, d.lng FROM residents r JOIN dwellings d ON d.id = r.dwelling_id "
                           "WHERE r.community_id = :c AND r.area_path <> :p AND r.status = 'REGISTERED' ORDER BY r.id",
                   c=world.community("c1")["id"], p=grid["path"])[0]
    post_visit(api, visit_body(inside), user="grid_worker")
    post_visit(api, visit_body(outside), user="grid_worker", status=404)


def test_merged_resident_is_visited_on_the_survivor(api: Api, world: World, engine: Engine) -> None:
    survivor, merged = resident(engine, world, skip=0), resident(engine, world, skip=1)
    execute(engine, "UPDATE residents SET status = 'ARCHIVED', merged_into_id = :s WHERE id = :m",
            s=survivor["id"], m=merged["id"])
    out = post_visit(api, visit_body(merged, services=[EDUCATION]))
    assert out["resident_id"] == survivor["id"]
    assert rows(engine, "SELECT resident_id FROM service_deliveries WHERE visit_id = :v",
                v=out["id"]) == [{"resident_id": survivor["id"]}]
    # The dwelling defaults to the survivor's.
    assert out["dwelling_id"] == survivor["dwelling_id"]


def test_survivor_outside_scope_is_404(api: Api, world: World, engine: Engine) -> None:
    far, merged = resident(engine, world, community="c3"), resident(engine, world)
    execute(engine, "UPDATE residents SET status = 'ARCHIVED', merged_into_id = :s WHERE id = :m",
            s=far["id"], m=merged["id"])
    before = stored_counts(engine)
    assert api.as_("worker1", "POST", VISITS, json=visit_body(merged)).status_code == 404
    assert stored_counts(engine) == before


def test_archived_resident_is_422(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    execute(engine, "UPDATE residents SET status = 'ARCHIVED' WHERE id = :r", r=who["id"])
    response = api.as_("worker1", "POST", VISITS, json=visit_body(who))
    assert (response.status_code, response.json()["code"]) == (422, "resident_not_active")
    assert count(engine, "visits") == 0


def test_left_resident_is_accepted(api: Api, world: World, engine: Engine) -> None:
    """A visit made before the resident left can arrive afterwards from an offline phone."""
    who = resident(engine, world, status="LEFT")
    out = post_visit(api, visit_body(who, outcome="moved_away", notes=["not_at_address", "neighbour_confirmed"]))
    assert out["outcome"] == "moved_away"


def test_explicit_dwelling_in_scope(api: Api, world: World, engine: Engine) -> None:
    who, other = resident(engine, world, skip=0), resident(engine, world, skip=5)
    assert who["dwelling_id"] != other["dwelling_id"]
    out = post_visit(api, visit_body(who, dwelling_id=other["dwelling_id"]))
    assert out["dwelling_id"] == other["dwelling_id"]
    assert out["distance_m"] > 0


def test_dwelling_outside_scope_is_404(api: Api, world: World, engine: Engine) -> None:
    far = resident(engine, world, community="c3")
    response = api.as_("worker1", "POST", VISITS,
                       json=visit_body(resident(engine, world), dwelling_id=far["dwelling_id"]))
    assert response.status_code == 404
    assert count(engine, "visits") == 0


def test_resident_without_dwelling(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    execute(engine, "UPDATE residents SET dwelling_id = NULL WHERE id = :r", r=who["id"])
    out = post_visit(api, visit_body(who))
    assert out["dwelling_id"] is None and out["distance_m"] is None and out["flags"] == ["dwelling_unlocated"]


# --- refusals ---------------------------------------------------------------------------------------------


def refusals(who: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    start = visit_start()
    naive = start.replace(tzinfo=None).isoformat()
    return [
        ("ended before started", visit_body(who, ended_at=iso(start - timedelta(seconds=1))), "visit_times_order"),
        ("too old", visit_body(who, started_at=iso(now() - timedelta(days=91)),
                               ended_at=iso(now() - timedelta(days=91) + timedelta(minutes=5))), "visit_too_old"),
        ("no check-in", visit_body(who, checkin=None), "checkin_required"),
        ("check-in and reason", visit_body(who, no_coordinates_reason="gps_unavailable"), "checkin_reason_conflict"),
        ("duplicate item", visit_body(who, services=[EDUCATION, {**EDUCATION, "quantity": 2}]),
         "duplicate_service_item"),
        ("duplicate client ids", visit_body(who, services=[{**EDUCATION, "id": "same-client-id-0001"},
                                                            {**CONTRACEPTIVES, "id": "same-client-id-0001"}]),
         "duplicate_client_id"),
        ("services without contact", visit_body(who, outcome="not_home", services=[EDUCATION]),
         "services_need_contact"),
        ("unknown item", visit_body(who, services=[{"item_code": "massage"}]), "service_item_unknown"),
        ("unknown catalogue", visit_body(who, catalog_version=999, services=[EDUCATION]), "catalog_version_unknown"),
        ("follow-up before the visit", visit_body(who, follow_up={
            "due_date": (city_date(start) - timedelta(days=1)).isoformat(), "reason": "not_home_retry"}),
         "follow_up_date_range"),
        ("follow-up too far", visit_body(who, follow_up={
            "due_date": (city_date(start) + timedelta(days=367)).isoformat(), "reason": "not_home_retry"}),
         "follow_up_date_range"),
        ("naive time", visit_body(who, started_at=naive), "validation_error"),
        ("latitude", visit_body(who, checkin={"lat": 91, "lng": 113.6}), "validation_error"),
        ("longitude", visit_body(who, checkin={"lat": 34.7, "lng": -180.5}), "validation_error"),
        ("free-text note", visit_body(who, notes=["她怀孕了"]), "validation_error"),
        ("quantity 0", visit_body(who, services=[{**EDUCATION, "quantity": 0}]), "validation_error"),
        ("quantity 101", visit_body(who, services=[{**EDUCATION, "quantity": 101}]), "validation_error"),
        ("short client id", visit_body(who, id="abc"), "validation_error"),
        ("client id characters", visit_body(who, id="visit_id_with_underscores"), "validation_error"),
        ("unknown field", visit_body(who, comment="free text"), "validation_error"),
        ("flag by client", visit_body(who, flags=[]), "validation_error"),
    ]


def test_every_refusal_has_its_code_and_writes_nothing(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    before = stored_counts(engine)
    for label, body, code in refusals(who):
        response = api.as_("worker1", "POST", VISITS, json=body)
        assert response.status_code == 422, (label, response.text)
        assert response.json()["code"] == code, (label, response.json())
        assert "她怀孕了" not in response.text
    assert stored_counts(engine) == before


def test_retired_item_valid_before_its_end_only(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    item = rows(engine, "SELECT id, version FROM service_items WHERE code = 'contraceptives'")[0]
    last_day = city_date(now()) - timedelta(days=10)
    retired = api.as_("admin", "POST", f"{API}/catalog/items/{item['id']}/retire",
                      json={"version": item["version"], "effective_to": last_day.isoformat(), "note": "test"})
    assert retired.status_code == 200, retired.text
    new_version = retired.json()["catalog_version"]
    earlier = now() - timedelta(days=12)
    for version in (1, new_version, None):
        old = visit_body(who, started_at=iso(earlier), ended_at=iso(earlier + timedelta(minutes=5)), checkin=None,
                         no_coordinates_reason="device_fault", services=[CONTRACEPTIVES], catalog_version=version)
        out = post_visit(api, old)
        assert out["catalog_version"] == (version or new_version)
    response = api.as_("worker1", "POST", VISITS, json=visit_body(who, services=[CONTRACEPTIVES]))
    assert (response.status_code, response.json()["code"]) == (422, "service_item_not_effective")
    assert count(engine, "visits") == 3


# --- client ids and retries -------------------------------------------------------------------------------


def test_retry_with_same_id_and_content_changes_nothing(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    vid, did = client_id(), client_id()
    body = visit_body(who, id=vid, services=[{**CONTRACEPTIVES, "id": did}],
                      follow_up={"due_date": city_date(now() + timedelta(days=7)).isoformat(),
                                 "reason": "deliver_service"})
    first = post_visit(api, body)
    assert first["id"] == vid and first["services"][0]["id"] == did
    stored = (visit_row(engine, vid), stored_counts(engine))
    again = post_visit(api, body, status=200)
    assert again == first
    assert (visit_row(engine, vid), stored_counts(engine)) == stored
    # The same instant written in another zone is the same content.
    started = datetime.fromisoformat(first["started_at"].replace("Z", "+00:00"))
    eight = {**body, "started_at": iso(started.astimezone(CITY_TZ))}
    assert post_visit(api, eight, status=200)["id"] == vid


@pytest.mark.parametrize("change", ["outcome", "started_at", "services", "mode", "resident", "worker"])
def test_same_id_other_content_is_409(api: Api, world: World, engine: Engine, change: str) -> None:
    who = resident(engine, world)
    vid = client_id()
    body = visit_body(who, id=vid, services=[EDUCATION])
    post_visit(api, body)
    before = (visit_row(engine, vid), stored_counts(engine))
    user = "worker1"
    if change == "outcome":
        body = {**body, "outcome": "refused", "services": []}
    elif change == "started_at":
        body = {**body, "started_at": iso(now() - timedelta(minutes=11))}
    elif change == "services":
        body = {**body, "services": [{**EDUCATION, "quantity": 3}]}
    elif change == "mode":
        body = {**body, "mode": "phone"}
    elif change == "resident":
        body = {**body, "resident_id": resident(engine, world, skip=1)["id"]}
    else:
        user = "sup_street"
    response = api.as_(user, "POST", VISITS, json=body)
    assert (response.status_code, response.json()["code"]) == (409, "visit_id_taken")
    assert (visit_row(engine, vid), stored_counts(engine)) == before


def test_delivery_id_taken_is_409(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    did = client_id()
    post_visit(api, visit_body(who, services=[{**EDUCATION, "id": did}]))
    before = stored_counts(engine)
    response = api.as_("worker1", "POST", VISITS, json=visit_body(who, services=[{**EDUCATION, "id": did}]))
    assert (response.status_code, response.json()["code"]) == (409, "delivery_id_taken")
    assert stored_counts(engine) == before


# --- tasks ---------------------------------------------------------------------------------------------------


def test_follow_up_task_created_then_completed(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    due = city_date(now()) + timedelta(days=7)
    first = post_visit(api, visit_body(who, outcome="not_home", notes=["at_work"],
                                       follow_up={"due_date": due.isoformat(), "reason": "not_home_retry"}))
    assert len(first["tasks_created"]) == 1 and first["tasks_completed"] == []
    task_id = first["tasks_created"][0]
    task = rows(engine, "SELECT * FROM tasks WHERE id = :t", t=task_id)[0]
    assert (task["kind"], task["state"], str(task["due_date"]), task["reason"], task["source_visit_id"]) == (
        "follow_up", "open", due.isoformat(), "not_home_retry", first["id"])
    start = max(now() - timedelta(minutes=3), visit_start() + timedelta(seconds=30))  # after the first, today
    second = post_visit(api, visit_body(who, purpose="follow_up", started_at=iso(start),
                                        ended_at=iso(start + timedelta(minutes=2))))
    assert task_id in second["tasks_completed"]
    task = rows(engine, "SELECT state, completed_by_visit_id FROM tasks WHERE id = :t", t=task_id)[0]
    assert task == {"state": "done", "completed_by_visit_id": second["id"]}
    shown = api.as_("worker1", "GET", f"{VISITS}/{second['id']}").json()
    assert task_id in shown["tasks_completed"]


def test_visit_without_contact_completes_nothing(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    execute(engine, "UPDATE residents SET key_person = :t WHERE id = :r", t=True, r=who["id"])
    month = city_date(visit_start()).strftime("%Y-%m")
    generated = api.as_("sup_street", "POST", f"{API}/tasks/generate", json={"month": month})
    assert generated.status_code == 200, generated.text
    assert rows(engine, "SELECT state FROM tasks WHERE resident_id = :r AND kind = 'key_person_monthly'",
                r=who["id"]) == [{"state": "open"}]
    out = post_visit(api, visit_body(who, outcome="refused", purpose="key_person"))
    assert out["tasks_completed"] == []
    met = post_visit(api, visit_body(who, purpose="key_person"))
    assert len(met["tasks_completed"]) == 1


# --- immutability ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_no_route_changes_a_visit(api: Api, world: World, engine: Engine, method: str) -> None:
    out = post_visit(api, visit_body(resident(engine, world), services=[EDUCATION]))
    before = visit_row(engine, out["id"])
    for user in ("worker1", "sup_street", "admin"):
        response = api.as_(user, method, f"{VISITS}/{out['id']}", json={"outcome": "refused", "version": 1})
        assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert visit_row(engine, out["id"]) == before


def test_error_classes_have_codes_and_both_languages(api: Api, world: World, engine: Engine) -> None:
    import re

    from app.core.errors import AppError
    from app.visits import errors

    classes = [obj for obj in vars(errors).values()
               if isinstance(obj, type) and issubclass(obj, AppError) and obj.__module__ == errors.__name__]
    assert len(classes) >= 8
    for cls in classes:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code) and 400 <= cls.status < 500, cls
        assert cls.en and not re.search(r"[\u4e00-\u9fff]", cls.en) and re.search(r"[\u4e00-\u9fff]", cls.zh), cls
    old = now() - timedelta(days=120)
    response = api.as_("worker1", "POST", VISITS, headers={"Accept-Language": "zh-CN"},
                       json=visit_body(resident(engine, world), started_at=iso(old), ended_at=iso(old)))
    assert response.json()["code"] == "visit_too_old" and response.json()["message"] == errors.VisitTooOld.zh
