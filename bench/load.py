"""A morning of load (issue 12): phones sign in and sync at the start of a shift while supervisors search.

    .venv/bin/python bench/load.py                      # SQLite, one server process
    .venv/bin/python bench/load.py --pg                 # PostgreSQL (own database bench_load), --workers 2

In one run on one machine, against one database, loopback only:
1. builds the demo city (`--size` residents; bench/city.py) with `--phones` workers (communities in turn) and
   `--supervisors` supervisors (districts, then streets) of the bench's own;
2. starts the real app, `migrant serve --workers N`;
3. every phone (its own device id), starting at a random moment within `--ramp` seconds: signs in, makes a
   first pull, records `--visits` visits offline (two service deliveries each, as WatermelonDB sends them;
   bench/sync.py's `push_changes`), pushes them, then pulls again; meanwhile every supervisor loops over a
   name search, a lookup by ID number, the visit list, the task list and a community's residents until the
   phones are done. Every request has a client timeout (`--timeout`) and the whole morning a deadline
   (`--deadline`): a stall shows as errors, never as a hang;
4. reports p50, p95 and p99 per route, throughput, and the error rate (must be 0);
5. checks the database: every visit and delivery pushed is stored exactly once, nothing else was stored for the
   bench's workers, each phone's second pull carried each of its visits once, and the audit chain verifies.
Exit status 1 when any request failed or a check did not hold. No assertions on time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sync  # bench/sync.py
from city import Account, City, app_server, build, load_average
from search import bench_url, drop, free_port
from sqlalchemy import func, select
from sqlmodel import col

from app import wiring
from app.core.db import create_db_engine, unit_of_work
from app.visits.models import ServiceDelivery, Visit

wiring.install()  # the ledger and the event subscriptions, as the app and the CLI have them

V1 = "/api/v1"


@dataclass
class Tally:
    """Latencies (ms) and failures per route."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # route → kind → n
    samples: dict[str, str] = field(default_factory=dict)  # the first failure of each route and kind

    async def call(self, client: httpx.AsyncClient, route: str, method: str, url: str, **kwargs: Any
                   ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.fail(route, type(exc).__name__, f"after {time.perf_counter() - started:.1f} s")
            return None
        self.times[route].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            self.fail(route, str(response.status_code), response.text[:160])
            return None
        return response

    def fail(self, route: str, kind: str, sample: str) -> None:
        self.errors[route][kind] += 1
        self.samples.setdefault(f"{route} {kind}", sample)


@dataclass
class Morning:
    city: City
    tally: Tally
    inputs: dict[str, tuple[list[Any], list[Any], int]]  # community id → (people, items, catalogue version)
    pushed: dict[str, list[str]] = field(default_factory=dict)  # phone → visit ids pushed (200, none rejected)
    deliveries: int = 0
    echoed: dict[str, int] = field(default_factory=dict)  # phone → its visits its second pull carried once
    phones_done: int = 0
    before: int = 0  # visits of the bench's workers before the morning (the demo history)


async def phone(client: httpx.AsyncClient, m: Morning, worker: Account, index: int, args: argparse.Namespace,
                rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, args.ramp))
    t = m.tally
    response = await t.call(client, "POST /auth/login", "POST", V1 + "/auth/login",
                            json={"username": worker.username, "password": m.city.password})
    if response is None:
        return
    headers = {"Authorization": "Bearer " + response.json()["access_token"], "X-Device-Id": f"bench-phone-{index:04d}",
               "X-App-Version": "bench", "Accept-Encoding": "gzip"}
    response = await t.call(client, "first pull", "GET", V1 + "/sync/pull", headers=headers,
                            params={"schema_version": 1, "last_pulled_at": "null"})
    if response is None:
        return
    cursor = response.json()["timestamp"]
    people, items, catalog = m.inputs[worker.division_id]
    changes, ids = sync.push_changes(rng, people, args.visits, items, catalog, datetime.now(UTC))
    await asyncio.sleep(rng.uniform(0, args.think))  # the visits, offline
    response = await t.call(client, "push", "POST", V1 + "/sync/push", headers=headers,
                            params={"last_pulled_at": cursor}, json=changes)
    if response is None:
        return
    if response.json().get("rejected"):
        t.fail("push", "rejected", str(response.json()["rejected"][:2]))
        return
    m.pushed[worker.username + f"#{index}"] = ids
    m.deliveries += len(changes["service_deliveries"]["updated"])
    response = await t.call(client, "second pull", "GET", V1 + "/sync/pull", headers=headers,
                            params={"schema_version": 1, "last_pulled_at": cursor})
    if response is None:
        return
    seen = [r["id"] for r in response.json()["changes"]["visits"]["updated"]]
    m.echoed[worker.username + f"#{index}"] = sum(1 for i in ids if seen.count(i) == 1)
    m.phones_done += 1


async def supervisor(client: httpx.AsyncClient, m: Morning, account: Account, stop: asyncio.Event,
                     args: argparse.Namespace, rng: random.Random, lookups: list[tuple[str, str, str]]) -> None:
    t = m.tally
    response = await t.call(client, "POST /auth/login", "POST", V1 + "/auth/login",
                            json={"username": account.username, "password": m.city.password})
    if response is None:
        return
    headers = {"Authorization": "Bearer " + response.json()["access_token"]}
    while not stop.is_set():
        name, id_number, community = lookups[rng.randrange(len(lookups))]
        for route, path, params in (
                ("GET /residents?q=", "/residents", {"q": name[:2]}),
                ("GET /residents?id_number=", "/residents", {"id_number": id_number}),
                ("GET /visits", "/visits", {"limit": 50}),
                ("GET /tasks", "/tasks", {"limit": 50}),
                ("GET /residents?community_id=", "/residents", {"community_id": community, "limit": 50})):
            await t.call(client, route, "GET", V1 + path, headers=headers, params=params)
            await asyncio.sleep(rng.uniform(0, args.pause))


async def morning(m: Morning, base: str, args: argparse.Namespace, lookups: list[tuple[str, str, str]]) -> float:
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=args.phones + args.supervisors + 10, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits) as client:
        stop = asyncio.Event()
        bosses = [asyncio.create_task(supervisor(client, m, s, stop, args, random.Random(rng.random()), lookups))
                  for s in m.city.supervisors]
        started = time.perf_counter()
        phones = [phone(client, m, w, i, args, random.Random(rng.random())) for i, w in enumerate(m.city.workers)]
        try:
            await asyncio.wait_for(asyncio.gather(*phones), args.deadline)
        except TimeoutError:
            m.tally.fail("deadline", "reached", f"the phones were not done within --deadline {args.deadline} s")
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.wait(bosses, timeout=args.timeout + 5)
        for task in bosses:
            task.cancel()
    return elapsed


def prepare(city: City) -> tuple[dict[str, tuple[list[Any], list[Any], int]], list[tuple[str, str, str]]]:
    """What each community's phones visit (bench/sync.py's push_inputs), and what supervisors look up."""
    from app.people.models import Resident

    inputs = {}
    for worker in city.workers:
        if worker.division_id not in inputs:
            inputs[worker.division_id] = sync.push_inputs(city.url, worker.username)
    engine = create_db_engine(city.url)
    try:
        with engine.connect() as conn:
            lookups = [(r[0], r[1], r[2]) for r in conn.execute(
                select(col(Resident.name), col(Resident.id_number), col(Resident.community_id))
                .order_by(col(Resident.id)).limit(500))]
    finally:
        engine.dispose()
    return inputs, lookups


def bench_visits(m: Morning) -> int:
    engine = create_db_engine(m.city.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Visit).where(
                col(Visit.worker_id).in_([w.user_id for w in m.city.workers]))).scalar_one())
    finally:
        engine.dispose()


def check(m: Morning) -> list[str]:
    """What the database holds afterwards; each failed check is a line."""
    from app.ledger.audit import verify_chain

    problems = []
    ids = [i for phone_ids in m.pushed.values() for i in phone_ids]
    engine = create_db_engine(m.city.url)
    try:
        with unit_of_work(write=False, engine=engine) as session:
            stored, delivered = 0, 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                stored += session.execute(select(func.count()).select_from(Visit)
                                          .where(col(Visit.id).in_(chunk))).scalar_one()
                delivered += session.execute(select(func.count()).select_from(ServiceDelivery)
                                             .where(col(ServiceDelivery.visit_id).in_(chunk))).scalar_one()
            report = verify_chain(session)
    finally:
        engine.dispose()
    by_bench = bench_visits(m) - m.before
    if stored != len(ids) or len(set(ids)) != len(ids):
        problems.append(f"visits pushed {len(ids)}, stored {stored}")
    if delivered != m.deliveries:
        problems.append(f"deliveries pushed {m.deliveries}, stored {delivered}")
    if by_bench != len(ids):
        problems.append(f"the bench's workers have {by_bench} new visits stored, {len(ids)} were pushed")
    short = {p: n for p, n in m.echoed.items() if n != len(m.pushed[p])}
    if short:
        problems.append(f"{len(short)} phones' second pulls did not carry each of their visits exactly once")
    if report.first_broken_id is not None:
        problems.append(f"audit chain broken at row {report.first_broken_id}: {report.reason}")
    print(f"  stored: {stored:,} of {len(ids):,} visits pushed, {delivered:,} of {m.deliveries:,} deliveries; "
          f"the bench's workers have {by_bench:,} new visits; audit chain "
          f"{'intact' if report.first_broken_id is None else 'BROKEN'} ({report.checked:,} rows)")
    return problems


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def report(m: Morning, elapsed: float, args: argparse.Namespace, db: str) -> int:
    t = m.tally
    failed = sum(sum(kinds.values()) for kinds in t.errors.values())
    total = sum(len(v) for v in t.times.values()) + failed
    print(f"\n{db}, migrant serve --workers {args.workers}: {args.phones} phones ({m.phones_done} finished), "
          f"{args.supervisors} supervisors, {elapsed:.1f} s; {total:,} requests = {total / elapsed:,.1f} req/s; "
          f"errors {failed} ({100 * failed / max(total, 1):.2f} %); load average {load_average()}")
    print(f"  {'route':<30}{'answers':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}  errors")
    for route in sorted(set(t.times) | set(t.errors)):
        ordered = sorted(t.times.get(route, []))
        kinds = ", ".join(f"{k}×{n}" for k, n in t.errors.get(route, Counter()).most_common()) or "0"
        print(f"  {route:<30}{len(ordered):>8}{percentile(ordered, 0.5):>10.0f}{percentile(ordered, 0.95):>10.0f}"
              f"{percentile(ordered, 0.99):>10.0f}{(ordered[-1] if ordered else 0):>10.0f}  {kinds}")
    for what, sample in t.samples.items():
        print(f"  first {what}: {sample}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (own database bench_load) instead of SQLite")
    parser.add_argument("--workers", type=int, default=None, help="server processes (default: 1 SQLite, 2 PostgreSQL)")
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--supervisors", type=int, default=10)
    parser.add_argument("--visits", type=int, default=5, help="visits each phone records offline and pushes")
    parser.add_argument("--size", type=int, default=20_000, help="residents in the demo city")
    parser.add_argument("--ramp", type=float, default=20.0, help="phones start at random within this many seconds")
    parser.add_argument("--think", type=float, default=2.0, help="at most this long between a phone's pull and push")
    parser.add_argument("--pause", type=float, default=0.5, help="at most this long between a supervisor's requests")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request (s)")
    parser.add_argument("--deadline", type=float, default=600.0, help="the whole morning's bound (s)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    args = parser.parse_args()
    db = "postgres" if args.pg else "sqlite"
    args.workers = args.workers or (2 if args.pg else 1)
    url = bench_url(db, "load")
    city = build(db, url, size=args.size, seed=args.seed, workers=args.phones, supervisors=args.supervisors)
    inputs, lookups = prepare(city)
    m = Morning(city, Tally(), inputs)
    m.before = bench_visits(m)
    print(f"\n{db}: load average {load_average()} at the start", flush=True)
    try:
        with app_server(url, free_port(), workers=args.workers) as server:
            elapsed = asyncio.run(morning(m, server.base, args, lookups))
        failed = report(m, elapsed, args, db)
        problems = check(m)
        for problem in problems:
            print("  CHECK FAILED: " + problem)
    finally:
        if db == "postgres" and not args.keep:
            drop(db, url)
    raise SystemExit(1 if failed or problems else 0)


if __name__ == "__main__":
    main()
