"""Two phones registering the same person at the same moment: one record, one clear 409, never a 500."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from app.main import app
from app.people.rules import check_char
from tests.conftest import Api, World


def test_simultaneous_registrations_of_one_id(api: Api, world: World, engine: Any) -> None:
    c1 = world.community("c1")
    number = "41162119880808002" + check_char("41162119880808002")
    headers = api.headers("worker1")
    results: list[int] = []
    codes: list[str] = []
    barrier = threading.Barrier(4)

    def register(i: int) -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.post("/api/v1/residents", headers=headers, json={
                "name": f"同时{i}", "id_number": number, "hukou_code": "411621", "arrival_date": "2026-10-01",
                "dwelling_id": world.dwellings[c1["id"]][i]})
            results.append(response.status_code)
            if response.status_code != 201:
                codes.append(response.json()["code"])

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201, 409, 409, 409], results
    assert set(codes) <= {"resident_exists", "concurrent_conflict"}
    found = api.as_("worker1", "GET", "/api/v1/residents", params={"id_number": number}).json()
    assert found["total"] == 1
