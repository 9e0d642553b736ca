"""The partner feeds' statements under EXPLAIN ANALYZE on PostgreSQL, without and with migration 0017's indexes
(docs/performance.md, "Indexes for the partner feeds").

    .venv/bin/python bench/feed_indexes.py                 # 100,000 residents in the jurisdiction, 210,000 in all
    .venv/bin/python bench/feed_indexes.py --size 5000     # smoke run

Builds the city of bench/partner_feed.py (its `build`: migrations to head, the demo generator, every row in the
change log, ANALYZE) in its own database bench_feed_indexes, dropped at the end (--keep keeps it). Then, for the
police feed (a station over that jurisdiction), the outflow roster and the outflow change feed (a city whose 户籍地
prefix is the commonest four digits of the register), it runs the real service functions (first page, and a page
from the middle of the change log's one big transaction) in a transaction that is rolled back, records every
SELECT they send and runs it again under EXPLAIN (ANALYZE, BUFFERS): first with 0017's indexes dropped, then
created again (ANALYZE between). Prints, per statement, the plan's top node, the execution time (the median of
three) and the shared buffers touched.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

from partner_feed import build  # bench/partner_feed.py
from search import bench_url, drop  # bench/search.py
from sqlalchemy import event, select, text
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.core.db import create_db_engine
from app.ledger.models import SyncLog
from app.people.models import Resident
from app.sharing.outflow import service as outflow
from app.sharing.partners.deps import JurisdictionScope
from app.sharing.partners.rules import encode_cursor, encode_log_position
from app.sharing.police import service as police

# Migration 0017's indexes (PostgreSQL): how to drop them ("before") and create them again ("after").
DROP = ["DROP INDEX IF EXISTS ix_sync_log_seq_id", "DROP INDEX IF EXISTS ix_sync_log_district_seq_id",
        "DROP INDEX IF EXISTS ix_residents_hukou_code",
        "CREATE INDEX IF NOT EXISTS ix_sync_log_seq ON sync_log (seq)",
        "CREATE INDEX IF NOT EXISTS ix_sync_log_district_seq ON sync_log (district_code, seq)",
        "CREATE INDEX ix_residents_hukou_code ON residents (hukou_code)"]
CREATE = ["DROP INDEX IF EXISTS ix_sync_log_seq", "DROP INDEX IF EXISTS ix_sync_log_district_seq",
          "DROP INDEX IF EXISTS ix_residents_hukou_code",
          "CREATE INDEX ix_sync_log_seq_id ON sync_log (seq, id)",
          "CREATE INDEX ix_sync_log_district_seq_id ON sync_log (district_code, seq, id)",
          "CREATE INDEX ix_residents_hukou_code ON residents (hukou_code varchar_pattern_ops)"]


def captured(engine: Any, work: Callable[[Session], Any]) -> list[tuple[str, Any]]:
    """The SELECTs `work` sends, with their parameters (the transaction is rolled back)."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not many:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with Session(engine) as session:
            work(session)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def explain(engine: Any, statement: str, parameters: Any) -> tuple[str, float, int]:
    times, top, buffers = [], "", 0
    for _ in range(3):
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
                plan = cur.fetchone()[0][0]
            raw.rollback()
        times.append(plan["Execution Time"])
        node = plan["Plan"]
        top = _describe(node)
        buffers = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
    return top, statistics.median(times), buffers


def _describe(node: dict[str, Any], depth: int = 0) -> str:
    """The plan's nodes down to the first scan of each branch, one line."""
    name = node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "") + (
        f" on {node['Relation Name']}" if "Relation Name" in node and "Index Name" not in node else "")
    kids = node.get("Plans", [])
    if not kids or depth > 3:
        return name
    return name + " > " + " | ".join(_describe(k, depth + 1) for k in kids)


def scenarios(engine: Any, paths: tuple[str, ...]) -> dict[str, Callable[[Session], Any]]:
    with Session(engine) as s:
        prefix = s.execute(text("SELECT substr(hukou_code, 1, 4) FROM residents GROUP BY 1 ORDER BY count(*) DESC "
                                "LIMIT 1")).scalar_one()
        total = s.execute(select(text("count(*)")).select_from(SyncLog)).scalar_one()
        mid = s.execute(select(col(SyncLog.seq), col(SyncLog.id)).order_by(col(SyncLog.seq), col(SyncLog.id))
                        .offset(total // 2).limit(1)).one()
        middle_resident = s.execute(select(col(Resident.id)).order_by(col(Resident.id))
                                    .offset(s.execute(select(text("count(*)")).select_from(Resident)).scalar_one() // 2)
                                    .limit(1)).scalar_one()
    print(f"change log: {total:,} entries; outflow prefix {prefix}", flush=True)
    station = Actor("bench-station", "bench-station", Role.police, "s", JurisdictionScope(paths))
    city = Actor("bench-city", "bench-city", Role.outflow_city, "s", JurisdictionScope((), prefix))
    log_mid = encode_log_position(police.CURSOR_TAG, mid[0], mid[1])
    changes_mid = encode_log_position(outflow.CHANGES_TAG, mid[0], mid[1])
    roster_mid = encode_cursor(outflow.CURSOR_TAG, middle_resident)
    return {
        "police feed, first page": lambda s: police.feed(s, station, None, 500),
        "police feed, mid-transaction page": lambda s: police.feed(s, station, log_mid, 500),
        "outflow roster, first page": lambda s: outflow.roster(s, city, None, 500),
        "outflow roster, middle page": lambda s: outflow.roster(s, city, roster_mid, 500),
        "outflow changes, first page": lambda s: outflow.changes(s, city, None, 500),
        "outflow changes, mid-transaction page": lambda s: outflow.changes(s, city, changes_mid, 500),
    }


def measure(engine: Any, named: dict[str, Callable[[Session], Any]], label: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, work in named.items():
        rows = []
        for statement, parameters in captured(engine, work):
            if "sync_log" not in statement and "hukou_code LIKE" not in statement:
                continue  # the look-ups by primary key around them are not what the indexes are for
            top, ms, buffers = explain(engine, statement, parameters)
            rows.append({"plan": top, "ms": round(ms, 2), "buffers": buffers})
            print(f"[{label}] {name}: {ms:9.2f} ms {buffers:8,} buffers  {top}", flush=True)
        out[name] = rows
    return out


def ddl(engine: Any, statements: list[str]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ANALYZE sync_log")
        conn.exec_driver_sql("ANALYZE residents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="registered residents in the jurisdiction")
    parser.add_argument("--city", type=int, default=0, help="residents in the city (default 2.1 × --size)")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true", help="use the kept database as it is (no build)")
    args = parser.parse_args()
    url = bench_url("postgres", "feed_indexes")
    try:
        if args.reuse:
            engine = create_db_engine(url)
            with Session(engine) as s:
                paths = tuple(s.execute(text("SELECT path FROM divisions WHERE level = 'street' ORDER BY path "
                                             "LIMIT 1")).scalars())
        else:
            setup = build("postgres", url, args.city or int(args.size * 2.1), args.size, args.seed)
            engine, paths = create_db_engine(url), setup.paths
        named = scenarios(engine, paths)
        ddl(engine, DROP)
        before = measure(engine, named, "before")
        ddl(engine, CREATE)
        after = measure(engine, named, "after")
        print(json.dumps({"before": before, "after": after}, ensure_ascii=False))
        engine.dispose()
    finally:
        if not args.keep:
            drop("postgres", url)
    sys.exit(0)


if __name__ == "__main__":
    main()
