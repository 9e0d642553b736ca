"""Visits benchmark: a worker's phone records 10,000 visits through the API, next to the physical limit.

    .venv/bin/python bench/visits.py --db sqlite          # bench/out/visits.db, rebuilt every run
    .venv/bin/python bench/visits.py --db postgres        # own database bench_visits on
                                                          # postgresql+psycopg://postgres@127.0.0.1:5432

What it does, in one run on one machine:
1. builds the database: migrations (which seed the service catalogue), the demo city (`--size` residents,
   one district), a worker account for the first community (random password, kept in memory), then the
   demo visit history and open tasks (app/demo/visits.py) so the tables are not empty, then ANALYZE;
2. starts the real app under uvicorn on loopback (one worker process, the production server) and signs in
   as that worker;
3. for each of `--visits` visits, interleaved so that machine noise hits both sides alike:
   - API:    POST /api/v1/visits with a realistic body (in person, a GPS check-in near the dwelling in GCJ-02
             or WGS-84, a client id, 0–2 services, now and then a follow-up) → 201;
   - direct: the same rows the API stored (the visit and its service deliveries, read back untimed and
             given new ids) inserted through the bare driver (sqlite3 / psycopg) in one transaction per
             visit with a durable commit (SQLite WAL + synchronous=FULL, PostgreSQL synchronous_commit=on)
             — the least any server must do to keep a visit: the physical limit;
   - floors: GET /healthz (HTTP + SELECT 1) and GET /api/v1/auth/me (authentication alone);
4. prints medians, p95, throughput (visits/s, one client, sequential) and the ratio direct median / API
   median (target ≥ 0.25). What the API does beyond the limit (authentication, scope check, validation,
   catalogue resolution, check-in flags, task completion, audit events, the JSON answer) is what the ratio
   prices. `--breakdown` also times those parts in-process. No assertions on time.

Batch mode (`--batch 1000`): in-process, no HTTP. Each of `--rounds` rounds (after one warm-up round) records
`--batch` visits × 2 deliveries with app/visits/batch.py `record_visits` in one transaction (audit seal and
durable commit included, body validation excluded and reported apart), then inserts the same rows (read back,
new ids) with one executemany per table in one transaction through the bare driver; ratio executemany median /
record_visits median (target ≥ 0.3). `--profile cumulative|tottime` prints a cProfile of record_visits.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import secrets
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import search  # bench/search.py
from alembic import command
from search import admin, bench_url, drop, free_port, start_server, summary, timed
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.cli import alembic_config
from app.core.actor import Role
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.people.models import Resident, ResidentStatus
from app.places.models import Division, Dwelling, Level
from app.visits.geo import EARTH_RADIUS_M, wgs84_to_gcj02
from app.visits.models import ServiceDelivery, Visit

wiring.install()  # the ledger and the event subscriptions, as the app and the CLI have them

ITEMS = ("education", "contraceptives", "pregnancy_iud_check", "rh_checkup")
NOTES = ("documents_checked", "address_confirmed", "counselling_given", "fp_certificate_checked")
VISIT_COLUMNS = [c.name for c in Visit.__table__.columns]  # type: ignore[attr-defined]
DELIVERY_COLUMNS = [c.name for c in ServiceDelivery.__table__.columns]  # type: ignore[attr-defined]


# --- the database ----------------------------------------------------------------------------------------

def database_url(db: str) -> str:
    return bench_url(db, "visits")


def build(db: str, url: str, size: int, seed: int) -> tuple[str, str]:
    """A fresh database with the demo city, a worker for the first community and its visit history."""
    from app.accounts import service as users_service
    from app.demo.seed import seed_demo
    from app.demo.visits import seed_visits

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    username, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(18) + "aA1!"
    started = time.perf_counter()
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=size, seed=seed, with_users=False, with_visits=False, districts=1)
        with unit_of_work(engine=engine) as session:
            community = session.execute(select(Division).where(col(Division.level) == Level.community.value)
                                        .order_by(col(Division.path)).limit(1)).scalar_one()
            users_service.create_user(session, username=username, display_name="bench", role=Role.worker,
                                      password=password, division_ids=[community.id])
            history = seed_visits(session, seed)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        print(f"built {size:,} residents, {history.visits:,} earlier visits, {history.tasks:,} tasks in "
              f"{time.perf_counter() - started:.0f} s")
    finally:
        engine.dispose()
    return username, password


def residents(url: str, username: str) -> list[tuple[str, bool, float, float]]:
    """(id, key person, lat, lng) of the registered residents in the worker's community."""
    from app.auth.models import User, UserScope

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            community = conn.execute(select(col(UserScope.division_id)).join(User, col(User.id) == col(
                UserScope.user_id)).where(col(User.username) == username)).scalar_one()
            rows = conn.execute(
                select(col(Resident.id), col(Resident.key_person), col(Dwelling.lat), col(Dwelling.lng))
                .join(Dwelling, col(Dwelling.id) == col(Resident.dwelling_id))
                .where(col(Resident.community_id) == community,
                       col(Resident.status) == ResidentStatus.registered.value, col(Dwelling.lat).is_not(None))
                .order_by(col(Resident.id))).all()
            return [(r[0], bool(r[1]), float(r[2]), float(r[3])) for r in rows]
    finally:
        engine.dispose()


# --- what the phone sends -------------------------------------------------------------------------------

def body(rng: random.Random, resident: tuple[str, bool, float, float], now: datetime) -> dict[str, Any]:
    rid, key, lat0, lng0 = resident
    started = now - timedelta(days=rng.uniform(0, 20), hours=1)
    ended = started + timedelta(minutes=rng.uniform(8, 30))
    distance, bearing = abs(rng.gauss(0, 18)), rng.uniform(0, 6.283)
    lat = lat0 + math.degrees(distance * math.cos(bearing) / EARTH_RADIUS_M)
    lng = lng0 + math.degrees(distance * math.sin(bearing) / EARTH_RADIUS_M) / math.cos(math.radians(lat0))
    system = "gcj02" if rng.random() < 0.6 else "wgs84"
    if system == "gcj02":
        lat, lng = wgs84_to_gcj02(lat, lng)
    services = [{"item_code": code, "quantity": rng.randint(1, 3) if code == "contraceptives" else 1}
                for code in rng.sample(ITEMS, rng.choice((0, 0, 1, 1, 1, 2)))]
    out: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128))), "resident_id": rid, "mode": "in_person",
        "purpose": "key_person" if key else "routine", "outcome": "met",
        "started_at": started.isoformat(), "ended_at": ended.isoformat(),
        "notes": rng.sample(NOTES, rng.choice((0, 1, 2))), "services": services,
        "checkin": {"lat": round(lat, 7), "lng": round(lng, 7), "coord_system": system,
                    "accuracy_m": round(rng.uniform(3, 35), 1), "provider": rng.choice(("gps", "fused", "network")),
                    "mock_location": False, "fix_time": (started - timedelta(seconds=rng.uniform(0, 60))).isoformat()},
    }
    if rng.random() < 0.05:  # due a week from now, as a follow-up is: not on today's route (GET /me/tasks) already
        out["follow_up"] = {"due_date": (now + timedelta(days=7)).date().isoformat(), "reason": "other"}
    return out


class Api(search.Api):
    def fresh(self) -> None:
        if time.monotonic() - self.logged_in > 240:  # access tokens live 10 minutes
            self.login()

    def post_visit(self, payload: dict[str, Any]) -> None:
        response = self.client.post("/api/v1/visits", json=payload)
        if response.status_code != 201:
            raise SystemExit(f"POST /api/v1/visits: {response.status_code} {response.text[:300]}")


# --- the direct side: the same rows through the bare driver --------------------------------------------

class Direct:
    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)  # our connect-time settings (WAL, synchronous=FULL …)
        self.raw: Any = self.engine.raw_connection()
        self.sqlite = self.engine.dialect.name == "sqlite"
        mark = "?" if self.sqlite else "%s"
        self.select_visit = f"SELECT {', '.join(VISIT_COLUMNS)} FROM visits WHERE id = {mark}"  # noqa: S608
        self.select_deliveries = (f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM service_deliveries "  # noqa: S608
                                  f"WHERE visit_id = {mark}")
        self.insert_visit = (f"INSERT INTO visits ({', '.join(VISIT_COLUMNS)}) "  # noqa: S608
                             f"VALUES ({', '.join([mark] * len(VISIT_COLUMNS))})")
        self.insert_delivery = (f"INSERT INTO service_deliveries ({', '.join(DELIVERY_COLUMNS)}) "  # noqa: S608
                                f"VALUES ({', '.join([mark] * len(DELIVERY_COLUMNS))})")

    def rows_of(self, visit_id: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """The rows the API stored for a visit, with new ids (untimed)."""
        cursor = self.raw.cursor()
        cursor.execute(self.select_visit, (visit_id,))
        visit = list(cursor.fetchone())
        cursor.execute(self.select_deliveries, (visit_id,))
        deliveries = [list(r) for r in cursor.fetchall()]
        if not self.sqlite:
            self.raw.rollback()
        cursor.close()
        new = uuid.uuid4().hex
        visit[0] = new
        for d in deliveries:
            d[0], d[1] = uuid.uuid4().hex, new
        return tuple(visit), [tuple(d) for d in deliveries]

    def insert(self, rows: tuple[tuple[Any, ...], list[tuple[Any, ...]]]) -> None:
        visit, deliveries = rows
        cursor = self.raw.cursor()
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(self.insert_visit, visit)
        for d in deliveries:
            cursor.execute(self.insert_delivery, d)
        if self.sqlite:
            cursor.execute("COMMIT")
        else:
            self.raw.commit()
        cursor.close()

    def insert_many(self, rows: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]) -> None:
        """Every visit and delivery row in one transaction: one executemany per table, a durable commit."""
        cursor = self.raw.cursor()
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(self.insert_visit, [visit for visit, _ in rows])
        cursor.executemany(self.insert_delivery, [d for _, deliveries in rows for d in deliveries])
        if self.sqlite:
            cursor.execute("COMMIT")
        else:
            self.raw.commit()
        cursor.close()

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


# --- measuring ---------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    url = database_url(args.db)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    username, password = build(args.db, url, args.size, args.seed)
    people = residents(url, username)
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    bodies = [body(rng, people[i % len(people)], now) for i in range(args.visits + args.warmup)]
    direct = Direct(url)
    port = free_port()
    server = start_server(url, port)
    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {k: [] for k in ("api", "direct", "healthz", "me")}
    try:
        api = Api(port, username, password)
        for payload in bodies[:args.warmup]:  # caches, prepared statements, the server's first requests
            api.post_visit(payload)
            direct.insert(direct.rows_of(payload["id"]))
        wall_api = wall_direct = 0.0
        for i, payload in enumerate(bodies[args.warmup:]):
            api.fresh()
            elapsed = timed(lambda p=payload: api.post_visit(p))
            times["api"].append(elapsed)
            wall_api += elapsed
            rows = direct.rows_of(payload["id"])
            elapsed = timed(lambda r=rows: direct.insert(r))
            times["direct"].append(elapsed)
            wall_direct += elapsed
            if i % 10 == 0:
                times["healthz"].append(timed(lambda: api.client.get("/healthz")))
                times["me"].append(timed(lambda: api.client.get("/api/v1/auth/me")))
            if (i + 1) % 2000 == 0:
                print(f"  {i + 1:>6,} visits  API {1000 * (i + 1) / wall_api:6.0f}/s  "
                      f"direct {1000 * (i + 1) / wall_direct:6.0f}/s", flush=True)
        if args.breakdown:
            breakdown(url, username, bodies[:200], people)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        direct.close()
    stored = check(url, username, [b["id"] for b in bodies])
    n = args.visits
    print(f"\n{args.db}: {n:,} visits by one worker to {len(people)} residents ({args.size:,} residents in the "
          f"database); {os.cpu_count()} CPUs, load average {load_start:.1f} at the start; {stored}")
    print(f"  {'':<44}{'median':>9}{'p95':>10}{'visits/s':>10}")
    api_med, api_p95 = summary(times["api"])
    dir_med, dir_p95 = summary(times["direct"])
    print(f"  {'POST /api/v1/visits':<44}{api_med:>7.2f}ms{api_p95:>8.2f}ms{1000 * n / sum(times['api']):>10.0f}")
    print(f"  {'direct: INSERT visit + deliveries, commit':<44}{dir_med:>7.2f}ms{dir_p95:>8.2f}ms"
          f"{1000 * n / sum(times['direct']):>10.0f}")
    for label, key in (("GET /healthz", "healthz"), ("GET /api/v1/auth/me", "me")):
        med, p95 = summary(times[key])
        print(f"  {label:<44}{med:>7.2f}ms{p95:>8.2f}ms")
    print(f"  ratio direct median / API median {dir_med / api_med:.2f} (target ≥ 0.25); throughput ratio "
          f"{sum(times['direct']) / sum(times['api']):.2f}; load average {os.getloadavg()[0]:.1f} at the end")
    print("  the limit: the same visit and delivery rows, one transaction per visit with a durable commit, through "
          "the bare driver; one client, sequential requests")
    if args.db == "postgres" and not args.keep:
        drop(args.db, url)


def check(url: str, username: str, ids: list[str]) -> str:
    """The API stored every visit (with its deliveries); reported, not asserted."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            visits = conn.execute(select(func.count()).select_from(Visit).where(col(Visit.id).in_(ids))).scalar_one()
            deliveries = conn.execute(select(func.count()).select_from(ServiceDelivery)
                                      .where(col(ServiceDelivery.visit_id).in_(ids))).scalar_one()
            audit = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
        return f"stored {visits:,} of {len(ids):,} visits with {deliveries:,} deliveries; {audit:,} audit events"
    finally:
        engine.dispose()


def breakdown(url: str, username: str, bodies: list[dict[str, Any]], people: list[Any]) -> None:
    """What one POST is made of, timed part by part in this process against the same database."""
    from sqlmodel import Session

    from app.auth.models import AuthSession, User, UserScope
    from app.core.config import get_settings
    from app.core.db import UnitOfWork, begin
    from app.core.security import decode_access_token, issue_access_token
    from app.core.types import utcnow
    from app.visits import recording
    from app.visits.schemas import VisitCreate

    engine = create_db_engine(url)
    settings = get_settings()
    with Session(engine) as session:
        user = session.execute(select(User).where(col(User.username) == username)).scalar_one()
        path = session.execute(select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(
            Division.id)).where(col(UserScope.user_id) == user.id)).scalar_one()
    from app.core.actor import Actor, AreaScope

    actor = Actor(user.id, username, Role.worker, "bench", AreaScope((path,)))
    token, _ = issue_access_token(settings, user_id=user.id, session_id="s" * 32, now=utcnow())
    rng = random.Random(7)
    fresh = [dict(b, id=str(uuid.UUID(int=rng.getrandbits(128)))) for b in bodies]

    def empty(i: int) -> None:
        with Session(engine) as session:
            begin(session, write=True)
            session.commit()

    def who(i: int) -> None:
        with Session(engine) as session:
            begin(session, write=True)
            session.execute(select(User, AuthSession).join(AuthSession, col(AuthSession.user_id) == col(User.id))
                            .where(col(User.id) == user.id)).first()
            list(session.execute(select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(
                Division.id)).where(col(UserScope.user_id) == user.id)).scalars())
            session.rollback()

    def record(i: int, commit: bool) -> None:  # the route's work in its unit of work, plus the answer
        uow = UnitOfWork(engine, write=True)
        try:
            out, _ = recording.record_visit(uow.session, actor, VisitCreate.model_validate(fresh[i]))
            out.model_dump_json(by_alias=True)
        except BaseException:
            uow.abandon()
            raise
        if commit:
            uow.finish()  # sealed (audit event, change log) and committed
        else:
            uow.abandon()

    parts: list[tuple[str, Callable[[int], Any]]] = [
        ("empty write transaction + commit", empty),
        ("JWT verification", lambda i: decode_access_token(settings, token)),
        ("actor: user + scope queries", who),
        ("validate the body (pydantic)", lambda i: VisitCreate.model_validate(bodies[i])),
        ("record_visit, rolled back", lambda i: record(i, False)),
        ("record_visit + audit seal + commit", lambda i: record(i, True)),
    ]
    print("\n  breakdown (in-process, median ms):")
    n = len(bodies)
    for label, fn in parts:
        print(f"    {label:<40}{statistics.median([timed(lambda i=i, fn=fn: fn(i)) for i in range(n)]):>9.3f}")
    engine.dispose()


# --- batch mode: record_visits vs executemany -------------------------------------------------------------

def batch_actor(url: str, username: str) -> Any:
    from app.auth.models import User, UserScope
    from app.core.actor import Actor, AreaScope

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            user_id = conn.execute(select(col(User.id)).where(col(User.username) == username)).scalar_one()
            path = conn.execute(select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(
                Division.id)).where(col(UserScope.user_id) == user_id)).scalar_one()
    finally:
        engine.dispose()
    return Actor(user_id, username, Role.worker, "bench", AreaScope((path,)))


def batch_bodies(rng: random.Random, people: list[Any], n: int, now: datetime) -> list[dict[str, Any]]:
    """`n` visits with exactly two deliveries each (client ids on everything, as a phone sends them)."""
    out = []
    for i in range(n):
        b = body(rng, people[(i * 7919) % len(people)], now)
        b["services"] = [{"id": uuid.UUID(int=rng.getrandbits(128)).hex, "item_code": code, "quantity": 1}
                         for code in rng.sample(ITEMS, 2)]
        out.append(b)
    return out


def run_batch(args: argparse.Namespace) -> None:
    """`--rounds` rounds, interleaved: record_visits of `--batch` visits × 2 deliveries in one transaction
    (audit seal and durable commit included), then the same rows inserted by executemany in one transaction."""
    import cProfile
    import pstats

    from app.core import context
    from app.visits.recording import VisitItem, record_visits
    from app.visits.schemas import VisitCreate

    url = database_url(args.db)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    username, _ = build(args.db, url, args.size, args.seed)
    people = residents(url, username)
    actor = batch_actor(url, username)
    rng = random.Random(args.seed + 1)  # not the demo history's stream: its ids would come out again
    engine = create_db_engine(url)
    direct = Direct(url)
    profiler = cProfile.Profile() if args.profile else None
    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {"batch": [], "direct": [], "validate": []}
    sent: list[str] = []
    token = context.set_current(context.RequestContext(actor_id=actor.user_id, actor_role=actor.role.value))
    gc.collect()
    gc.freeze()  # as the server does after start-up (app.main.lifespan): the build's objects stay out of GC passes
    try:
        for round_ in range(args.rounds + 1):  # the first round warms caches and is not counted
            raw = batch_bodies(rng, people, args.batch, datetime.now(UTC))
            sent += [b["id"] for b in raw]
            started = time.perf_counter_ns()
            items = [VisitItem(VisitCreate.model_validate(b)) for b in raw]
            validated = (time.perf_counter_ns() - started) / 1e6

            def record(items: list[Any] = items) -> None:
                with unit_of_work(engine=engine) as session:  # a write; sealed (audit, sync log) at commit
                    results = record_visits(session, actor, items)
                bad = [r for r in results if r.status != "created"]
                if bad:
                    raise SystemExit(f"record_visits: {len(bad)} not created, first {bad[0]}")

            if profiler is not None and round_ > 0:
                profiler.enable()
            elapsed = timed(record)
            if profiler is not None:
                profiler.disable()
            rows = [direct.rows_of(b["id"]) for b in raw]
            direct_ms = timed(lambda rows=rows: direct.insert_many(rows))
            if round_ == 0:
                continue
            times["batch"].append(elapsed)
            times["direct"].append(direct_ms)
            times["validate"].append(validated)
            print(f"  round {round_}: record_visits {elapsed:8.1f} ms  executemany {direct_ms:7.1f} ms  "
                  f"(body validation {validated:.1f} ms)", flush=True)
    finally:
        context.reset(token)
        direct.close()
        engine.dispose()
    stored = check(url, username, sent)
    batch_med, direct_med = statistics.median(times["batch"]), statistics.median(times["direct"])
    print(f"\n{args.db}: {args.rounds} rounds of {args.batch:,} visits × 2 deliveries ({args.size:,} residents); "
          f"{os.cpu_count()} CPUs, load average {load_start:.1f} at the start; {stored}")
    print(f"  record_visits + audit seal + commit, median {batch_med:8.1f} ms  "
          f"({1000 * args.batch / batch_med:,.0f} visits/s)")
    print(f"  executemany of the same rows + commit, median {direct_med:6.1f} ms  "
          f"({1000 * args.batch / direct_med:,.0f} visits/s)")
    print(f"  body validation (pydantic, not in either side), median {statistics.median(times['validate']):.1f} ms")
    print(f"  ratio executemany / record_visits (medians) {direct_med / batch_med:.2f} (target ≥ 0.3); "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(args.profile).print_stats(40)
    if args.db == "postgres" and not args.keep:
        drop(args.db, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--visits", type=int, default=10_000, help="measured visits")
    parser.add_argument("--warmup", type=int, default=100, help="visits sent before measuring")
    parser.add_argument("--size", type=int, default=20_000, help="residents in the demo city (one district)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--breakdown", action="store_true", help="also time a request's parts in-process")
    parser.add_argument("--batch", type=int, default=0,
                        help="batch mode: record_visits of this many visits × 2 deliveries per transaction, in-process")
    parser.add_argument("--rounds", type=int, default=7, help="batch mode: measured rounds")
    parser.add_argument("--profile", choices=("cumulative", "tottime"),
                        help="batch mode: cProfile record_visits, sorted so")
    args = parser.parse_args()
    if args.batch:
        run_batch(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
