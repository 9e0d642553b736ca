"""Audit benchmark: scoring a district month of 100,000 visits, next to the bare SQL reading the same rows.

    .venv/bin/python bench/audit.py --db sqlite          # bench/out/audit.db, rebuilt every run
    .venv/bin/python bench/audit.py --db postgres        # own database bench_audit on
                                                         # postgresql+psycopg://postgres@127.0.0.1:5432

What it does, in one run on one machine:
1. builds the database: migrations, the demo city in one district (`--size` residents, no visits), `--workers`
   worker accounts spread over its communities, then `--visits` visits in one city month written in bulk
   (app/core/bulk.py): each worker's day in time order, ten-minute visits at the residents' doors, with a few
   percent of them odd on purpose (off hours, too short, phone for a key person, mock location, a check-in far
   away), and a few drifting device clocks; then ANALYZE;
2. for `--rounds` rounds (after one warm-up), interleaved so that machine noise hits both sides alike:
   - scoring: `app.audit.quality.service.scored_visits` for a district supervisor over the month — the one
     statement it sends, the rows turned into tuples, every rule, the filters and the sort — in a read
     transaction of its own;
   - bare SQL: the very statement scoring sends, compiled for the dialect, executed through the bare driver
     (sqlite3 / psycopg) with `fetchall()` in a read transaction — the least any scoring must do: read the rows;
3. prints medians and the ratio bare median / scoring median (target ≥ 0.5), the visits scored per second, how
   many were flagged and by which rule. No assertions on time.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

os.environ.setdefault("ARGON2_TIME_COST", "1")  # bench accounts: nobody signs in with them
os.environ.setdefault("ARGON2_MEMORY_KIB", "1024")

from alembic import command
from search import admin, bench_url, drop, summary
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.audit.deps import Period
from app.audit.quality import service as quality
from app.cli import alembic_config
from app.core.actor import Actor, AreaScope, Role
from app.core.bulk import BulkWriter, table_of
from app.core.db import create_db_engine, unit_of_work, use_engine
from app.core.types import CITY_TZ, new_id
from app.people.models import Resident
from app.places.models import Division, Dwelling
from app.sync.models import SyncDevice
from app.visits.models import Visit

wiring.install()
MONTH_START = date(2026, 11, 1)
DAYS = 30
VISIT_COLUMNS = [c.name for c in Visit.__table__.columns]  # type: ignore[attr-defined]


def build(db: str, url: str, size: int, workers: int, visits: int, seed: int) -> None:
    from app.accounts import service as users_service
    from app.demo.seed import seed_demo

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    rng = random.Random(seed)
    started = time.perf_counter()
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=size, seed=seed, with_users=False, districts=1)
        with unit_of_work(engine=engine) as session:
            communities = session.execute(select(Division).where(col(Division.level) == "community")).scalars().all()
            ids = []
            for i in range(workers):
                c = communities[i % len(communities)]
                user = users_service.create_user(session, username=f"bench_w{i:03d}", display_name=f"w{i}",
                                                 role=Role.worker, password=secrets.token_urlsafe(18) + "aA1!",
                                                 division_ids=[c.id])
                ids.append((user.id, c.id))
            homes: dict[str, list[Any]] = collections.defaultdict(list)
            for row in session.execute(select(col(Resident.id), col(Resident.community_id), col(Resident.area_path),
                                              col(Resident.district_code), col(Dwelling.id), col(Dwelling.lat),
                                              col(Dwelling.lng)).join(Dwelling, col(Dwelling.id) == col(
                                                  Resident.dwelling_id)).where(col(Dwelling.lat).is_not(None))):
                homes[row[1]].append(row)
            rows = [v for worker, community in ids
                    for v in _days(rng, worker, homes[community], visits // workers)]
            BulkWriter(session).write_dicts(table_of(Visit), rows)
            for worker, _ in ids[: max(1, workers // 20)]:  # a few phones whose clocks drift
                session.add(SyncDevice(user_id=worker, device_id=f"phone-{worker[:8]}", clock_skew_ms=600_000))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    print(f"built {size:,} residents, {workers} workers, {len(rows):,} visits in {time.perf_counter() - started:.0f} s")


def _days(rng: random.Random, worker: str, homes: list[Any], n: int) -> list[dict[str, Any]]:
    """`n` visits over the month: ~n/DAYS a day from 08:30, ten minutes each, starting fifteen minutes apart."""
    out = []
    per_day = max(1, n // DAYS)
    for i in range(n):
        day, k = MONTH_START + timedelta(days=i // per_day % DAYS), i % per_day
        start = datetime(day.year, day.month, day.day, 8, 30, tzinfo=CITY_TZ) + timedelta(minutes=15 * k)
        rid, community, path, district, dwelling, lat, lng = rng.choice(homes)
        mode, purpose, minutes, flags = "in_person", "routine", 10.0, "[]"
        odd = rng.random()
        if odd < 0.01:
            start = start.replace(hour=23)
        elif odd < 0.02:
            minutes = 1.0
        elif odd < 0.03:
            mode, purpose = "phone", "key_person"
        elif odd < 0.04:
            flags = '["mock_location"]'
        elif odd < 0.05:
            lat += 0.05  # 5.5 km north of the door
            flags = '["outside_radius"]'
        started = start.astimezone(UTC)
        out.append({
            "id": new_id(), "resident_id": rid, "worker_id": worker, "community_id": community,
            "dwelling_id": dwelling, "area_path": path, "district_code": district, "mode": mode, "purpose": purpose,
            "outcome": "met", "started_at": started, "ended_at": started + timedelta(minutes=minutes),
            "received_at": started + timedelta(hours=1), "notes": "[]", "catalog_version": 1,
            "lat": lat if mode == "in_person" else None, "lng": lng if mode == "in_person" else None,
            "coord_system": "wgs84", "accuracy_m": 10.0, "provider": "gps", "mock_location": "mock" in flags,
            "fix_time": started, "distance_m": 5.0, "no_coordinates_reason": None, "flags": flags,
            "review_state": "submitted", "reviewed_by": None, "reviewed_at": None, "review_reason": None,
            "corrects_visit_id": None, "correction_reason": None, "created_at": started, "version": 1})
    return out


class Bare:
    """The statement scoring sends, through the bare driver."""

    def __init__(self, url: str, stmt: Any) -> None:
        engine = create_db_engine(url)
        self.sqlite = engine.dialect.name == "sqlite"
        compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        engine.dispose()
        self.sql = compiled.string
        if self.sqlite:
            import sqlite3

            self.params: Any = tuple(_sqlite_value(compiled.params[k]) for k in compiled.positiontup or ())
            self.conn: Any = sqlite3.connect(make_url(url).database or "")
            self.conn.execute("PRAGMA case_sensitive_like = ON")
        else:
            import psycopg

            self.params = dict(compiled.params)
            self.conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(
                hide_password=False))

    def run(self) -> int:
        if self.sqlite:
            self.conn.execute("BEGIN")
            rows = self.conn.execute(self.sql, self.params).fetchall()
            self.conn.rollback()
        else:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur.execute(self.sql, self.params)
                rows = cur.fetchall()
        return len(rows)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--size", type=int, default=20_000, help="residents in the demo district")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the database")
    args = parser.parse_args()
    url = bench_url(args.db, "audit")
    build(args.db, url, args.size, args.workers, args.visits, args.seed)
    engine = create_db_engine(url)
    use_engine(engine)
    try:
        with unit_of_work(write=False) as session:
            path = session.execute(select(col(Division.path)).where(col(Division.level) == "district")).scalar_one()
        actor = Actor("bench", "bench", Role.supervisor, "bench", AreaScope((path,)))
        period = Period(MONTH_START, MONTH_START + timedelta(days=DAYS - 1))
        bare = Bare(url, quality.query(actor, period, quality.Filters()))
        times: dict[str, list[float]] = {"scoring": [], "bare": []}
        items: list[quality.Item] = []
        read = 0
        for round_ in range(args.rounds + 1):
            t0 = time.perf_counter()
            read = bare.run()
            t1 = time.perf_counter()
            with unit_of_work(write=False) as session:
                items = quality.scored_visits(session, actor, period, quality.Filters())
            t2 = time.perf_counter()
            if round_:  # the first round warms caches
                times["bare"].append(t1 - t0)
                times["scoring"].append(t2 - t1)
        (bare_median, _), (score_median, _) = summary(times["bare"]), summary(times["scoring"])
        rules = collections.Counter(r.rule for i in items for r in i.reasons)
        flagged = sum(1 for i in items if i.score > 0)
        print(f"{args.db}: {read:,} rows read, {len(items):,} visits scored in the month, {flagged:,} flagged "
              f"({flagged / max(len(items), 1):.1%})")
        print(f"  bare SQL (driver fetchall)  median {bare_median * 1000:8.0f} ms")
        print(f"  scoring (scored_visits)     median {score_median * 1000:8.0f} ms   "
              f"{len(items) / score_median:,.0f} visits/s")
        print(f"  ratio bare / scoring = {bare_median / score_median:.2f}   (target >= 0.5)")
        print(f"  rules: {dict(rules.most_common())}")
        print(f"  rounds {args.rounds}, all: bare {[round(t * 1000) for t in times['bare']]} ms, "
              f"scoring {[round(t * 1000) for t in times['scoring']]} ms; load average {os.getloadavg()[0]:.1f}")
    finally:
        use_engine(None)
        engine.dispose()
        if args.db == "postgres" and not args.keep:
            drop(args.db, url)


if __name__ == "__main__":
    main()
