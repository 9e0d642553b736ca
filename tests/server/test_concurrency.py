"""Many requests at once against a real server (uvicorn in a subprocess): none may end in a 5xx or go unanswered.

Each route kind that opens extra transactions gets four times the database pool's capacity of concurrent
requests (DB_POOL_SIZE=4 on both databases, set small to make it cheap). A
request that holds a pooled connection while it waits for a second one deadlocks the pool under such a burst;
the pool's 30 s checkout timeout then turns every waiting request into a 500 (issue 12). The client waits
longer than that, so a stall shows as those answers, and each burst is bounded. No timing assertions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PASSWORD, World
from tests.factories import phone_visit_body
from tests.server.conftest import assert_chain_intact, pool_capacity
from tests.server.harness import Outcome, Server, burst
from tests.server.phone import (
    V1,
    acknowledged_cursor,
    count_in,
    login,
    residents_of,
    scalar,
    sync_headers,
    visits_changes,
    wid,
)

Requests = list[tuple[str, str, dict[str, Any]]]


def _pulls_new_devices(base: str, url: str, world: World, n: int) -> Requests:
    token = login(base, "worker1", PASSWORD)["access_token"]
    return [("GET", V1 + "/sync/pull", {"params": {"schema_version": 1, "last_pulled_at": "null"},
                                        "headers": sync_headers(token, f"new-device-{i:04d}")}) for i in range(n)]


def _pulls_known_device(base: str, url: str, world: World, n: int) -> Requests:
    """The issue's reproduction: one settled phone's quiet pull, at the latest cursor, many times at once."""
    token = login(base, "worker1", PASSWORD)["access_token"]
    cursor = acknowledged_cursor(base, token, "phone-0001")
    return [("GET", V1 + "/sync/pull", {"params": {"schema_version": 1, "last_pulled_at": cursor},
                                        "headers": sync_headers(token, "phone-0001")})] * n


def _pushes(base: str, url: str, world: World, n: int) -> Requests:
    token = login(base, "worker1", PASSWORD)["access_token"]
    cursor = acknowledged_cursor(base, token, "phone-0001")
    residents = residents_of(url, world.community("c1")["id"])
    out: Requests = []
    for i in range(n):
        changes, _, _ = visits_changes(residents[i:] + residents[:i], 2)
        out.append(("POST", V1 + "/sync/push", {"params": {"last_pulled_at": cursor}, "json": changes,
                                                "headers": sync_headers(token, f"push-device-{i:04d}")}))
    return out


def _audited_reads(base: str, url: str, world: World, n: int) -> Requests:
    headers = {"Authorization": "Bearer " + login(base, "worker1", PASSWORD)["access_token"]}
    residents = residents_of(url, world.community("c1")["id"])
    return [("GET", f"{V1}/residents/{residents[i % len(residents)]}", {"headers": headers}) for i in range(n)]


def _logins(base: str, url: str, world: World, n: int) -> Requests:
    return [("POST", V1 + "/auth/login", {"json": {"username": "worker1", "password": PASSWORD}})] * n


def _refreshes(base: str, url: str, world: World, n: int) -> Requests:
    tokens = [login(base, "worker1", PASSWORD)["refresh_token"] for _ in range(n)]
    return [("POST", V1 + "/auth/refresh", {"json": {"refresh_token": t}}) for t in tokens]


def _forbidden(base: str, url: str, world: World, n: int) -> Requests:
    """A worker asking for the account list: 403, and the denial is audited."""
    headers = {"Authorization": "Bearer " + login(base, "worker1", PASSWORD)["access_token"]}
    return [("GET", V1 + "/users", {"headers": headers})] * n


def _unauthorized(base: str, url: str, world: World, n: int) -> Requests:
    return [("GET", V1 + "/auth/me", {"headers": {"Authorization": "Bearer not-a-token"}})] * n


KINDS: dict[str, tuple[Callable[[str, str, World, int], Requests], int]] = {
    "pull, new devices": (_pulls_new_devices, 200),
    "pull, known device": (_pulls_known_device, 200),
    "push": (_pushes, 200),
    "audited read": (_audited_reads, 200),
    "login": (_logins, 200),
    "refresh": (_refreshes, 200),
    "denied 403": (_forbidden, 403),
    "denied 401": (_unauthorized, 401),
}


def _summary(outcomes: list[Outcome]) -> str:
    counts = Counter("no answer" if o.status is None else str(o.status) for o in outcomes)
    return ", ".join(f"{k}×{v}" for k, v in sorted(counts.items()))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_burst_of_four_times_the_pool_gets_no_5xx(kind: str, server_db: str, servers: Callable[..., Server],
                                                     world: World) -> None:
    make, expected = KINDS[kind]
    server = servers(server_db)
    n = 4 * pool_capacity(server_db)
    outcomes = burst(server.base, make(server.base, server_db, world, n))

    failed = [o for o in outcomes if o.status is None or o.status >= 500]
    if failed:
        pytest.fail(f"{kind}: {len(failed)} of {n} concurrent requests failed ({_summary(outcomes)}); first: "
                    f"{failed[0].detail}; the server logged: {server.logged_errors()}", pytrace=False)
    wrong = [o for o in outcomes if o.status != expected]
    if wrong:
        pytest.fail(f"{kind}: expected {expected} for all {n} ({_summary(outcomes)}); first: {wrong[0].detail}",
                    pytrace=False)
    if kind == "push":
        assert all('"rejected":[]' in o.detail.replace(" ", "") for o in outcomes), "a concurrent push was rejected"
    assert server.wait_healthy(5), "the server does not answer /healthz after the burst"
    server.stop()
    assert_chain_intact(server_db)


def test_a_mixed_burst_on_a_short_lane_of_one_thread_gets_no_5xx_and_loses_nothing(
        server_db: str, servers: Callable[..., Server], world: World) -> None:
    """HOP_THREADS=1 (app/core/threads.py): the phones' frequent requests take turns on one thread, pushes run on the
    common pool, and audited reads wait for their group commit in the event loop, holding no thread. Everything
    finishes; every visit and every read's audit record is stored once."""
    server = servers(server_db, HOP_THREADS="1")
    n = pool_capacity(server_db)
    token = login(server.base, "worker1", PASSWORD)["access_token"]
    bearer = {"Authorization": "Bearer " + token}
    cursor = acknowledged_cursor(server.base, token, "phone-0001")
    residents = residents_of(server_db, world.community("c1")["id"])
    pushed: list[str] = []
    requests: Requests = []
    expected: list[int] = []
    for i in range(n):
        changes, visit_ids, _ = visits_changes(residents[i:] + residents[:i], 3)
        pushed += visit_ids
        posted = phone_visit_body(residents[i % len(residents)], id=wid())
        pushed.append(posted["id"])
        requests += [
            ("GET", f"{V1}/residents/{residents[i % len(residents)]}", {"headers": bearer}),
            ("GET", f"{V1}/residents/{residents[(i + 1) % len(residents)]}", {"headers": bearer}),
            ("GET", V1 + "/sync/pull", {"params": {"schema_version": 1, "last_pulled_at": cursor},
                                        "headers": sync_headers(token, "phone-0001")}),
            ("POST", V1 + "/sync/push", {"params": {"last_pulled_at": cursor}, "json": changes,
                                         "headers": sync_headers(token, f"lane-device-{i:04d}")}),
            ("POST", V1 + "/visits", {"json": posted, "headers": bearer}),
            ("GET", V1 + "/me/tasks", {"headers": bearer}),
            ("GET", V1 + "/auth/me", {"headers": bearer}),
        ]
        expected += [200, 200, 200, 200, 201, 200, 200]
    reads_before = scalar(server_db, "SELECT count(*) FROM audit_events WHERE action LIKE 'resident.read.%'")

    outcomes = burst(server.base, requests)

    failed = [(o, want) for o, want in zip(outcomes, expected, strict=True) if o.status != want]
    if failed:
        pytest.fail(f"{len(failed)} of {len(requests)} requests answered otherwise ({_summary(outcomes)}); first: "
                    f"{failed[0][0].detail}; the server logged: {server.logged_errors()}", pytrace=False)
    assert server.wait_healthy(5), "the server does not answer /healthz after the burst"
    server.stop()
    assert count_in(server_db, "visits", "id", pushed) == len(pushed)  # each once: ids are the primary key
    reads = scalar(server_db, "SELECT count(*) FROM audit_events WHERE action LIKE 'resident.read.%'")
    assert reads - reads_before == 2 * n  # every audited read's record is durable
    assert_chain_intact(server_db)
