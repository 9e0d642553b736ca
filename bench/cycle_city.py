"""Issue 13's "Done when" benchmark on PostgreSQL: a city of a million registered residents and a million
verifications in a month (docs/performance.md, "The monthly cycle of a city").

    .venv/bin/python bench/cycle_city.py --size 20000       # smoke run, a few minutes
    .venv/bin/python bench/cycle_city.py                    # 1,030,000 residents (≥ 1,000,000 registered)

Own database bench_cycle_city on postgresql+psycopg://postgres@127.0.0.1:5432 (trust), dropped at the end
(--keep keeps it). What it does, in one run on one machine:
1. builds the city (not measured): migrations, the demo generator (`app.demo.seed`, COPY on PostgreSQL) with
   `--per-community` residents a community (default 5,000, the community of bench/sync.py and bench/window.py),
   a worker for the first community, the demo visit history and tasks, and visits of the same generator over the
   last twelve months until that community has `--visits` (bench/sync.py's `top_up_visits`), ANALYZE;
2. opening the current month (`open_month`, the code of `migrant cycle-open`) in a unit of work of its own,
   commit included; then the very verification rows it wrote are deleted, VACUUMed away and written again by a
   bare psycopg `COPY FROM STDIN` in one transaction, commit included (the least any opening must do). The table
   ends as the app wrote it. `--open-rounds` rounds; rows/s of both, ratio COPY / open;
3. 60 % of the month's verifications get an outcome (one UPDATE, not measured), so the figures are not all
   pending; then `--rounds` interleaved rounds (after a warm-up) of the city roll-up
   (`app.cycle.reports.rollup.rollup` for the city, a city-wide reader) and one hand-written SQL statement
   computing the same figures per community (psycopg, `fetchall()`); both must agree community by community and
   in total (else exit 1); ratio hand SQL / roll-up (target ≥ 0.8);
4. the XLSX export of the month's verification list (`app.cycle.verification.export.stream_xlsx`, the route's
   statement for a city-wide reader) in a subprocess that reports its peak RSS (`getrusage`), before and after,
   rows/s and bytes (target: peak ≤ 300 MB);
5. a worker's first pull through the real app under uvicorn (bench/window.py's `first_pulls`) with
   SYNC_VISIT_MONTHS 13 (before the window: every visit) and the default 4, next to the figure in the docs.
No assertions on time; the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("ARGON2_TIME_COST", "1")

from alembic import command
from city import load_average  # bench/city.py
from search import admin, bench_url, drop  # bench/search.py
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.cli import alembic_config
from app.core.actor import Actor, AreaScope, Role
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.core.types import city_today
from app.cycle.periods import month_of
from app.cycle.verification.opening import COLUMNS, open_month
from app.places.models import Division, Level

wiring.install()
CITY_READER = Actor("bench", "bench", Role.admin, "bench", AreaScope(None))
TODAY_FIGURE = ("docs/performance.md 2026-12-05 (bench/window.py, PostgreSQL, community of 4,876 with 60,000 visits):"
                " 13 months 1.59 s, 61.3 MB raw / 11.66 MB gzip; 4 months 0.84 s, 31.8 MB / 5.90 MB")
RSS_TARGET_MB = 300


# --- the city ----------------------------------------------------------------------------------------------

def build(url: str, size: int, per_community: int, visits: int, seed: int) -> tuple[str, str]:
    """A fresh database: the demo city, a worker for the first community with `visits` visits."""
    from sync import top_up_visits  # bench/sync.py

    from app.accounts import service as users_service
    from app.demo import seed as demo_seed
    from app.demo.visits import seed_visits

    drop("postgres", url)
    admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    demo_seed.RESIDENTS_PER_COMMUNITY = per_community  # the demo's 500 a community, raised as bench/sync.py does
    demo_seed.DWELLINGS_PER_COMMUNITY = max(170, per_community // 3)
    username, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(18) + "aA1!"
    engine = create_db_engine(url)
    started = time.perf_counter()
    try:
        with unit_of_work(engine=engine) as session:
            made = demo_seed.seed_demo(session, size=size, seed=seed, with_users=False, with_visits=False)
        with unit_of_work(engine=engine) as session:
            community = session.execute(select(Division).where(col(Division.level) == Level.community.value)
                                        .order_by(col(Division.path)).limit(1)).scalar_one()
            user = users_service.create_user(session, username=username, display_name="bench", role=Role.worker,
                                             password=password, division_ids=[community.id])
            history = seed_visits(session, seed)
            extra = top_up_visits(session, community, user.id, visits, seed)
        autocommit(engine, "ANALYZE")
    finally:
        engine.dispose()
    print(f"built {made.residents:,} residents in {made.divisions:,} divisions, {history.visits + extra:,} visits in "
          f"the worker's community, {history.tasks:,} tasks, in {time.perf_counter() - started:.0f} s "
          f"(load {load_average()})", flush=True)
    return username, password


def autocommit(engine: Any, *statements: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


# --- (1) opening the month against COPY ---------------------------------------------------------------------

def app_open(engine: Any, month: str) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.perf_counter()
    with unit_of_work(engine=engine) as session:
        counts = open_month(session, month, None)
    elapsed = time.perf_counter() - started
    raw: Any = engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # the rows it wrote, as the driver gives them back
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM verifications WHERE month = %s", (month,))  # noqa: S608
            rows = [tuple(r) for r in cursor.fetchall()]
        raw.rollback()
    finally:
        raw.close()
    assert len(rows) == counts.verifications_created, (len(rows), counts)
    return elapsed, rows


def clear(engine: Any, month: str, periods_too: bool) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM verifications WHERE month = %(m)s", {"m": month})
        if periods_too:
            conn.exec_driver_sql("DELETE FROM periods WHERE month = %(m)s", {"m": month})
    autocommit(engine, "VACUUM verifications", "VACUUM periods")  # the COPY writes into a table without dead rows


def bare_copy(engine: Any, rows: list[tuple[Any, ...]]) -> float:
    raw: Any = engine.raw_connection()
    try:
        started = time.perf_counter()
        with raw.cursor() as cursor, cursor.copy(f"COPY verifications ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def opening(engine: Any, month: str, rounds: int) -> None:
    opens: list[float] = []
    copies: list[float] = []
    n = 0
    for round_ in range(rounds):
        elapsed, rows = app_open(engine, month)
        clear(engine, month, periods_too=False)
        opens.append(elapsed)
        copies.append(bare_copy(engine, rows))  # the same ids: the table ends as the app wrote it
        n = len(rows)
        print(f"  round {round_ + 1}: open {elapsed:6.1f} s, COPY {copies[-1]:6.1f} s, {n:,} rows "
              f"(load {load_average()})", flush=True)
        if round_ < rounds - 1:
            clear(engine, month, periods_too=True)
        del rows
    o, c = statistics.median(opens), statistics.median(copies)
    print(f"(1) opening {month}: {n:,} verifications, median of {rounds}")
    print(f"  open_month (cycle-open, commit included)  {o:7.1f} s  {n / o:9,.0f} rows/s")
    print(f"  bare COPY of the same rows                {c:7.1f} s  {n / c:9,.0f} rows/s")
    print(f"  ratio COPY / open: {c / o:.2f}", flush=True)


def mark_outcomes(engine: Any, month: str) -> None:
    """60 % of the month's verifications get an outcome, spread by a hash of the id (not measured)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE verifications SET outcome = (ARRAY['PRESENT', 'PRESENT', 'PRESENT', 'PRESENT', 'PRESENT', "
            "'NOT_FOUND', 'MOVED_WITHIN_CITY', 'LEFT_CITY', 'RETURNED_HOME'])[1 + mod(hashtext(id) & 2147483647, 9)], "
            "evidence = 'phone', verified_at = now(), updated_at = now() "
            "WHERE month = %(m)s AND mod(hashtext(id || 'v') & 2147483647, 10) < 6", {"m": month})
    autocommit(engine, "VACUUM ANALYZE verifications")


# --- (2) the city roll-up against one hand-written statement ------------------------------------------------

IN_UNIT = "u.district_code = {t}.district_code AND u.path = substr({t}.area_path, 1, %(n)s)"
NOT_CORRECTED = "NOT EXISTS (SELECT 1 FROM visits c WHERE c.corrects_visit_id = {v})"
HAND_SQL = f"""
WITH u AS (SELECT id, path, district_code FROM divisions WHERE level = 'community'),
met AS (SELECT DISTINCT v.resident_id FROM visits v WHERE v.outcome = 'met' AND v.started_at >= %(start)s
        AND v.started_at < %(end)s AND {NOT_CORRECTED.format(v="v.id")}),
stock AS (
  SELECT u.id AS cid, count(DISTINCT r.id) AS total,
    count(DISTINCT r.id) FILTER (WHERE r.sex = 'M') AS male, count(DISTINCT r.id) FILTER (WHERE r.sex = 'F') AS female,
    count(DISTINCT r.id) FILTER (WHERE r.sex = 'F' AND r.birth_date > %(oldest)s AND r.birth_date <= %(youngest)s)
      AS fertile,
    count(DISTINCT r.id) FILTER (WHERE r.key_person) AS keys,
    count(DISTINCT r.id) FILTER (WHERE r.key_person AND met.resident_id IS NOT NULL) AS visited
  FROM tenancies t JOIN residents r ON r.id = t.resident_id JOIN u ON {IN_UNIT.format(t="t")}
  LEFT JOIN met ON met.resident_id = r.id
  WHERE t.move_in <= %(as_of)s AND (t.move_out IS NULL OR t.move_out > %(as_of)s) AND r.merged_into_id IS NULL
  GROUP BY u.id),
moved AS (
  SELECT u.id AS cid, 'arrivals' AS k, count(DISTINCT t.resident_id) AS n
  FROM tenancies t JOIN u ON {IN_UNIT.format(t="t")}
  WHERE (t.move_out IS NULL OR t.move_out > t.move_in) AND t.move_in >= %(first)s AND t.move_in <= %(last)s
    AND NOT EXISTS (SELECT 1 FROM tenancies o WHERE o.resident_id = t.resident_id AND o.id <> t.id
      AND {IN_UNIT.format(t="o")} AND o.move_in < t.move_in AND (o.move_out IS NULL OR o.move_out >= t.move_in))
  GROUP BY u.id
  UNION ALL
  SELECT u.id, 'departures', count(DISTINCT t.resident_id)
  FROM tenancies t JOIN u ON {IN_UNIT.format(t="t")}
  WHERE (t.move_out IS NULL OR t.move_out > t.move_in) AND t.move_out >= %(first)s AND t.move_out <= %(last)s
    AND NOT EXISTS (SELECT 1 FROM tenancies o WHERE o.resident_id = t.resident_id AND o.id <> t.id
      AND {IN_UNIT.format(t="o")} AND o.move_in <= t.move_out AND (o.move_out IS NULL OR o.move_out > t.move_out))
  GROUP BY u.id),
vis AS (
  SELECT u.id AS cid, v.mode AS k, count(*) AS n, count(*) FILTER (WHERE v.outcome = 'met') AS met
  FROM visits v JOIN u ON {IN_UNIT.format(t="v")}
  WHERE v.started_at >= %(start)s AND v.started_at < %(end)s AND {NOT_CORRECTED.format(v="v.id")}
  GROUP BY u.id, v.mode),
svc AS (
  SELECT u.id AS cid, d.item_id AS k, count(*) AS n, sum(d.quantity) AS q
  FROM service_deliveries d JOIN u ON {IN_UNIT.format(t="d")}
  WHERE d.delivered_on >= %(first)s AND d.delivered_on <= %(last)s AND {NOT_CORRECTED.format(v="d.visit_id")}
  GROUP BY u.id, d.item_id)
SELECT 'stock', x.k, s.cid, x.n FROM stock s CROSS JOIN LATERAL (VALUES ('total', s.total), ('male', s.male),
  ('female', s.female), ('women_15_49', s.fertile), ('key_registered', s.keys), ('key_visited', s.visited)) x(k, n)
UNION ALL SELECT 'movement', k, cid, n FROM moved
UNION ALL SELECT 'verifications', coalesce(v.outcome, 'pending'), p.community_id, count(*)
  FROM periods p JOIN u ON u.id = p.community_id JOIN verifications v ON v.period_id = p.id
  WHERE p.month = %(month)s GROUP BY p.community_id, v.outcome
UNION ALL SELECT 'visits', k, cid, n FROM vis
UNION ALL SELECT 'visits', k || '_met', cid, met FROM vis
UNION ALL SELECT 'fp', f.status, u.id, count(DISTINCT f.id)
  FROM tenancies t JOIN fp_documents f ON f.resident_id = t.resident_id JOIN u ON {IN_UNIT.format(t="t")}
  WHERE t.move_in <= %(last)s AND (t.move_out IS NULL OR t.move_out > %(first)s)
    AND f.checked_at >= %(start)s AND f.checked_at < %(end)s GROUP BY u.id, f.status
UNION ALL SELECT 'services', k, cid, n FROM svc
UNION ALL SELECT 'quantity', k, cid, q FROM svc
UNION ALL SELECT 'tasks', t.kind, u.id, count(*) FROM tasks t JOIN u ON {IN_UNIT.format(t="t")}
  WHERE t.due_date < %(cut)s AND t.state = 'open' GROUP BY u.id, t.kind
UNION ALL SELECT 'requests', '', u.id, count(*) FROM assistance_requests a JOIN u ON {IN_UNIT.format(t="a")}
  WHERE a.due_on < %(cut)s AND a.state IN ('sent', 'matched', 'verifying') GROUP BY u.id
"""  # noqa: S608 (fixed fragments, no input)

Figures = dict[tuple[str, str], int]


def flat(r: Any) -> Figures:
    """A community's report or the totals (same attribute names) as {(group, key): n}, zeros left out."""
    out: Figures = {("stock", k): getattr(r.stock, k) for k in ("total", "male", "female", "women_15_49")}
    out[("stock", "key_registered")], out[("stock", "key_visited")] = r.key_persons.registered, r.key_persons.visited
    out[("movement", "arrivals")], out[("movement", "departures")] = r.movement.arrivals, r.movement.departures
    out |= {("verifications", k): n for k, n in r.verifications.by_outcome.items()}
    out[("verifications", "pending")] = r.verifications.pending
    for mode in ("in_person", "phone"):
        out[("visits", mode)] = getattr(r.visits, mode)
        out[("visits", mode + "_met")] = getattr(r.visits, mode + "_met")
    out |= {("fp", k): n for k, n in r.fp_documents.by_status.items()}
    out |= {("services", s.item_id): s.deliveries for s in r.services}
    out |= {("quantity", s.item_id): s.quantity for s in r.services}
    out |= {("tasks", k): n for k, n in r.overdue.tasks_by_kind.items()}
    out[("requests", "")] = r.overdue.assistance_requests
    return {k: int(v) for k, v in out.items() if v}


def hand_params(engine: Any, month: str) -> dict[str, Any]:
    from app.cycle.reports.service import window, years_before

    w = window(month)
    assert not w.complete  # the statement counts what is overdue now (the current month's rule)
    with engine.connect() as conn:
        lengths = conn.exec_driver_sql("SELECT DISTINCT length(path) FROM divisions WHERE level = 'community'").all()
    assert len(lengths) == 1, lengths
    return {"month": month, "first": w.first, "last": w.last, "start": w.start, "end": w.end, "as_of": w.as_of,
            "cut": w.cut, "oldest": years_before(w.as_of, 50), "youngest": years_before(w.as_of, 15),
            "n": lengths[0][0]}


def hand_aggregate(engine: Any, params: dict[str, Any]) -> tuple[float, dict[str, Figures]]:
    raw: Any = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            started = time.perf_counter()
            cursor.execute(HAND_SQL, params)
            rows = cursor.fetchall()
            elapsed = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
    by: dict[str, Figures] = {}
    for group, key, cid, n in rows:
        if n:
            by.setdefault(cid, {})[(group, key)] = int(n)
    return elapsed, by


def app_rollup(engine: Any, city_id: str, month: str) -> tuple[float, dict[str, Figures], Figures]:
    from app.cycle.reports.rollup import rollup

    started = time.perf_counter()
    with unit_of_work(engine=engine, write=False) as session:
        _, out = rollup(session, CITY_READER, city_id, month)
    elapsed = time.perf_counter() - started
    return elapsed, {r.community_id: f for r in out.communities if (f := flat(r))}, flat(out.totals)


def summed(parts: Iterable[Figures]) -> Figures:
    total: Figures = {}
    for part in parts:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


def rollups(engine: Any, month: str, rounds: int) -> bool:
    with engine.connect() as conn:
        city_id = conn.exec_driver_sql("SELECT id FROM divisions WHERE level = 'city'").scalar_one()
    params = hand_params(engine, month)
    apps: list[float] = []
    hands: list[float] = []
    agree = True
    for round_ in range(rounds + 1):
        a, by_app, totals = app_rollup(engine, city_id, month)
        h, by_hand = hand_aggregate(engine, params)
        if round_ == 0:  # the warm-up round checks the figures
            agree = by_app == by_hand and summed(by_hand.values()) == totals
            if not agree:
                diff = sorted({c for c in by_app.keys() | by_hand.keys() if by_app.get(c) != by_hand.get(c)})
                print(f"  DISAGREE in {len(diff)} communities, e.g. {diff[:1]}: app "
                      f"{by_app.get(diff[0]) if diff else totals} hand {by_hand.get(diff[0]) if diff else ''}")
            shown = {k: v for k, v in totals.items() if k[0] in ("stock", "movement", "verifications", "visits")}
            print(f"  city totals ({len(by_app):,} communities): {shown}")
            continue
        apps.append(a)
        hands.append(h)
        print(f"  round {round_}: roll-up {a:6.2f} s, hand SQL {h:6.2f} s", flush=True)
    a, h = statistics.median(apps), statistics.median(hands)
    print(f"(2) city roll-up of {month}, median of {rounds} after a warm-up; figures agree: {agree}")
    print(f"  rollup() (every community's report + totals)  {a:7.2f} s")
    print(f"  one hand-written SQL aggregate, fetchall()     {h:7.2f} s")
    print(f"  ratio hand SQL / roll-up: {h / a:.2f} (target ≥ 0.8)", flush=True)
    return agree


# --- (3) the XLSX export in a subprocess --------------------------------------------------------------------

def peak_mb() -> float:
    """This process's peak RSS: VmHWM, which starts afresh at exec (getrusage's ru_maxrss keeps the peak of the
    parent the child was forked from); getrusage where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def export_child(month: str) -> None:
    """In the subprocess (DATABASE_URL set): the export route's work for a city-wide reader, bytes discarded."""
    from app.cycle.verification import export
    from app.cycle.verification.service import list_verifications

    listed = list_verifications(CITY_READER, period_id=None, month=month, community_id=None, grid_path=None,
                                outcomes=[], pending=None, resident_id=None)
    with unit_of_work(write=False) as session:
        head = export.heading(session, CITY_READER, None, month)
        rows = export.count(session, listed)
    before = peak_mb()
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in export.stream_xlsx(export.rows_stmt(listed), head))
    elapsed = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": elapsed, "bytes": size, "peak_before_mb": before,
                      "peak_mb": peak_mb()}))


def run_export(url: str, month: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, __file__, "--export-child", month], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"(3) XLSX export of the verification list, {r['rows']:,} rows: {r['seconds']:.1f} s, "
          f"{r['rows'] / r['seconds']:,.0f} rows/s, {r['bytes'] / 1e6:.1f} MB")
    print(f"  peak RSS {r['peak_mb']:.0f} MB (target ≤ {RSS_TARGET_MB} MB; {r['peak_before_mb']:.0f} MB before the "
          f"rows: imports, engine, count){'' if r['peak_mb'] <= RSS_TARGET_MB else ' MISSED'}", flush=True)


# --- (4) a worker's first pull ------------------------------------------------------------------------------

def pulls(url: str, username: str, password: str, runs: int) -> None:
    from window import first_pulls  # bench/window.py

    print(f"(4) a worker's first pull in this city, median of {runs} after a warm-up:")
    for schema, months, what in ((1, 13, "today's phone (schema 1), no visit window"),
                                 (2, 13, "issue 13's phone (schema 2: periods, verifications), no visit window"),
                                 (2, 4, "issue 13's phone with the default sync window")):
        print(f"  {what}:\n    " + first_pulls(url, username, password, months, runs, schema), flush=True)
    os.environ.pop("SYNC_VISIT_MONTHS", None)
    print(f"  today's figure: {TODAY_FIGURE}", flush=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--export-child":
        export_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_030_000, help="residents (the demo's ~3 %% who left are "
                        "not registered, so the default gives ≥ 1,000,000 verifications)")
    parser.add_argument("--per-community", type=int, default=5_000, help="residents a community")
    parser.add_argument("--visits", type=int, default=60_000, help="visits in the worker's community")
    parser.add_argument("--open-rounds", type=int, default=3, help="openings (each followed by its COPY)")
    parser.add_argument("--rounds", type=int, default=3, help="roll-up rounds after a warm-up")
    parser.add_argument("--first-pulls", type=int, default=3, help="timed first pulls per window")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    url = bench_url("postgres", "cycle_city")
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    month = month_of(city_today())
    print(f"postgres: {os.cpu_count()} CPUs, load {load_average()} at the start, month {month}", flush=True)
    username, password = build(url, args.size, args.per_community, args.visits, args.seed)
    engine = create_db_engine(url)
    agree = False
    try:
        opening(engine, month, args.open_rounds)
        mark_outcomes(engine, month)
        agree = rollups(engine, month, args.rounds)
        run_export(url, month)
        pulls(url, username, password, args.first_pulls)
    finally:
        engine.dispose()
        if not args.keep:
            drop("postgres", url)
    print(f"load {load_average()} at the end; peak RSS of this process {peak_mb():.0f} MB")
    sys.exit(0 if agree else 1)  # 1: the roll-up and the hand-written statement disagree


if __name__ == "__main__":
    main()
