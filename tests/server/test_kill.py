"""The server killed (SIGKILL) in the middle of a big write, restarted, and the write retried (issue 12).

A push of 1,000 visits and a resident import are each killed part-way (at a fraction of the time the same
work took on that server just before: where exactly it lands does not matter, any point must be safe), then:
- what the database holds in between is all of it or none of it;
- after a restart the retry neither loses nor doubles anything;
- the audit chain verifies;
- the phone converges: its next pull carries each record once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, World
from tests.server.conftest import assert_chain_intact
from tests.server.harness import CLIENT_TIMEOUT_S, Server
from tests.server.phone import (
    V1,
    acknowledged_cursor,
    count_in,
    id_numbers,
    import_csv,
    login,
    pull,
    push,
    residents_of,
    visits_changes,
)

PUSH_VISITS = 1000
IMPORT_ROWS = 2000
KILL_AT = (0.3, 0.8)  # fractions of the duration the same work took just before


def _killed_midway(server: Server, seconds: float, request: Callable[[], Any]) -> None:
    """Send `request` from a thread, SIGKILL the server `seconds` later, wait for the client to give up."""
    thread = threading.Thread(target=lambda: _swallow(request), daemon=True)
    thread.start()
    time.sleep(seconds)
    server.kill()
    thread.join(CLIENT_TIMEOUT_S + 5)
    assert not thread.is_alive(), "the client still waits for a killed server"


def _swallow(request: Callable[[], Any]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the connection died with the server: what a phone sees
        request()


def _timed(request: Callable[[], httpx.Response], expected: int) -> float:
    started = time.monotonic()
    response = request()
    assert response.status_code == expected, response.text[:300]
    return time.monotonic() - started


@pytest.mark.parametrize("kill_at", KILL_AT)
def test_a_push_killed_midway_and_retried_stores_each_visit_once(kill_at: float, server_db: str, world: World,
                                                                 servers: Callable[..., Server],
                                                                 record_property: Callable[[str, Any], None]) -> None:
    server = servers(server_db)
    token, device = login(server.base, "worker1", PASSWORD)["access_token"], "phone-kill-0001"
    residents = residents_of(server_db, world.community("c1")["id"])
    cursor = acknowledged_cursor(server.base, token, device)
    warm, _, _ = visits_changes(residents, PUSH_VISITS)
    took = _timed(lambda: push(server.base, token, device, cursor, warm), 200)
    cursor = int(pull(server.base, token, device, cursor)["timestamp"])
    changes, visit_ids, delivery_ids = visits_changes(residents, PUSH_VISITS)

    _killed_midway(server, took * kill_at, lambda: push(server.base, token, device, cursor, changes))

    stored = count_in(server_db, "visits", "id", visit_ids)
    record_property("committed_before_the_kill", stored == PUSH_VISITS)  # where the kill landed (junit report)
    assert stored in (0, PUSH_VISITS), f"a killed push left {stored} of {PUSH_VISITS} visits: half-written"
    assert count_in(server_db, "service_deliveries", "id", delivery_ids) == stored
    again = servers(server_db)
    response = push(again.base, token, device, cursor, changes)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["rejected"] == [], response.text[:300]
    assert count_in(server_db, "visits", "id", visit_ids) == PUSH_VISITS
    assert count_in(server_db, "service_deliveries", "id", delivery_ids) == PUSH_VISITS
    pulled = pull(again.base, token, device, cursor)["changes"]
    for table, ids in (("visits", visit_ids), ("service_deliveries", delivery_ids)):
        seen = [r["id"] for r in pulled[table]["updated"]]
        assert all(seen.count(i) == 1 for i in ids), f"the phone's pull does not carry each of its {table} once"
    again.stop()
    assert_chain_intact(server_db)


def _import(base: str, token: str, data: bytes) -> httpx.Response:
    return httpx.post(base + V1 + "/residents/import", params={"dry_run": "false"},
                      files={"file": ("register.csv", data, "text/csv")},
                      headers={"Authorization": f"Bearer {token}"}, timeout=CLIENT_TIMEOUT_S)


@pytest.mark.parametrize("kill_at", KILL_AT)
def test_an_import_killed_midway_and_retried_registers_each_person_once(
        kill_at: float, server_db: str, world: World, servers: Callable[..., Server],
        record_property: Callable[[str, Any], None]) -> None:
    server = servers(server_db)
    token, device = login(server.base, "worker1", PASSWORD)["access_token"], "phone-kill-0002"
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    numbers = id_numbers(2 * IMPORT_ROWS)
    warm, numbers = numbers[:IMPORT_ROWS], numbers[IMPORT_ROWS:]
    took = _timed(lambda: _import(server.base, token, import_csv(warm, dwelling)), 201)
    cursor = acknowledged_cursor(server.base, token, device)
    data = import_csv(numbers, dwelling)

    _killed_midway(server, took * kill_at, lambda: _import(server.base, token, data))

    stored = count_in(server_db, "residents", "id_number", numbers)
    record_property("committed_before_the_kill", stored == IMPORT_ROWS)
    assert stored in (0, IMPORT_ROWS), f"a killed import left {stored} of {IMPORT_ROWS} residents: half-written"
    again = servers(server_db)
    response = _import(again.base, token, data)
    if stored == 0:
        assert response.status_code == 201, response.text[:300]
        assert response.json()["created"] == IMPORT_ROWS
    else:  # it had committed: the retry is refused row by row, nothing doubled
        assert response.status_code == 422, response.text[:300]
        codes = {e["code"] for e in response.json()["details"]["errors"]}
        assert codes == {"resident_exists"}, codes
    assert count_in(server_db, "residents", "id_number", numbers) == IMPORT_ROWS
    pulled = [r["id_number"] for r in pull(again.base, token, device, cursor)["changes"]["residents"]["updated"]]
    assert all(pulled.count(n) == 1 for n in numbers), "the phone's pull does not carry each imported resident once"
    again.stop()
    assert_chain_intact(server_db)
