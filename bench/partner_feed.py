"""Issue 14's bench: a police station reads the feed of its jurisdiction of 100,000 residents, whole, through
the real app, next to the bare SQL reading the same rows (docs/performance.md, "Partner feed (issue 14)").

    .venv/bin/python bench/partner_feed.py --size 5000 --rounds 2      # smoke run, under a minute
    .venv/bin/python bench/partner_feed.py                             # ≥ 100,000 registered, PostgreSQL
    .venv/bin/python bench/partner_feed.py --sqlite                    # the same on SQLite

Own database bench_partner_feed on postgresql+psycopg://postgres@127.0.0.1:5432 (trust), created and dropped at
the end (--keep keeps it); with --sqlite bench/out/partner_feed.db. What it does, in one run on one machine:
1. builds the city (not measured): migrations, the demo generator (`app.demo.seed`, bulk writer) with all its
   `--city` residents in one district, every synced row entered in the sync log (bench/city.py, as a bulk writer
   must: each resident is then one "arrival"), an admin of the bench's own (random password), ANALYZE. The
   jurisdiction is whole streets in path order, then communities of the next street, until it holds `--size`
   registered residents; the rest of the city lies outside it;
2. starts `migrant serve` (uvicorn, one worker) on loopback; the admin signs in and, through the admin API,
   creates a police station client for each round (`POST /sharing/clients`), sets its jurisdiction and adds a
   secret; the client gets its token from the real token endpoint (`POST /partner/oauth/token`);
3. each round, interleaved: the bare SQL (the feed's change-log entries joined to the residents and their
   dwellings, the police profile's columns, in sequence order: one statement through sqlite3 / psycopg with
   `fetchall()`, in a read transaction), then the whole feed through HTTP from cursor 0 (a fresh client) to
   `has_more: false` in pages of `--limit`: time, rows/s, pages, bytes (JSON, and as sent). Every round checks
   that the feed gave each resident of the jurisdiction once, as an arrival, and that the ledger holds one
   disclosure per resident for that client (untimed). The ledger grows by a jurisdiction each round;
4. prints the medians, the ratio bare / feed and the load average. No assertions on time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("ARGON2_TIME_COST", "1")  # the bench's own accounts; sign-ins are not what it measures

import httpx
from alembic import command
from audit import Bare  # bench/audit.py
from city import _log_everything, app_server, load_average, login  # bench/city.py
from search import admin, bench_url, drop, free_port  # bench/search.py
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlmodel import col

from app.cli import alembic_config
from app.core.actor import Role
from app.core.db import create_db_engine, unit_of_work
from app.ledger.models import SyncLog
from app.people.models import Disclosure, Resident, ResidentStatus
from app.places.models import Division, Dwelling, Level
from app.sharing.partners.deps import JurisdictionScope
from app.sharing.profiles.service import current_profile

V1 = "/api/v1"
FEED = V1 + "/partner/police/feed"


@dataclass
class Setup:
    url: str
    admin: str
    password: str
    divisions: list[str]  # the jurisdiction: street and community ids
    paths: tuple[str, ...]
    registered: int  # REGISTERED residents in the jurisdiction
    residents: int  # every record the feed must give (those who left included)
    city: int


# --- the city ----------------------------------------------------------------------------------------------

def build(db: str, url: str, city: int, target: int, seed: int) -> Setup:
    from app.accounts import service as users_service
    from app.demo.seed import seed_demo

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    username, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(18) + "aA1!"
    started = time.perf_counter()
    try:
        with unit_of_work(engine=engine) as session:
            made = seed_demo(session, size=city, seed=seed, with_users=False, with_visits=False, districts=1)
        with unit_of_work(engine=engine) as session:
            _log_everything(session)
            users_service.create_user(session, username=username, display_name="bench", role=Role.admin,
                                      password=password, division_ids=[])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        with unit_of_work(engine=engine) as session:
            setup = jurisdiction(session, url, username, password, target)
    finally:
        engine.dispose()
    setup.city = made.residents
    elapsed = time.perf_counter() - started
    print(f"built {made.residents:,} residents in {made.divisions:,} divisions in {elapsed:.0f} s "
          f"(not measured; load {load_average()})", flush=True)
    return setup


def jurisdiction(session: Any, url: str, username: str, password: str, target: int) -> Setup:
    """Whole streets in path order, then communities of the next one, until `target` registered residents."""
    counts: dict[str, list[int]] = {}  # area path: [registered, all]
    for path, status, n in session.execute(
            select(col(Resident.area_path), col(Resident.status), func.count())
            .where(col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))
            .group_by(col(Resident.area_path), col(Resident.status))):
        slot = counts.setdefault(path, [0, 0])
        slot[0] += n if status == ResidentStatus.registered.value else 0
        slot[1] += n

    def under(prefix: str) -> tuple[int, int]:
        inside = [v for p, v in counts.items() if p.startswith(prefix)]
        return sum(v[0] for v in inside), sum(v[1] for v in inside)

    divisions = list(session.execute(select(Division).where(col(Division.level).in_(
        [Level.street.value, Level.community.value])).order_by(col(Division.path))).scalars())
    chosen: list[Division] = []
    registered = everyone = 0
    for street in (d for d in divisions if d.level == Level.street.value):
        if registered >= target:
            break
        if registered + under(street.path)[0] < target:
            parts = [street]
        else:
            parts = [d for d in divisions if d.level == Level.community.value and d.path.startswith(street.path)]
        for part in parts:
            if registered >= target:
                break
            reg, n = under(part.path)
            chosen.append(part)
            registered, everyone = registered + reg, everyone + n
    if registered < target:
        raise SystemExit(f"the city holds only {registered:,} registered residents: raise --city")
    return Setup(url, username, password, [d.id for d in chosen], tuple(d.path for d in chosen), registered,
                 everyone, 0)


def bare_statement(session: Any, paths: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """The rows the feed reads, as one statement: its change-log entries in the jurisdiction, joined to the
    residents and their dwellings' addresses, the police profile's fields, in the feed's order (sequence number,
    then row id)."""
    fields = current_profile(session, Role.police.value).fields
    columns = [col(Dwelling.address) if f == "dwelling_address" else getattr(Resident, f) for f in fields]
    stmt = (select(col(SyncLog.seq), *columns).select_from(SyncLog)
            .join(Resident, col(Resident.id) == col(SyncLog.record_id))
            .outerjoin(Dwelling, col(Dwelling.id) == col(Resident.dwelling_id))
            .where(col(SyncLog.table_name) == Resident.__tablename__,
                   JurisdictionScope(paths).area_filter(col(SyncLog.area_path), col(SyncLog.district_code)),
                   col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))
            .order_by(col(SyncLog.seq), col(SyncLog.id)))
    return stmt, fields


# --- the station ---------------------------------------------------------------------------------------------

class Admin:
    """The bench's admin, through the admin API."""

    def __init__(self, base: str, setup: Setup) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        self.setup = setup
        self.http.headers["Authorization"] = "Bearer " + login(base, setup.admin, setup.password)["access_token"]

    def _ok(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, V1 + path, **kw)
        if response.status_code == 401:  # the admin's token ran out (10 minutes): sign in again
            self.http.headers["Authorization"] = "Bearer " + login(
                str(self.http.base_url), self.setup.admin, self.setup.password)["access_token"]
            response = self.http.request(method, V1 + path, **kw)
        if response.status_code not in (200, 201):
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def station(self, n: int) -> tuple[str, str, str]:
        """(user id, client id, secret) of a new police station with the bench's jurisdiction."""
        client_id = f"bench-station-{secrets.token_hex(3)}-{n}"
        made = self._ok("POST", "/sharing/clients", json={"client_id": client_id, "display_name": client_id,
                                                          "kind": "police"})
        self._ok("PUT", f"/sharing/clients/{made['user_id']}/jurisdiction",
                 json={"version": made["version"], "division_ids": self.setup.divisions})
        secret = self._ok("POST", f"/sharing/clients/{made['user_id']}/secrets")["client_secret"]
        return made["user_id"], client_id, secret


def token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(base + V1 + "/partner/oauth/token", timeout=60, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "police:feed"})
    if response.status_code != 200:
        raise SystemExit(f"token: {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])


@dataclass
class Read:
    seconds: float
    items: int
    pages: int
    json_bytes: int
    wire_bytes: int
    ids: set[str]
    events: dict[str, int]


def read_feed(base: str, client_id: str, secret: str, limit: int) -> Read:
    """The whole feed from cursor 0, page by page, until `has_more` is false."""
    http = httpx.Client(base_url=base, timeout=300)
    got = time.monotonic()
    http.headers["Authorization"] = "Bearer " + token(base, client_id, secret)
    out = Read(0.0, 0, 0, 0, 0, set(), {})
    cursor: str | None = None
    started = time.perf_counter()
    while True:
        if time.monotonic() - got > 480:  # tokens live 10 minutes: a client asks again
            http.headers["Authorization"] = "Bearer " + token(base, client_id, secret)
            got = time.monotonic()
        response = http.post(FEED, json={"cursor": cursor, "limit": limit})
        if response.status_code != 200:
            raise SystemExit(f"feed: {response.status_code} {response.text[:300]}")
        page = response.json()
        out.pages += 1
        out.json_bytes += len(response.content)
        out.wire_bytes += response.num_bytes_downloaded
        for item in page["items"]:
            out.items += 1
            out.ids.add(item["person"]["id"])
            out.events[item["event"]] = out.events.get(item["event"], 0) + 1
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    out.seconds = time.perf_counter() - started
    http.close()
    return out


def ledger_count(engine: Any, partner_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Disclosure).where(
            col(Disclosure.partner_id) == partner_id)).scalar_one())


def check(read: Read, setup: Setup, ledger: int) -> list[str]:
    wrong = []
    if read.items != setup.residents or len(read.ids) != setup.residents:
        wrong.append(f"feed gave {read.items:,} items of {len(read.ids):,} people, expected {setup.residents:,}")
    if set(read.events) != {"arrival"}:
        wrong.append(f"events {read.events}, expected arrivals only")
    if ledger != setup.residents:
        wrong.append(f"ledger holds {ledger:,} disclosures for the client, expected {setup.residents:,}")
    return wrong


# --- the run -------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, db: str, url: str) -> int:
    print(f"partner feed bench on {db}: {os.cpu_count()} cores, load {load_average()}", flush=True)
    setup = build(db, url, args.city or int(args.size * 2.1), args.size, args.seed)
    print(f"jurisdiction: {len(setup.divisions)} divisions ({sum(p.count('/') == 4 for p in setup.paths)} streets), "
          f"{setup.registered:,} registered residents, {setup.residents:,} records in all (those who left "
          f"included); {setup.city - setup.residents:,} of the city's {setup.city:,} lie outside", flush=True)
    engine = create_db_engine(url)
    with unit_of_work(engine=engine) as session:
        stmt, fields = bare_statement(session, setup.paths)
    bare = Bare(url, stmt)
    print(f"columns: seq, {', '.join(fields)}", flush=True)
    warm = bare.run()
    if warm != setup.residents:
        print(f"WRONG: the bare SQL reads {warm:,} rows, expected {setup.residents:,}")
        return 1
    feeds: list[Read] = []
    bares: list[float] = []
    failures: list[str] = []
    with app_server(url, free_port()) as server:
        station = Admin(server.base, setup)
        for n in range(1, args.rounds + 1):
            started = time.perf_counter()
            rows = bare.run()
            bares.append(time.perf_counter() - started)
            user_id, client_id, secret = station.station(n)
            read = read_feed(server.base, client_id, secret, args.limit)
            feeds.append(read)
            wrong = check(read, setup, ledger_count(engine, user_id)) + (
                [f"bare SQL read {rows:,} rows"] if rows != setup.residents else [])
            failures += [f"round {n}: {w}" for w in wrong]
            print(f"round {n}: feed {read.seconds:7.2f} s {read.items / read.seconds:9,.0f} rows/s {read.pages:4} "
                  f"pages "
                  f"{read.json_bytes / 1e6:7.1f} MB JSON ({read.wire_bytes / 1e6:.1f} MB sent) | bare "
                  f"{bares[-1]:6.3f} s {rows / bares[-1]:10,.0f} rows/s | load {load_average()}"
                  f"{' | WRONG: ' + '; '.join(wrong) if wrong else ''}", flush=True)
        station.http.close()
    with engine.connect() as conn:
        ledger = conn.execute(select(func.count()).select_from(Disclosure)).scalar_one()
    engine.dispose()
    bare.conn.close()
    report(db, setup, feeds, bares, ledger, args.limit)
    for failure in failures:
        print("WRONG:", failure)
    return 1 if failures else 0


def report(db: str, setup: Setup, feeds: list[Read], bares: list[float], ledger: int, limit: int) -> None:
    feed = statistics.median(r.seconds for r in feeds)
    raw = statistics.median(bares)
    rows = setup.residents
    last = feeds[-1]
    print(f"\n{db}: the police feed of a jurisdiction of {setup.registered:,} registered residents "
          f"({rows:,} records), {len(feeds)} rounds, pages of {limit}")
    print(f"  feed (HTTP, cursor 0 to the end)  median {feed:7.2f} s  {rows / feed:9,.0f} rows/s  {last.pages} pages  "
          f"{last.json_bytes / rows:.0f} B/row JSON ({last.json_bytes / 1e6:.1f} MB; "
          f"{last.wire_bytes / 1e6:.1f} MB sent)"
          f"  {1000 * feed / last.pages:.0f} ms/page")
    print(f"  bare SQL (one statement)          median {raw:7.3f} s  {rows / raw:9,.0f} rows/s")
    print(f"  ratio bare / feed: {raw / feed:.3f}   (rounds, feed s: "
          f"{', '.join(f'{r.seconds:.2f}' for r in feeds)}; bare s: {', '.join(f'{b:.3f}' for b in bares)})")
    print(f"  ledger at the end: {ledger:,} disclosures ({len(feeds)} × {rows:,}); load {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help="SQLite (bench/out/partner_feed.db) not PostgreSQL")
    parser.add_argument("--size", type=int, default=100_000, help="registered residents in the jurisdiction")
    parser.add_argument("--city", type=int, default=0, help="residents in the city (default 2.1 × --size)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, each a fresh client from cursor 0")
    parser.add_argument("--limit", type=int, default=500, help="change-log entries a page (the feed's maximum)")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    db = "sqlite" if args.sqlite else "postgres"
    url = bench_url(db, "partner_feed")
    try:
        status = run(args, db, url)
    finally:
        if not args.keep:
            drop(db, url)
    sys.exit(status)


if __name__ == "__main__":
    main()
