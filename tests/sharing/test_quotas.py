"""Quotas of the partner routes (docs/sharing.md, "Quotas"): every partner route kind is refused with 429
`rate_limited` and Retry-After after its limit, per caller; the count is shared by two real server processes on
one database, or kept in Redis; Redis down falls back to the database; the enumeration alert is written once per
window, without personal data."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.routes import api_routes
from app.sharing.partners import quotas
from app.sharing.partners.quotas import QUOTA_KIND, RedisStore, quota_of
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import audit_events, execute, rows
from tests.factories import id_number
from tests.server.harness import Server, free_port
from tests.sharing.landlord_helpers import self_register
from tests.sharing.partner_helpers import V1, Client, bearer, make_client

LOOKUP, FEED = V1 + "/partner/police/lookup", V1 + "/partner/police/feed"
PUBLIC = {V1 + "/partner/oauth/token", V1 + "/partner/landlord/register"}  # their own sign-in throttles
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def fresh_redis_state() -> Iterator[None]:
    quotas.redis_state.store, quotas.redis_state.down_until = None, 0.0
    yield
    quotas.redis_state.store, quotas.redis_state.down_until = None, 0.0


@pytest.fixture()
def redis_url() -> str:
    """A Redis server for the store's tests: TEST_REDIS_URL (.ci/run starts one), else the local default. Skipped
    locally without one; on CI (CI=true) missing Redis fails."""
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required on CI ({url}): {exc}")
        pytest.skip(f"no Redis at {url}")
    return url


# --- callers and one request of each kind --------------------------------------------------------------------------

def police(api: Api, world: World, client_id: str = "station-q") -> dict[str, str]:
    return bearer(api, make_client(api, "police", client_id, division_ids=[world.community("c1")["parent_id"]]))


def outflow(api: Api, world: World, client_id: str = "city-q") -> dict[str, str]:
    return bearer(api, make_client(api, "outflow_city", client_id, hukou_prefix="411600"))


def landlord(api: Api, world: World, client_id: str = "13912340001") -> dict[str, str]:
    self_register(api, world, phone=client_id, id_number=id_number(seq=client_id[-3:], area="410105"))
    return api.headers(client_id)


def lookup(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(LOOKUP, json={"id_number": id_number(seq="555")}, headers=h)  # nobody: a miss


def police_feed(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(FEED, json={"cursor": None, "limit": 10}, headers=h)


def upload(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(V1 + "/partner/police/registrations", params={"reference": "q-1", "dry_run": "true"},
                           files={"file": ("rows.csv", b"", "text/csv")}, headers=h)


def roster(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(V1 + "/partner/outflow/residents", json={"cursor": None, "limit": 10}, headers=h)


def changes(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(V1 + "/partner/outflow/feed", json={"cursor": None, "limit": 10}, headers=h)


def assistance(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.get(V1 + "/partner/outflow/assistance-requests", headers=h)


def landlord_me(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.get(V1 + "/partner/landlord/me", headers=h)


def landlord_write(api: Api, h: dict[str, str]) -> httpx.Response:
    return api.client.post(V1 + "/partner/landlord/move-outs", json={"tenancy_id": "x" * 32,
                                                                      "moved_out_on": "2026-11-01"}, headers=h)


@dataclass(frozen=True)
class Case:
    kind: str
    caller: Callable[..., dict[str, str]]
    call: Callable[[Api, dict[str, str]], httpx.Response]
    other_ids: tuple[str, str]


CASES = {
    "lookup": Case("lookup", police, lookup, ("station-a", "station-b")),
    "police_feed": Case("feed", police, police_feed, ("station-a", "station-b")),
    "upload": Case("upload", police, upload, ("station-a", "station-b")),
    "outflow_roster": Case("feed", outflow, roster, ("city-a", "city-b")),
    "outflow_changes": Case("feed", outflow, changes, ("city-a", "city-b")),
    "assistance": Case("assistance", outflow, assistance, ("city-a", "city-b")),
    "landlord_read": Case("landlord_read", landlord, landlord_me, ("13912340002", "13912340003")),
    "landlord_write": Case("landlord_write", landlord, landlord_write, ("13912340004", "13912340005")),
}


def set_limit(monkeypatch: pytest.MonkeyPatch, kind: str, limit: int) -> None:
    prefix = "landlord_" + kind.removeprefix("landlord_") if kind.startswith("landlord_") else "partner_" + kind
    monkeypatch.setattr(get_settings(), f"{prefix}_limit", limit)


def assert_refused(response: httpx.Response) -> dict[str, Any]:
    refused = assert_error(response, 429, "rate_limited")
    assert refused["details"]["retry_after_seconds"] > 0
    assert int(response.headers["retry-after"]) > 0 and response.headers["x-ratelimit-remaining"] == "0"
    return refused


def alerts(engine: Engine) -> list[dict[str, Any]]:
    found = audit_events(engine, "sharing.enumeration_alert")
    for event in found:
        event["detail"] = json.loads(event["detail"]) if isinstance(event["detail"], str) else event["detail"]
    return found


# --- every route has a quota ---------------------------------------------------------------------------------------

def test_every_partner_route_has_a_quota() -> None:
    from app.main import app

    def kinds(route: APIRoute) -> set[str]:
        found, stack = set(), list(route.dependant.dependencies)
        while stack:
            dep = stack.pop()
            if getattr(dep.call, QUOTA_KIND, None):
                found.add(getattr(dep.call, QUOTA_KIND))
            stack.extend(dep.dependencies)
        return found

    routes = [(p, r) for p, r in api_routes(app) if p.startswith(V1 + "/partner/")]
    assert len(routes) > 15
    missing = [f"{sorted(r.methods)} {p}" for p, r in routes if p not in PUBLIC and len(kinds(r)) != 1]
    assert missing == []
    assert all(not kinds(r) for p, r in routes if p in PUBLIC)


# --- each kind: 429 after its limit, per caller ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_is_refused_after_its_limit(name: str, api: Api, world: World, engine: Engine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    set_limit(monkeypatch, case.kind, 2)
    mine, theirs = (case.caller(api, world, i) for i in case.other_ids)
    for _ in range(2):
        assert case.call(api, mine).status_code not in (429, 500)
    assert_refused(case.call(api, mine))
    assert_refused(case.call(api, mine))
    assert case.call(api, theirs).status_code != 429  # another caller's count is its own
    found = alerts(engine)
    assert len(found) == 1, found  # one alert for the window, however many refusals
    assert found[0]["detail"]["kind"] == case.kind and found[0]["detail"]["reason"] == "limit"
    assert found[0]["detail"]["count"] == 3 and found[0]["detail"]["limit"] == 2
    assert rows(engine, "SELECT count FROM partner_rate_limits WHERE key LIKE :k", k=case.kind + ":%")


def test_kinds_count_apart_and_answers_carry_the_remaining_count(api: Api, world: World, engine: Engine,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    set_limit(monkeypatch, "feed", 3)
    h = police(api, world)
    first = police_feed(api, h)
    ok(first)
    assert first.headers["x-ratelimit-limit"] == "3" and first.headers["x-ratelimit-remaining"] == "2"
    assert police_feed(api, h).headers["x-ratelimit-remaining"] == "1"
    ok(police_feed(api, h))
    assert_refused(police_feed(api, h))
    assert_error(lookup(api, h), 404)  # the look-up quota is another count


def test_a_new_window_starts_the_count_again(api: Api, world: World, engine: Engine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    set_limit(monkeypatch, "feed", 1)
    h = police(api, world)
    ok(police_feed(api, h))
    assert_refused(police_feed(api, h))
    execute(engine, "UPDATE partner_rate_limits SET window_started_at = '2020-01-01 00:00:00'")  # the window ended
    ok(police_feed(api, h))
    assert [r["count"] for r in rows(engine, "SELECT count FROM partner_rate_limits WHERE key LIKE 'feed:%'")] == [1]
    assert len(alerts(engine)) == 1
    assert_refused(police_feed(api, h))
    assert len(alerts(engine)) == 2  # one alert per window


# --- the enumeration alert -----------------------------------------------------------------------------------------

def test_misses_raise_one_alert_without_personal_data(api: Api, world: World, engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "partner_lookup_miss_alert", 3)
    set_limit(monkeypatch, "lookup", 6)
    h = police(api, world)
    numbers = [id_number(seq=f"6{i:02d}") for i in range(8)]
    statuses = [api.client.post(LOOKUP, json={"id_number": n}, headers=h).status_code for n in numbers]
    assert statuses == [404] * 6 + [429] * 2
    found = alerts(engine)
    assert len(found) == 1  # three misses set it off; the refusals of the same window add none
    assert found[0]["detail"] == {"kind": "lookup", "reason": "misses", "count": 3, "limit": 6, "miss_alert": 3,
                                  "window_seconds": 60}
    assert found[0]["target_type"] == "partner"
    text = json.dumps(found, default=str)
    assert not any(n in text for n in numbers) and not any(n[:14] in text for n in numbers)


def test_found_persons_are_no_misses(api: Api, world: World, engine: Engine,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import dwelling_id, register_resident

    monkeypatch.setattr(get_settings(), "partner_lookup_miss_alert", 2)
    here = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="101"))
    h = police(api, world)
    for _ in range(4):
        ok(api.client.post(LOOKUP, json={"id_number": here["id_number"]}, headers=h))
    assert alerts(engine) == []
    assert_error(lookup(api, h), 404)
    assert alerts(engine) == []
    assert_error(lookup(api, h), 404)
    assert len(alerts(engine)) == 1


# --- Redis ---------------------------------------------------------------------------------------------------------

def test_the_redis_store_counts_in_redis(api: Api, world: World, engine: Engine, redis_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "redis_url", redis_url)
    set_limit(monkeypatch, "feed", 2)
    h, other = police(api, world), police(api, world, "station-2")
    ok(police_feed(api, h))
    ok(police_feed(api, h))
    assert_refused(police_feed(api, h))
    assert_refused(police_feed(api, h))
    ok(police_feed(api, other))
    assert rows(engine, "SELECT key FROM partner_rate_limits WHERE key LIKE 'feed:%'") == []  # not the database
    found = alerts(engine)
    assert len(found) == 1 and found[0]["detail"]["kind"] == "feed"
    user_id = found[0]["target_id"]
    store = RedisStore(redis_url)
    ttl = store.client.pttl(quotas.REDIS_PREFIX + f"feed:{user_id}")
    assert 0 < int(ttl) <= 60_000  # type: ignore[arg-type]
    assert int(store.client.get(quotas.REDIS_PREFIX + f"feed:{user_id}")) == 4  # type: ignore[arg-type]


def test_redis_stores_share_one_count_and_expire(redis_url: str) -> None:
    key = f"test:{os.urandom(8).hex()}"
    first, second = RedisStore(redis_url), RedisStore(redis_url)
    assert [first.hit(key, 30).count, second.hit(key, 30).count, first.hit(key, 30).count] == [1, 2, 3]
    assert 0 < second.hit(key, 30).reset_in <= 30
    first.client.delete(quotas.REDIS_PREFIX + key)  # as when the window's expiry removes it
    assert second.hit(key, 30).count == 1


def test_redis_down_falls_back_to_the_database(api: Api, world: World, engine: Engine,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(get_settings(), "redis_url", f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    set_limit(monkeypatch, "feed", 2)
    h = police(api, world)
    with caplog.at_level(logging.WARNING, logger=quotas.__name__):
        ok(police_feed(api, h))
        ok(police_feed(api, h))
        assert_refused(police_feed(api, h))
    warnings = [r for r in caplog.records if r.name == quotas.__name__ and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis" in warnings[0].getMessage()  # once per outage
    assert [r["count"] for r in rows(engine, "SELECT count FROM partner_rate_limits WHERE key LIKE 'feed:%'")] == [3]
    assert len(alerts(engine)) == 1


# --- two server processes, one count --------------------------------------------------------------------------------

async def _lookups(bases: list[str], headers: dict[str, str], n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as client:
        async def one(i: int) -> int:
            response = await client.post(bases[i % len(bases)] + LOOKUP, headers=headers,
                                         json={"id_number": id_number(seq=f"7{i:02d}")})
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.parametrize("store", ["database", "redis"])
def test_two_server_processes_share_the_count(store: str, api: Api, world: World, engine: Engine,
                                              tmp_path: Path, request: pytest.FixtureRequest) -> None:
    redis = request.getfixturevalue("redis_url") if store == "redis" else ""
    client: Client = make_client(api, "police", f"station-{store}",
                                 division_ids=[world.community("c1")["parent_id"]])
    headers = bearer(api, client)
    url = engine.url.render_as_string(hide_password=False)
    env = {"PARTNER_LOOKUP_LIMIT": "5", "PARTNER_LOOKUP_MISS_ALERT": "1000", "REDIS_URL": redis,
           "DB_POOL_SIZE": "4"}
    servers = [Server(url, tmp_path, env) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        bases = [s.base for s in servers]
        statuses = asyncio.run(_lookups(bases, headers, 16))  # at once, spread over both processes
        assert sorted(statuses) == [404] * 5 + [429] * 11, statuses
        assert asyncio.run(_lookups(bases, headers, 2)) == [429, 429]
    finally:
        for server in servers:
            server.kill()
    found = alerts(engine)
    assert len(found) == 1 and found[0]["target_id"] == client.user_id
    in_db = rows(engine, "SELECT count FROM partner_rate_limits WHERE key = :k", k=f"lookup:{client.user_id}")
    assert [r["count"] for r in in_db] == ([18] if store == "database" else [])


def test_quota_settings_name_every_kind() -> None:
    settings = get_settings()
    for kind in quotas.KINDS:
        q = quota_of(settings, kind)
        assert q.limit >= 1 and q.window_seconds >= 1
