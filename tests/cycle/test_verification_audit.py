"""The monthly verification in the supervisors' views: the activity rows' verification coverage and the
coverage picture's verified figure per grid (docs/audit.md)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from sqlalchemy import Engine

from app.core.types import city_today
from tests.conftest import Api, World
from tests.cycle.verify_helpers import open_month, record, verifications
from tests.db import rows

ACTIVITY = "/api/v1/audit/activity"
NS = "{http://www.w3.org/2000/svg}"


def activity(api: Api, group: str) -> dict[str, Any]:
    today = city_today().isoformat()
    response = api.as_("sup_street", "GET", ACTIVITY, params={"from": today, "to": today, "group": group})
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["rows"]}


def verified_labels(api: Api, community_id: str) -> dict[str, str]:
    response = api.as_("sup_street", "GET", "/api/v1/audit/pictures/coverage", params={"community_id": community_id})
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.text)  # noqa: S314 - our own server's SVG
    return {e.get("data-grid") or "": e.get("data-verified") or "" for e in root.iter(f"{NS}text")
            if e.get("class") == "grid-label"}


def test_coverage_in_activity_and_pictures(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    assert activity(api, "community")[c1["id"]]["verification_coverage"] is None
    assert set(verified_labels(api, c1["id"]).values()) == {"n/a"}

    open_month(api, city_today().strftime("%Y-%m"))
    mine = verifications(api, "worker1")
    grid = world.grids[c1["id"]][0]
    in_grid = verifications(api, "grid_worker")
    done = [in_grid[0], next(v for v in mine if v["id"] != in_grid[0]["id"])]
    for v in done:
        record(api, "worker1", v, "PRESENT")

    places = activity(api, "community")
    assert places[c1["id"]]["verification_coverage"] == round(2 / len(mine), 4)
    assert places[c2["id"]]["verification_coverage"] == 0.0
    workers = activity(api, "worker")
    assert workers[world.users["worker1"]]["verification_coverage"] == round(2 / len(mine), 4)
    grid_done = sum(1 for v in done if v["id"] in {g["id"] for g in in_grid})
    assert workers[world.users["grid_worker"]]["verification_coverage"] == round(grid_done / len(in_grid), 4)

    labels = verified_labels(api, c1["id"])
    paths = {r["id"]: r["area_path"] for r in rows(engine, "SELECT id, area_path FROM verifications WHERE "
                                                           "outcome IS NOT NULL")}
    assert labels[grid["id"]] == str(sum(1 for v in done if paths[v["id"]].startswith(grid["path"])))
    assert sum(int(n) for n in labels.values()) == 2
