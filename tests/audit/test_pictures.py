"""The pictures render from the data alone, and show what the data holds: the points, the labels, the counts."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from defusedxml import ElementTree
from PIL import Image
from sqlalchemy import Engine

from app.core.types import city_today
from tests.audit.conftest import raw_rows
from tests.audit.helpers import DAY, at, distinct_homes, north, visit
from tests.conftest import Api, World
from tests.db import execute, rows
from tests.factories import post_visit, visit_body

PICTURES = "/api/v1/audit/pictures"
NS = "{http://www.w3.org/2000/svg}"


def svg(api: Api, path: str, user: str = "sup_street", **params: Any) -> Any:
    response = api.as_(user, "GET", f"{PICTURES}/{path}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")  # nothing linked
    return ElementTree.fromstring(response.text)


def shapes(root: Any, tag: str, cls: str) -> list[Any]:
    return [e for e in root.iter(NS + tag) if cls in (e.get("class") or "").split()]


def texts(root: Any, cls: str) -> list[str]:
    return [e.text for e in shapes(root, "text", cls)]


def test_worker_day(api: Api, engine: Engine, world: World) -> None:
    p = distinct_homes(engine, world, 3)
    first = post_visit(api, visit(p[0], at(9)))
    body = visit(p[1], at(10), lat=north(p[1]["lat"], 40))
    body["checkin"]["mock_location"] = True
    second = post_visit(api, body)
    post_visit(api, visit(p[2], at(11), mode="phone", checkin=None))
    root = svg(api, "worker-day", worker_id=world.users["worker1"], day=DAY.isoformat())

    checkins = shapes(root, "circle", "checkin")
    assert [c.get("data-id") for c in checkins] == [first["id"], second["id"]]
    (flagged,) = shapes(root, "circle", "flagged")
    assert (flagged.get("data-id"), flagged.get("data-rules")) == (second["id"], "mock_location")
    # North is up: the check-in farther north is drawn higher.
    assert (float(flagged.get("cy")) < float(checkins[0].get("cy"))) == (north(p[1]["lat"], 40) > p[0]["lat"])
    assert {r.get("data-id") for r in shapes(root, "rect", "dwelling")} == {p[0]["dwelling_id"], p[1]["dwelling_id"],
                                                                             p[2]["dwelling_id"]}
    (track,) = shapes(root, "line", "track")
    assert (track.get("data-from"), track.get("data-to")) == (first["id"], second["id"])
    assert len(shapes(root, "line", "tie")) == 2
    assert texts(root, "label") == ["1 09:00", "2 10:00 ⚠ mock_location"]
    assert texts(root, "unlocated") == ["1 visits without a check-in position (phone, or no fix)"]
    assert "worker1" in texts(root, "heading")[0] and "3 visits, 1 flagged" in texts(root, "heading")[0]
    assert texts(root, "note")[0].startswith("Division outlines: not in the data")
    assert texts(root, "scale-label")[0].endswith(" m")

    png = api.as_("sup_street", "GET", f"{PICTURES}/worker-day",
                  params={"worker_id": world.users["worker1"], "day": DAY.isoformat(), "format": "png"})
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content)).convert("RGB")
    assert image.size == (900, 640)
    red = image.getpixel((round(float(flagged.get("cx"))), round(float(flagged.get("cy")))))
    blue = image.getpixel((round(float(checkins[0].get("cx"))), round(float(checkins[0].get("cy")))))
    assert red == (0xd6, 0x27, 0x28) and blue == (0x1f, 0x77, 0xb4)

    reads = [r for r in raw_rows(engine) if r["action"] == "audit.picture.worker_day"]
    assert len(reads) == 2 and reads[0]["target_id"] == world.users["worker1"]
    assert reads[0]["area_path"] == p[0]["area_path"] and '"visits": 3' in reads[0]["detail"]
    # Another district's supervisor sees no visit, and not even the worker's name.
    other = svg(api, "worker-day", user="sup_other", worker_id=world.users["worker1"], day=DAY.isoformat())
    assert shapes(other, "circle", "checkin") == [] and texts(other, "empty") == ["No located visits"]
    assert "worker1" not in texts(other, "heading")[0]


def test_coverage_by_grid(api: Api, engine: Engine, world: World) -> None:
    c1 = world.community("c1")
    p = distinct_homes(engine, world, 3)
    post_visit(api, visit_body(p[0]))
    post_visit(api, visit_body(p[1]))
    post_visit(api, visit_body(p[1]))  # twice: one resident
    due = (city_today() + timedelta(days=2)).isoformat()
    made = api.as_("worker1", "POST", "/api/v1/tasks", json={"resident_id": p[2]["id"], "reason": "other",
                                                              "due_date": due})
    execute(engine, "UPDATE tasks SET due_date = :d WHERE id = :t", d=DAY, t=made.json()["id"])
    registered = rows(engine, "SELECT area_path FROM residents WHERE community_id = :c AND status = 'REGISTERED' "
                              "AND merged_into_id IS NULL", c=c1["id"])
    grids = world.grids[c1["id"]]
    month = city_today().strftime("%Y-%m")
    root = svg(api, "coverage", community_id=c1["id"])
    labels = shapes(root, "text", "grid-label")
    by_grid = {e.get("data-grid"): e for e in labels}
    for g in grids:
        expected = sum(1 for r in registered if r["area_path"].startswith(g["path"]))
        assert int(by_grid[g["id"]].get("data-registered")) == expected
    assert sum(int(e.get("data-registered")) for e in labels) == len(registered)
    assert sum(int(e.get("data-visited")) for e in labels) == 2
    assert sum(int(e.get("data-overdue")) for e in labels) == 1
    for g in grids:
        visited = sum(1 for who in p[:2] if who["area_path"].startswith(g["path"]))
        assert int(by_grid[g["id"]].get("data-visited")) == visited
    assert month in texts(root, "heading")[0]
    assert any("verified n/a" in t for t in texts(root, "grid-figures"))
    assert len(shapes(root, "rect", "bar-visited")) == len(labels)
    png = api.as_("sup_street", "GET", f"{PICTURES}/coverage", params={"community_id": c1["id"], "format": "png"})
    assert Image.open(io.BytesIO(png.content)).size[0] == 900


def test_trend(api: Api, engine: Engine, world: World) -> None:
    c1 = world.community("c1")
    p = distinct_homes(engine, world, 3)
    post_visit(api, visit_body(p[0]))
    flagged = visit_body(p[1])
    flagged["checkin"]["mock_location"] = True
    post_visit(api, flagged)
    post_visit(api, visit_body(p[2], mode="phone", checkin=None))
    root = svg(api, "trend", user="sup_district", division_id=c1["id"])
    months = texts(root, "month-label")
    assert len(months) == 12 and months[-1] == city_today().strftime("%Y-%m")
    bars = {e.get("data-month"): e for e in shapes(root, "rect", "bar-in-person")}
    last = bars[months[-1]]
    assert (last.get("data-in_person"), last.get("data-phone"), last.get("data-flagged")) == ("2", "1", "1")
    assert all(bars[m].get("data-in_person") == "0" for m in months[:-1])
    assert texts(root, "value-label")[-1] == "3"
    assert len(shapes(root, "circle", "flagged-point")) == 12
    six = svg(api, "trend", user="sup_district", division_id=c1["id"], months=6)
    assert len(texts(six, "month-label")) == 6


def test_picture_errors(api: Api, world: World) -> None:
    c1, c3 = world.community("c1"), world.community("c3")
    cases = [
        ("worker1", "coverage", {"community_id": c1["id"]}, 403, "forbidden"),
        ("auditor", "trend", {"division_id": c1["id"]}, 403, "forbidden"),
        ("sup_street", "coverage", {"community_id": c3["id"]}, 404, "not_found"),
        ("sup_street", "trend", {"division_id": c3["id"]}, 404, "not_found"),
        ("sup_street", "coverage", {"community_id": c1["parent_id"]}, 422, "not_a_community"),
        ("sup_street", "coverage", {"community_id": c1["id"], "month": "2026-13"}, 422, "month_invalid"),
        ("sup_street", "worker-day", {"worker_id": "x", "day": "2026/01/01"}, 422, "date_format"),
        ("sup_street", "trend", {"division_id": c1["id"], "months": 99}, 422, "validation_error"),
        ("sup_street", "worker-day", {"worker_id": "x", "format": "gif"}, 422, "validation_error"),
    ]
    for user, path, params, status, code in cases:
        response = api.as_(user, "GET", f"{PICTURES}/{path}", params=params)
        assert (response.status_code, response.json()["code"]) == (status, code), (path, params, response.text)
