"""Sync benchmark: a worker's phone syncs a community of 5,000 residents with 60,000 visits (docs/sync.md).

    .venv/bin/python bench/sync.py --db sqlite          # bench/out/sync.db, rebuilt every run
    .venv/bin/python bench/sync.py --db postgres        # own database bench_sync on
                                                        # postgresql+psycopg://postgres@127.0.0.1:5432

What it does, in one run on one machine:
1. builds the database: migrations (they seed the service catalogue), a demo city of ten communities of
   `--residents` residents each in one district (app/demo, written in bulk), a worker account for the first
   community (random password, kept in memory), the demo visit history and tasks for it (app/demo/visits.py),
   then more visits of the same generator spread over the last twelve months until the community has
   `--visits` visits; every synced row is entered in the sync log (`changes.mark_rows`, as bulk writers
   must), then ANALYZE;
2. starts the real app under uvicorn on loopback (one worker process) and signs in as that worker;
3. measures
   (b) first pull (`last_pulled_at=null`, `Accept-Encoding: gzip`): time to the last byte, the compressed and
       the raw JSON size, the records per table; `--first-pulls` runs, median; then the same pull's parts
       in-process (the snapshot read, the JSON encoding, gzip) next to the bare driver's SELECT of the same
       columns with the same filters (the least any server must read);
   (c) empty incremental pull (`last_pulled_at` = the latest timestamp): `--empty-pulls` runs interleaved with
       the floors GET /healthz and GET /api/v1/auth/me, median and p95;
   (a) one push (POST /api/v1/sync/push) of `--push-visits` new visits with 2 service deliveries each, as
       WatermelonDB sends them (`sendCreatedAsUpdated`: raw records under `updated`, `_status: "created"`),
       `--pushes` rounds; each round is followed, in the same run, by the raw insert of the very rows the push
       stored (read back untimed, given new ids) through the bare driver in one transaction with a durable
       commit: rows/s of both and the ratio push rows/s / raw rows/s (target ≥ 0.3); then, as a ceiling, the
       bare driver writing everything the push wrote (those rows, their sync-log rows and audit events, one
       durable commit; the ledger copies deleted afterwards): raw / that is the most any push that keeps a
       change log and an audit trail could reach. Skipped (with a note) when the server has no push route yet.
No assertions on time; the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
from alembic import command
from raw_insert import Raw  # bench/raw_insert.py
from search import admin, bench_url, drop, free_port, start_server, summary, timed  # bench/search.py
from sqlalchemy import func, select, true
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from app import wiring
from app.cli import alembic_config
from app.core.actor import Role
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.people.models import Resident, ResidentStatus
from app.places.models import Division, Dwelling, Level
from app.visits.models import ServiceDelivery, Visit

wiring.install()  # the ledger and the event subscriptions, as the app and the CLI have them

V1 = "/api/v1"
COMMUNITIES = 10  # the demo's minimum; the first one is the worker's


# --- the database ----------------------------------------------------------------------------------------

def database_url(db: str) -> str:
    return bench_url(db, "sync")


def build(db: str, url: str, residents: int, visits: int, seed: int) -> tuple[str, str]:
    """A fresh database: ten communities of `residents`, a worker for the first with `visits` visits."""
    from app.accounts import service as users_service
    from app.demo import seed as demo_seed
    from app.demo.visits import seed_visits
    from app.ledger import changes
    from app.sync.wire import MODELS

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    username, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(18) + "aA1!"
    started = time.perf_counter()
    # The demo sizes communities by these two (500 residents, 170 dwellings); a bench community is bigger.
    demo_seed.RESIDENTS_PER_COMMUNITY = residents
    demo_seed.DWELLINGS_PER_COMMUNITY = max(170, residents // 3)
    try:
        with unit_of_work(engine=engine) as session:
            demo_seed.seed_demo(session, size=residents * COMMUNITIES, seed=seed, with_users=False,
                                with_visits=False, districts=1)
        with unit_of_work(engine=engine) as session:
            community = session.execute(select(Division).where(col(Division.level) == Level.community.value)
                                        .order_by(col(Division.path)).limit(1)).scalar_one()
            user = users_service.create_user(session, username=username, display_name="bench", role=Role.worker,
                                             password=password, division_ids=[community.id])
            history = seed_visits(session, seed)
            extra = top_up_visits(session, community, user.id, visits, seed)
            for model in MODELS.values():  # what the ORM would have logged, had the rows come one by one
                changes.mark_rows(session, model.__table__, true())  # type: ignore[attr-defined]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        print(f"built {residents * COMMUNITIES:,} residents in {COMMUNITIES} communities, "
              f"{history.visits + extra:,} visits in the worker's community, {history.tasks:,} tasks in the city, in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    finally:
        engine.dispose()
    return username, password


def top_up_visits(session: Session, community: Division, worker_id: str, target: int, seed: int) -> int:
    """More visits of the demo generator, over the last twelve months, until the community has `target`."""
    from app.catalog.models import CatalogVersion, ServiceItem
    from app.core.bulk import BulkWriter, table_of
    from app.core.types import city_today, utcnow
    from app.demo.visits import DELIVERY_COLUMNS as DEMO_DELIVERY
    from app.demo.visits import VISIT_COLUMNS as DEMO_VISIT
    from app.demo.visits import _Generator, _Person
    from app.visits.models import VisitPurpose

    have = session.execute(select(func.count()).select_from(Visit).where(
        col(Visit.community_id) == community.id)).scalar_one()
    if have >= target:
        return 0
    today, now = city_today(), utcnow()
    catalog = session.execute(select(func.max(col(CatalogVersion.version)))).scalar_one_or_none()
    items = list(session.execute(
        select(col(ServiceItem.id), col(ServiceItem.code), col(ServiceItem.effective_from),
               col(ServiceItem.effective_to)).order_by(col(ServiceItem.sort_order), col(ServiceItem.code))).all())
    homes = {did: (lat, lng) if lat is not None and lng is not None else None for did, lat, lng in session.execute(
        select(col(Dwelling.id), col(Dwelling.lat), col(Dwelling.lng))
        .where(col(Dwelling.community_id) == community.id))}
    people = []
    for rid, did, path, district, sex, born, arrived, key in session.execute(
            select(col(Resident.id), col(Resident.dwelling_id), col(Resident.area_path), col(Resident.district_code),
                   col(Resident.sex), col(Resident.birth_date), col(Resident.arrival_date), col(Resident.key_person))
            .where(col(Resident.community_id) == community.id,
                   col(Resident.status) == ResidentStatus.registered.value).order_by(col(Resident.id))):
        age = today.year - born.year
        people.append(_Person(rid, community.id, did, path, district, sex == "F" and 15 <= age <= 49, age < 15,
                              arrived, bool(key)))
    rng = random.Random(seed + 17)
    gen = _Generator(rng, today, now, catalog, items, homes)
    need = target - have
    while len(gen.visits) < need:
        person = people[int(rng.random() * len(people))]
        earliest = max(person.arrival_date, today - timedelta(days=364))
        day = earliest + timedelta(days=int(rng.random() * ((today - earliest).days + 1)))
        purpose = VisitPurpose.key_person if person.key_person else VisitPurpose.routine
        gen.visit(person, worker_id, None, day, purpose)
    writer = BulkWriter(session)
    writer.write(table_of(Visit), DEMO_VISIT, gen.visits)
    writer.write(table_of(ServiceDelivery), DEMO_DELIVERY, gen.deliveries)
    return len(gen.visits)


# --- the phone ----------------------------------------------------------------------------------------------

class Phone:
    def __init__(self, port: int, username: str, password: str, device: str, schema_version: int = 1) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.username, self.password, self.device = username, password, device
        self.schema_version = str(schema_version)  # 2: with issue 13's periods and verifications
        self.login()

    def login(self) -> None:
        response = self.client.post(V1 + "/auth/login", json={"username": self.username, "password": self.password})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.logged_in = time.monotonic()

    def fresh(self) -> None:
        if time.monotonic() - self.logged_in > 240:  # access tokens live 10 minutes
            self.login()

    def headers(self) -> dict[str, str]:
        return {"X-Device-Id": self.device, "X-App-Version": "bench", "Accept-Encoding": "gzip"}

    def pull(self, last: int | None) -> tuple[float, int, bytes]:
        """(ms to the last byte, status, the body as sent: gzip-compressed)."""
        self.fresh()
        params = {"schema_version": self.schema_version, "last_pulled_at": "null" if last is None else str(last)}
        started = time.perf_counter_ns()
        with self.client.stream("GET", V1 + "/sync/pull", params=params, headers=self.headers()) as response:
            raw = b"".join(response.iter_raw())
            status = response.status_code
            encoded = response.headers.get("content-encoding") == "gzip"
        elapsed = (time.perf_counter_ns() - started) / 1e6
        if status != 200:
            raise SystemExit(f"pull: {status} {(gzip.decompress(raw) if encoded else raw)[:300]!r}")
        return elapsed, status, raw if encoded else gzip.compress(raw)

    def push(self, last: int, changes: dict[str, Any]) -> tuple[float, httpx.Response]:
        self.fresh()
        content = json.dumps(changes, separators=(",", ":")).encode()
        started = time.perf_counter_ns()
        response = self.client.post(V1 + "/sync/push", params={"last_pulled_at": str(last)}, content=content,
                                    headers={**self.headers(), "Content-Type": "application/json"})
        return (time.perf_counter_ns() - started) / 1e6, response


def body_of(compressed: bytes) -> tuple[dict[str, Any], int]:
    raw = gzip.decompress(compressed)
    return json.loads(raw), len(raw)


# --- (b) the first pull's parts, in-process --------------------------------------------------------------

def first_pull_parts(url: str, username: str, runs: int) -> dict[str, float]:
    """Medians (ms) of the first pull's parts in this process, and of the bare driver's SELECTs."""
    from sqlalchemy.dialects import postgresql, sqlite

    from app.auth.models import User, UserScope
    from app.core.actor import Actor, AreaScope
    from app.core.db import begin
    from app.core.gzipping import gzip_bytes
    from app.sync.pull import SYNCED, Window, in_scope, pull, read_cursor
    from app.sync.router import GZIP_LEVEL
    from app.sync.wire import shape

    engine = create_db_engine(url)
    with Session(engine) as session:
        user = session.execute(select(User).where(col(User.username) == username)).scalar_one()
        path = session.execute(select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(
            Division.id)).where(col(UserScope.user_id) == user.id)).scalar_one()
    actor = Actor(user.id, username, Role.worker, "bench", AreaScope((path,)))
    window = Window.now()
    dialect = postgresql.dialect() if engine.dialect.name == "postgresql" else sqlite.dialect()
    statements = []
    for name in SYNCED:
        compiled = in_scope(name, actor, actor.area_prefixes, window, shape(name).columns).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True})
        statements.append(str(compiled))
    times: dict[str, list[float]] = {k: [] for k in ("read", "json", "gzip", "driver")}
    body: dict[str, Any] = {}
    for _ in range(runs):
        with Session(engine) as snapshot:
            begin(snapshot, write=False)
            started = time.perf_counter_ns()
            cursor = read_cursor(snapshot)
            result = pull(snapshot, actor, last_pulled_at=0, cursor=cursor, held_scope=None, migration=set(),
                          rejected=[])
            times["read"].append((time.perf_counter_ns() - started) / 1e6)
            snapshot.rollback()
        body = result.body()
        started = time.perf_counter_ns()
        content = orjson.dumps(body)  # as the route encodes and compresses (app/sync/router.py `_json`)
        times["json"].append((time.perf_counter_ns() - started) / 1e6)
        times["gzip"].append(timed(lambda c=content: gzip_bytes(c, GZIP_LEVEL)))
        raw: Any = engine.raw_connection()
        try:
            cur = raw.cursor()
            started = time.perf_counter_ns()
            for sql in statements:
                cur.execute(sql)
                cur.fetchall()
            times["driver"].append((time.perf_counter_ns() - started) / 1e6)
            raw.rollback()
        finally:
            raw.close()
    engine.dispose()
    return {k: statistics.median(v) for k, v in times.items()}


# --- (a) push ----------------------------------------------------------------------------------------------

def push_changes(rng: random.Random, people: list[tuple[str, str, float, float]], n: int,
                 items: list[tuple[str, str]], catalog: int, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """`n` new visits with two deliveries each, as a phone pushes them (raw records, sendCreatedAsUpdated)."""
    from app.sync.wire import date_to_ms, to_ms

    visits, deliveries, ids = [], [], []
    for i in range(n):
        rid, dwelling, lat, lng = people[i % len(people)]
        started = now - timedelta(days=rng.uniform(0, 6), hours=1)
        ended = started + timedelta(minutes=rng.uniform(8, 30))
        vid = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=16))
        ids.append(vid)
        visits.append({
            "id": vid, "_status": "created", "_changed": "", "resident_id": rid, "dwelling_id": dwelling,
            "mode": "in_person", "purpose": "routine", "outcome": "met", "started_at": to_ms(started),
            "ended_at": to_ms(ended), "notes": '["documents_checked"]', "catalog_version": catalog,
            "lat": round(lat + rng.gauss(0, 0.0001), 7), "lng": round(lng + rng.gauss(0, 0.0001), 7),
            "coord_system": "wgs84", "accuracy_m": round(rng.uniform(3, 30), 1), "provider": "gps",
            "mock_location": False, "fix_time": to_ms(started - timedelta(seconds=30)),
            "no_coordinates_reason": None, "corrects_visit_id": None, "correction_reason": None,
            "created_at": to_ms(ended),
        })
        for item_id, code in rng.sample(items, 2):
            deliveries.append({
                "id": "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=16)),
                "_status": "created", "_changed": "", "visit_id": vid, "resident_id": rid, "item_id": item_id,
                "item_code": code, "quantity": 1, "notes": "[]",
                "delivered_on": date_to_ms(started.astimezone(UTC).date()), "created_at": to_ms(ended),
            })
    changes = {"visits": {"created": [], "updated": visits, "deleted": []},
               "service_deliveries": {"created": [], "updated": deliveries, "deleted": []}}
    return changes, ids


def push_inputs(url: str, username: str) -> tuple[list[tuple[str, str, float, float]], list[tuple[str, str]], int]:
    """The worker's residents with their dwellings, the current catalogue's items and version."""
    from app.auth.models import User, UserScope
    from app.catalog.models import CatalogVersion, ServiceItem

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            community = conn.execute(select(col(UserScope.division_id)).join(User, col(User.id) == col(
                UserScope.user_id)).where(col(User.username) == username)).scalar_one()
            people = [(r[0], r[1], float(r[2]), float(r[3])) for r in conn.execute(
                select(col(Resident.id), col(Resident.dwelling_id), col(Dwelling.lat), col(Dwelling.lng))
                .join(Dwelling, col(Dwelling.id) == col(Resident.dwelling_id))
                .where(col(Resident.community_id) == community,
                       col(Resident.status) == ResidentStatus.registered.value, col(Resident.sex) == "M",
                       col(Dwelling.lat).is_not(None))
                .order_by(col(Resident.id)))]
            today = date.today()
            catalog = conn.execute(select(func.max(col(CatalogVersion.version)))).scalar_one()
            items = [(r[0], r[1]) for r in conn.execute(
                select(col(ServiceItem.id), col(ServiceItem.code)).where(
                    col(ServiceItem.code).in_(("education", "contraceptives")),
                    col(ServiceItem.effective_from) <= today)
                .order_by(col(ServiceItem.code)))]
            return people, items, int(catalog)
    finally:
        engine.dispose()


# --- measuring ---------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    url = database_url(args.db)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    username, password = build(args.db, url, args.residents, args.visits, args.seed)
    port = free_port()
    server = start_server(url, port)
    load_start = os.getloadavg()[0]
    out: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    try:
        phone = Phone(port, username, password, f"bench-{secrets.token_hex(4)}")
        # (b) first pull
        phone.pull(None)  # warm-up: the server's first request, caches
        firsts = [phone.pull(None) for _ in range(args.first_pulls)]
        body, raw_size = body_of(firsts[-1][2])
        counts = {t: len(c["updated"]) for t, c in body["changes"].items()}
        med, _ = summary([f[0] for f in firsts])
        say(f"\n{args.db}: {os.cpu_count()} CPUs, load average {load_start:.1f} at the start")
        say(f"(b) first pull: median {med:.0f} ms to the last byte over {len(firsts)} runs "
            f"(min {min(f[0] for f in firsts):.0f}, max {max(f[0] for f in firsts):.0f}; target ≤ 1500 ms on "
            f"SQLite); {len(firsts[-1][2]) / 1e6:.2f} MB gzip-compressed, {raw_size / 1e6:.1f} MB raw JSON")
        say("    records: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        parts = first_pull_parts(url, username, args.part_runs)
        say(f"    in-process medians: snapshot read + raw records {parts['read']:.0f} ms, JSON encoding (orjson) "
            f"{parts['json']:.0f} ms, gzip level 1 on all cores {parts['gzip']:.0f} ms; the bare driver's SELECTs of "
            f"the same columns and filters {parts['driver']:.0f} ms (read / driver "
            f"{parts['read'] / parts['driver']:.1f}x)")
        # (c) empty incremental pull
        cursor = int(body["timestamp"])
        for _ in range(3):  # acknowledge the scope the first pulls sent (docs/sync.md, "Scope held by a device")
            _, _, compressed = phone.pull(cursor)
            cursor = int(body_of(compressed)[0]["timestamp"])
        times: dict[str, list[float]] = {k: [] for k in ("empty", "healthz", "me")}
        for _ in range(args.empty_pulls):
            elapsed, _, compressed = phone.pull(cursor)
            step, _ = body_of(compressed)
            if any(c["updated"] or c["deleted"] for c in step["changes"].values()):
                raise SystemExit("an incremental pull after nothing changed was not empty")
            cursor = int(step["timestamp"])
            times["empty"].append(elapsed)
            times["healthz"].append(timed(lambda: phone.client.get("/healthz")))
            times["me"].append(timed(lambda: phone.client.get(V1 + "/auth/me")))
        emed, ep95 = summary(times["empty"])
        say(f"(c) empty incremental pull: median {emed:.1f} ms, p95 {ep95:.1f} ms over {len(times['empty'])} runs "
            f"(target ≤ 10 ms); floors GET /healthz {summary(times['healthz'])[0]:.1f} ms, GET /auth/me "
            f"{summary(times['me'])[0]:.1f} ms")
        # (a) push
        if args.pushes:
            push_round(args, url, username, phone, cursor, say)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    say(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.db == "postgres" and not args.keep:
        drop(args.db, url)


def push_round(args: argparse.Namespace, url: str, username: str, phone: Phone, cursor: int,
               say: Callable[[str], None]) -> None:
    people, items, catalog = push_inputs(url, username)
    rng = random.Random(args.seed + 5)
    now = datetime.now(UTC)
    raw = Raw(url)
    try:
        push_ms: list[float] = []
        raw_ms: list[float] = []
        copy_ms: list[float] = []
        all_ms: list[float] = []
        ledger_rows = (0, 0)
        stored: list[int] = []
        for i in range(args.pushes + 1):  # the first round warms up
            changes, ids = push_changes(rng, people, args.push_visits, items, catalog, now)
            elapsed, response = phone.push(cursor, changes)
            if response.status_code == 404 and i == 0:
                say("(a) push: skipped, POST /api/v1/sync/push is not there yet (404)")
                return
            if response.status_code != 200 or response.json().get("rejected"):
                raise SystemExit(f"push: {response.status_code} {response.text[:400]}")
            rows = raw.rows_of(ids)
            n_rows = len(rows[0]) + len(rows[1])
            if len(rows[0]) != args.push_visits or len(rows[1]) != 2 * args.push_visits:
                raise SystemExit(f"push stored {len(rows[0])} visits and {len(rows[1])} deliveries")
            inserted, copied, everything = raw.renamed(rows), raw.renamed(rows), raw.renamed(rows)  # untimed
            ledger = raw.ledger_of(rows)
            raw_elapsed = timed(lambda: raw.insert(inserted))  # noqa: B023 - called at once
            copy_elapsed = None if raw.sqlite else timed(lambda: raw.copy(copied))  # noqa: B023
            all_elapsed = raw.insert_all(everything, ledger)
            if i:
                push_ms.append(elapsed)
                raw_ms.append(raw_elapsed)
                all_ms.append(all_elapsed)
                ledger_rows = (len(ledger[0]), len(ledger[1]))
                if copy_elapsed is not None:
                    copy_ms.append(copy_elapsed)
                stored.append(n_rows)
        pmed, rmed = statistics.median(push_ms), statistics.median(raw_ms)
        n = stored[0]
        say(f"(a) push of {args.push_visits:,} visits + {2 * args.push_visits:,} deliveries ({n:,} rows), "
            f"{len(push_ms)} rounds: push median {pmed:.0f} ms = {1000 * n / pmed:,.0f} rows/s; raw insert of the "
            f"same rows (bare driver executemany, one durable commit) median {rmed:.0f} ms = {1000 * n / rmed:,.0f} "
            f"rows/s; ratio {rmed / pmed:.2f} (target ≥ 0.3); per-round ratios "
            + ", ".join(f"{r / p:.2f} ({p:.0f}/{r:.0f} ms)" for p, r in zip(push_ms, raw_ms, strict=True)))
        amed = statistics.median(all_ms)
        say(f"    the push's own writes by the bare driver (those rows, their {ledger_rows[0]:,} sync-log rows and "
            f"{ledger_rows[1]:,} audit events, executemany, one durable commit) median {amed:.0f} ms: the most a push "
            f"could reach with no work of its own is raw / that = {rmed / amed:.2f}; the push spends "
            f"{pmed - amed:.0f} ms beyond its writes")
        if copy_ms:
            cmed = statistics.median(copy_ms)
            say(f"    the same rows by bare COPY (the push's own way on PostgreSQL) median {cmed:.0f} ms = "
                f"{1000 * n / cmed:,.0f} rows/s; ratio push / COPY {cmed / pmed:.2f}")
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--residents", type=int, default=5_000, help="residents per community (ten communities)")
    parser.add_argument("--visits", type=int, default=60_000, help="visits in the worker's community")
    parser.add_argument("--first-pulls", type=int, default=5, help="timed first pulls (after one warm-up)")
    parser.add_argument("--part-runs", type=int, default=3, help="in-process runs of the first pull's parts")
    parser.add_argument("--empty-pulls", type=int, default=100, help="timed empty incremental pulls")
    parser.add_argument("--pushes", type=int, default=9, help="timed pushes (after one warm-up); 0: none")
    parser.add_argument("--push-visits", type=int, default=1_000, help="visits per push (2 deliveries each)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
