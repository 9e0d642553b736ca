"""Access review: who read which sensitive records; each kind of unusual read is marked, usual reads are
not; the review and its CSV and XLSX exports are recorded."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.types import CITY_TZ, city_today
from tests.audit.conftest import raw_rows
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import post_visit, visit_body
from tests.visits import resident

ACCESS = "/api/v1/audit/access"
TODAY = {"from": city_today().isoformat(), "to": city_today().isoformat()}


@pytest.fixture(autouse=True)
def all_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whenever the suite runs, the whole day counts as working hours (the off-hours test narrows them)."""
    monkeypatch.setattr(get_settings(), "work_start_hour", 0)
    monkeypatch.setattr(get_settings(), "work_end_hour", 24)


def people(engine: Engine, world: World, n: int = 4) -> list[dict[str, Any]]:
    found = [resident(engine, world, skip=i) for i in range(n)]
    for who in found:
        who["id_number"] = rows(engine, "SELECT id_number FROM residents WHERE id = :r", r=who["id"])[0]["id_number"]
    return found


def read(api: Api, who: dict[str, Any], user: str = "worker1") -> None:
    assert api.as_(user, "GET", f"/api/v1/residents/{who['id']}").status_code == 200


def lookup(api: Api, who: dict[str, Any], user: str = "worker1") -> None:
    response = api.as_(user, "GET", "/api/v1/residents", params={"id_number": who["id_number"]})
    assert response.status_code == 200 and response.json()["total"] == 1, response.text


def review(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.as_("auditor", "GET", ACCESS, params={**TODAY, "limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_usual_reads_are_not_marked(api: Api, engine: Engine, world: World) -> None:
    p = people(engine, world)
    read(api, p[0])
    read(api, p[1], user="sup_street")
    assert api.as_("worker1", "GET", f"/api/v1/residents/{p[0]['id']}/health",
                   params={"purpose": "visit"}).status_code == 200
    found = review(api)
    assert [(r["action"], r["target_id"], r["actor_username"]) for r in found] == [
        ("resident.read.health", p[0]["id"], "worker1"), ("resident.read.identity", p[1]["id"], "sup_street"),
        ("resident.read.identity", p[0]["id"], "worker1")]
    assert all(r["unusual"] == [] for r in found) and found[0]["area_path"] == p[0]["area_path"]
    assert review(api, unusual="any") == []


def test_outside_the_usual_area(api: Api, engine: Engine, world: World) -> None:
    p = people(engine, world)
    read(api, p[0])
    # worker1 is moved to the neighbour community: what they read in c1 lies outside their usual area now.
    uid = world.users["worker1"]
    user = api.as_("admin", "GET", f"/api/v1/users/{uid}").json()
    moved = api.as_("admin", "PATCH", f"/api/v1/users/{uid}", json={
        "version": user["version"], "division_ids": [world.community("c2")["id"]]})
    assert moved.status_code == 200, moved.text
    read(api, p[1], user="sup_street")
    found = {(r["actor_username"], r["target_id"]): r["unusual"] for r in review(api)}
    assert found == {("worker1", p[0]["id"]): ["outside_area"], ("sup_street", p[1]["id"]): []}
    assert [r["target_id"] for r in review(api, unusual="outside_area")] == [p[0]["id"]]


def test_bulk_reads(api: Api, engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "access_bulk_reads", 3)
    p = people(engine, world)
    for who in p[:3]:
        read(api, who)
    for who in p[:2]:
        read(api, who, user="sup_street")
    found = review(api)
    assert {r["actor_username"] for r in found if r["unusual"] == ["bulk"]} == {"worker1"}
    assert len([r for r in found if r["unusual"] == ["bulk"]]) == 3
    assert all(r["unusual"] == [] for r in found if r["actor_username"] == "sup_street")


def test_off_hours(api: Api, engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    p = people(engine, world)
    hour = datetime.now(CITY_TZ).hour
    read(api, p[0])  # inside working hours (all day)
    monkeypatch.setattr(get_settings(), "work_start_hour", (hour + 1) % 24)
    monkeypatch.setattr(get_settings(), "work_end_hour", (hour + 1) % 24 + 1)
    found = review(api)
    assert found[0]["unusual"] == ["off_hours"]


def test_lookup_without_a_case(api: Api, engine: Engine, world: World) -> None:
    p = people(engine, world)
    lookup(api, p[0])  # nothing behind it
    post_visit(api, visit_body(p[1]))  # visited, then looked up
    lookup(api, p[1])
    due = (city_today() + timedelta(days=2)).isoformat()
    assert api.as_("sup_street", "POST", "/api/v1/tasks", json={
        "resident_id": p[2]["id"], "reason": "other", "due_date": due}).status_code == 201
    lookup(api, p[2])  # a task in worker1's area
    found = {r["id"]: r for r in review(api) if r["action"] == "resident.search"}
    searches = [r for r in raw_rows(engine) if r["action"] == "resident.search"]
    assert [found[s["id"]]["unusual"] for s in searches] == [["lookup_without_case"], [], []]
    assert f'"ids": ["{p[0]["id"]}"]' in searches[0]["detail"]


def test_readers_summary_and_exports(api: Api, engine: Engine, world: World) -> None:
    p = people(engine, world)
    read(api, p[0])
    read(api, p[0])
    read(api, p[1])
    lookup(api, p[2])
    read(api, p[3], user="sup_street")
    summary = api.as_("auditor", "GET", f"{ACCESS}/readers", params=TODAY).json()
    assert summary["disclosures_per_partner"] == [] and summary["from"] == TODAY["from"]
    by = {r["username"]: r for r in summary["readers"]}
    assert (by["worker1"]["reads"], by["worker1"]["records"], by["worker1"]["unusual"]) == (4, 3, 1)
    assert by["worker1"]["actions"] == {"resident.read.identity": 3, "resident.search": 1}
    assert by["worker1"]["reasons"] == {"lookup_without_case": 1}
    assert (by["sup_street"]["reads"], by["sup_street"]["unusual"]) == (1, 0)
    assert summary["readers"][0]["username"] == "worker1"  # the most unusual first

    as_csv = api.as_("auditor", "GET", f"{ACCESS}/export", params={**TODAY, "format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [(r["action"], r["actor_username"], r["unusual"]) for r in table] == [
        ("resident.read.identity", "worker1", ""), ("resident.read.identity", "worker1", ""),
        ("resident.read.identity", "worker1", ""), ("resident.search", "worker1", "lookup_without_case"),
        ("resident.read.identity", "sup_street", "")]
    as_xlsx = api.as_("auditor", "GET", f"{ACCESS}/export", params={**TODAY, "format": "xlsx", "unusual": "any"})
    assert as_xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:6] == ["id", "at", "actor_id", "actor_username", "actor_role", "action"]
    assert [(v[5], v[12]) for v in values[1:]] == [("resident.search", "lookup_without_case")]

    exports = [r for r in raw_rows(engine) if r["action"] == "audit.access_export"]
    assert [e["detail"] for e in exports] == [
        '{"filters": [], "format": "csv", "rows": 5}', '{"filters": ["unusual"], "format": "xlsx", "rows": 1}']
    assert all(e["actor_id"] == world.users["auditor"] for e in exports)
    assert [r["action"] for r in raw_rows(engine)].count("audit.access_review") == 1


def test_access_review_is_for_auditors(api: Api) -> None:
    for user in ("admin", "sup_district", "worker1"):
        for path in ("", "/readers", "/export", "/disclosures/export"):
            assert api.as_(user, "GET", ACCESS + path).status_code == 403
    for params, code in (({"district_code": "41"}, "validation_error"), ({"unusual": "weird"}, "validation_error"),
                         ({"format": "pdf"}, "validation_error"),
                         ({"from": "2026-01-01", "to": "2026-12-01"}, "period_too_long")):
        response = api.as_("auditor", "GET", f"{ACCESS}/export", params=params)
        assert (response.status_code, response.json()["code"]) == (422, code), response.text
