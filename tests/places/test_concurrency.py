"""Concurrent writers: one wins, the others get a coded 409, and the data stays consistent (no 500s).

Outcomes only, no timing: the requests are started together and whatever order the database picks, the
result must be one of the allowed ones.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.places.models import Division, Dwelling
from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS, DWELLINGS, division

THREADS = 6


def together(api: Api, calls: list[tuple[str, str, str, dict[str, Any]]]) -> list[Any]:
    for user in {c[0] for c in calls}:
        api.headers(user)  # log in first, so only the calls under test run concurrently
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda c: api.as_(c[0], c[1], c[2], json=c[3]), calls))


def outcome(response: Any) -> str:
    assert response.status_code < 500, response.text
    return str(response.status_code) if response.status_code < 400 else response.json()["code"]


def test_same_address_at_once(api: Api, world: World, engine: Engine) -> None:
    body = {"community_id": world.community("c1")["id"], "address": "同时登记路1号", "kind": "rental"}
    results = Counter(outcome(r) for r in together(api, [("worker1", "POST", DWELLINGS, body)] * THREADS))
    assert results["201"] == 1 and results["201"] + results["dwelling_address_taken"] == THREADS, results
    with Session(engine) as session:
        stored = session.execute(select(func.count()).select_from(Dwelling)
                                 .where(col(Dwelling.address) == "同时登记路1号")).scalar_one()
    assert stored == 1


def test_same_version_at_once(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    calls = [("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", {"code": c1["code"][:-3] + f"{700 + n}", "version": 1})
             for n in range(THREADS)]
    results = Counter(outcome(r) for r in together(api, calls))
    assert results["200"] == 1 and results["200"] + results["stale_version"] + results["concurrent_update"] == THREADS
    stored = division(engine, id=c1["id"])
    assert stored is not None and stored.version == 2
    with Session(engine) as session:
        grids = session.execute(select(Division).where(col(Division.parent_id) == c1["id"])).scalars().all()
        assert all(g.path == stored.path + g.code + "/" for g in grids)
        dwellings = session.execute(select(Dwelling).where(col(Dwelling.community_id) == c1["id"])).scalars().all()
        assert dwellings and all(d.area_path.startswith(stored.path) for d in dwellings)


def test_renumber_while_dwellings_are_registered(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    grid = world.grids[c1["id"]][0]
    new_code = c1["code"][:-3] + "888"
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", {"code": new_code, "version": 1})]
    calls += [("worker1", "POST", DWELLINGS, {"community_id": c1["id"], "grid_id": grid["id"],
                                             "address": f"并发路{n}号", "kind": "own"}) for n in range(THREADS - 1)]
    results = [outcome(r) for r in together(api, calls)]
    # Creations that waited for the renumbering see the new paths, and the worker's scope with them.
    assert results == ["200"] + ["201"] * (THREADS - 1), results
    stored = division(engine, id=grid["id"])
    assert stored is not None and stored.path == c1["path"].replace(c1["code"], new_code) + "G01/"
    with Session(engine) as session:
        placed = session.execute(select(Dwelling).where(col(Dwelling.address).startswith("并发路"))).scalars().all()
    assert len(placed) == results.count("201") and all(d.area_path == stored.path for d in placed)
