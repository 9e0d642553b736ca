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
from datetime import UTC, datetime, timedelta
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
    rows,
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


def test_visits_posted_at_once_are_each_answered_and_audited_as_if_posted_alone(
        server_db: str, servers: Callable[..., Server], world: World) -> None:
    """Visits posted at once share transactions (app/core/batches.py), yet each is answered as it would be alone —
    created, a retry's 200, a taken id's 409, another area's 404 — stored once, and its audit records (the visit's,
    its follow-up task's, a refusal's) name its own request and its own author."""
    server = servers(server_db)
    n = 4 * pool_capacity(server_db)
    due = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    mine = {name: residents_of(server_db, world.community(c)["id"]) for name, c in (("worker1", "c1"),
                                                                                   ("worker2", "c2"))}
    bearer = {name: {"Authorization": "Bearer " + login(server.base, name, PASSWORD)["access_token"]} for name in mine}
    user_ids = dict(rows(server_db, "SELECT username, id FROM users WHERE username IN ('worker1', 'worker2')"))
    requests: Requests = []
    expected: list[set[int]] = []
    created: dict[str, tuple[str, str]] = {}  # visit id → (request id, author)
    follow_ups: set[str] = set()  # request ids of visits that ask for a follow-up task

    def post(name: str, body: dict[str, Any], request_id: str, statuses: set[int]) -> None:
        requests.append(("POST", V1 + "/visits", {"json": body, "headers": {**bearer[name],
                                                                            "X-Request-ID": request_id}}))
        expected.append(statuses)

    for i in range(n):
        for name, residents in mine.items():
            rid = f"visit-{name}-{i}"
            body = phone_visit_body(residents[i % len(residents)], id=wid())
            if i % 4 == 0:
                body["follow_up"] = {"due_date": due, "reason": "other"}
                follow_ups.add(rid)
            created[body["id"]] = (rid, name)
            post(name, body, rid, {201})
    for k in range(3):  # worker1 names a resident of worker2's community: 404, as alone, and the refusal is audited
        post("worker1", phone_visit_body(mine["worker2"][k], id=wid()), f"refused-{k}", {404})
    # A retry racing its original: one 201, the other 200 — or, on PostgreSQL, where a batch and a request running
    # alone can insert side by side, 409 concurrent_conflict for the loser (nothing saved; its retry answers 200).
    raced = {200, 201, 409} if server_db.startswith("postgresql") else {200, 201}
    retried = phone_visit_body(mine["worker1"][0], id=wid())
    post("worker1", retried, "retry-a", raced)
    post("worker1", retried, "retry-b", raced)
    taken = wid()  # one id, two different visits: one 201, one 409 visit_id_taken
    post("worker1", phone_visit_body(mine["worker1"][1], id=taken), "taken-a", {201, 409})
    post("worker1", phone_visit_body(mine["worker1"][2], id=taken), "taken-b", {201, 409})

    outcomes = burst(server.base, requests)

    wrong = [o for o, want in zip(outcomes, expected, strict=True) if o.status not in want]
    if wrong:
        pytest.fail(f"{len(wrong)} of {len(requests)} answered otherwise ({_summary(outcomes)}); first: "
                    f"{wrong[0].detail}; the server logged: {server.logged_errors()}", pytrace=False)
    statuses = [o.status for o in outcomes]
    assert statuses[-4:-2].count(201) == 1 and statuses[-2:].count(201) == 1
    assert server.wait_healthy(5), "the server does not answer /healthz after the burst"
    server.stop()

    assert count_in(server_db, "visits", "id", [*created, retried["id"], taken]) == len(created) + 2
    events = rows(server_db, "SELECT action, target_id, request_id, actor_id, outcome FROM audit_events "
                             "WHERE request_id LIKE 'visit-%' OR request_id LIKE 'refused-%' "
                             "OR request_id LIKE 'retry-%' OR request_id LIKE 'taken-%'")
    visit_events = {target: (request_id, actor) for action, target, request_id, actor, _ in events
                    if action == "visits.create"}
    assert {v: visit_events.get(v) for v in created} == {v: (rid, user_ids[name]) for v, (rid, name) in
                                                         created.items()}
    assert sorted(r for a, _, r, _, _ in events if a == "tasks.create") == sorted(follow_ups)
    refusals = sorted((r, actor, outcome) for _, _, r, actor, outcome in events if r.startswith("refused-"))
    assert refusals == [(f"refused-{k}", user_ids["worker1"], "not_found") for k in range(3)]
    assert_chain_intact(server_db)
