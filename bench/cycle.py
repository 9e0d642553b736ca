"""Monthly-verification benchmark: opening a month (`cycle-open`) next to the bare driver's executemany of the
same verification rows.

    .venv/bin/python bench/cycle.py --db sqlite          # bench/out/cycle.db, rebuilt every run
    .venv/bin/python bench/cycle.py --db postgres        # own database bench_cycle on
                                                         # postgresql+psycopg://postgres@127.0.0.1:5432

What it does, in one run on one machine:
1. builds the database: migrations, the demo city in one district (`--size` residents, no visits), ANALYZE;
2. for `--rounds` rounds (after one warm-up), interleaved so that machine noise hits both sides alike:
   - open: `app.cycle.verification.opening.open_month` for the whole city in a unit of work of its own, commit
     included — reading the registered residents, a period per community (ORM), the verifications through
     `BulkWriter` (executemany on SQLite, COPY on PostgreSQL), their sync-log rows, the audit events;
   - bare driver: the very verification rows that round wrote, inserted by the bare driver (sqlite3 /
     psycopg `executemany`, same durability: SQLite WAL with synchronous=FULL) into the same table in one
     transaction, commit included — the least any opening must do: write the rows;
   after each side the month's rows are deleted (not timed);
3. prints medians, the rows per second, and the ratio bare median / open median (1.0 = as fast as the
   driver; the app also reads the register and writes the sync log and the audit chain). No assertions on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date
from typing import Any

os.environ.setdefault("ARGON2_TIME_COST", "1")

from alembic import command
from search import admin, bench_url, drop
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import wiring
from app.cli import alembic_config
from app.core.db import create_db_engine, unit_of_work
from app.cycle.verification.models import Verification
from app.cycle.verification.opening import open_month

wiring.install()
MONTH = "2026-11"
TODAY = date(2026, 11, 3)
COLUMNS = [c.name for c in Verification.__table__.columns]  # type: ignore[attr-defined]


def build(db: str, url: str, size: int, seed: int) -> None:
    from app.demo.seed import seed_demo

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=size, seed=seed, with_users=False, districts=1, with_visits=False)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def clear(engine: Any, periods_too: bool) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM verifications WHERE month = :m"), {"m": MONTH})
        if periods_too:
            conn.execute(text("DELETE FROM periods WHERE month = :m"), {"m": MONTH})


def app_open(engine: Any) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.perf_counter()
    with unit_of_work(engine=engine) as session:
        counts = open_month(session, MONTH, None, today=TODAY)
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:  # the rows it wrote, as the driver gives them back
        raw: Any = conn.connection.driver_connection
        cursor = raw.cursor()
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM verifications WHERE month = '{MONTH}'")  # noqa: S608
        rows = [tuple(r) for r in cursor.fetchall()]
        cursor.close()
        conn.rollback()
    assert len(rows) == counts.verifications_created
    return elapsed, rows


def bare_insert(engine: Any, db: str, rows: list[tuple[Any, ...]]) -> float:
    marks = ", ".join(["?" if db == "sqlite" else "%s"] * len(COLUMNS))
    sql = f"INSERT INTO verifications ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        if db == "sqlite":
            raw.execute("PRAGMA synchronous=FULL")
        conn.rollback()
        started = time.perf_counter()
        cursor = raw.cursor()
        if db == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        cursor.executemany(sql, rows)
        raw.commit()
        elapsed = time.perf_counter() - started
        cursor.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--size", type=int, default=50_000, help="residents in the demo district")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the database")
    args = parser.parse_args()
    url = bench_url(args.db, "cycle")
    build(args.db, url, args.size, args.seed)
    engine = create_db_engine(url)
    opens: list[float] = []
    bares: list[float] = []
    n = 0
    try:
        for round_ in range(args.rounds + 1):
            elapsed, rows = app_open(engine)
            clear(engine, periods_too=False)  # the bare side inserts into the same periods
            bare = bare_insert(engine, args.db, rows)
            clear(engine, periods_too=True)
            n = len(rows)
            if round_:  # the first round warms caches up
                opens.append(elapsed)
                bares.append(bare)
    finally:
        engine.dispose()
        if args.db == "postgres" and not args.keep:
            drop(args.db, url)
    o, b = statistics.median(opens), statistics.median(bares)
    print(f"{args.db}: opening {MONTH} for {n:,} registered residents, {args.rounds} rounds")
    print(f"  open (app, commit included)     median {o * 1000:8.1f} ms   {n / o:10,.0f} rows/s")
    print(f"  bare driver executemany         median {b * 1000:8.1f} ms   {n / b:10,.0f} rows/s")
    print(f"  ratio bare / open: {b / o:.2f}")


if __name__ == "__main__":
    main()
