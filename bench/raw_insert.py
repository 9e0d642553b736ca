"""The raw side of bench/sync.py's push rounds: the least any server must do to keep the pushed rows (the same rows,
bare driver, one durable commit), and the push's own writes (those rows with their sync-log rows and audit events)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.core.db import create_db_engine
from app.ledger.models import AuditEvent, SyncLog
from app.visits.models import ServiceDelivery, Visit

VISIT_COLUMNS = [c.name for c in Visit.__table__.columns]  # type: ignore[attr-defined]
DELIVERY_COLUMNS = [c.name for c in ServiceDelivery.__table__.columns]  # type: ignore[attr-defined]
LOG_COLUMNS = [c.name for c in SyncLog.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
AUDIT_COLUMNS = [c.name for c in AuditEvent.__table__.columns]  # type: ignore[attr-defined]


class Raw:
    """The least any server must do to keep the pushed rows: the same rows, bare driver, one durable commit."""

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)  # the app's connect-time settings (WAL, synchronous=FULL …)
        self.conn: Any = self.engine.raw_connection()
        self.sqlite = self.engine.dialect.name == "sqlite"
        mark = "?" if self.sqlite else "%s"
        self.mark = mark

    def rows_of(self, visit_ids: list[str]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        cur = self.conn.cursor()
        visits, deliveries = [], []
        for i in range(0, len(visit_ids), 500):
            chunk = visit_ids[i:i + 500]
            marks = ", ".join([self.mark] * len(chunk))
            cur.execute(f"SELECT {', '.join(VISIT_COLUMNS)} FROM visits WHERE id IN ({marks})", chunk)  # noqa: S608
            visits += [list(r) for r in cur.fetchall()]
            cur.execute(f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM service_deliveries "  # noqa: S608
                        f"WHERE visit_id IN ({marks})", chunk)
            deliveries += [list(r) for r in cur.fetchall()]
        if not self.sqlite:
            self.conn.rollback()
        return [tuple(v) for v in visits], [tuple(d) for d in deliveries]

    @staticmethod
    def renamed(rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]
                ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The same rows under new ids (a delivery follows its visit)."""
        visits, deliveries = rows
        names = {v[0]: uuid.uuid4().hex for v in visits}
        return ([(names[v[0]], *v[1:]) for v in visits],
                [(uuid.uuid4().hex, names[d[1]], *d[2:]) for d in deliveries])

    def copy(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
        """PostgreSQL only: the same rows by COPY FROM STDIN (what the push itself uses) in one durable commit."""
        visits, deliveries = rows
        with self.conn.cursor() as cur:
            for table, columns, values in (("visits", VISIT_COLUMNS, visits),
                                           ("service_deliveries", DELIVERY_COLUMNS, deliveries)):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
        self.conn.commit()

    def insert(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
        visits, deliveries = rows
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.executemany(f"INSERT INTO visits ({', '.join(VISIT_COLUMNS)}) "  # noqa: S608
                        f"VALUES ({', '.join([self.mark] * len(VISIT_COLUMNS))})", visits)
        cur.executemany(f"INSERT INTO service_deliveries ({', '.join(DELIVERY_COLUMNS)}) "  # noqa: S608
                        f"VALUES ({', '.join([self.mark] * len(DELIVERY_COLUMNS))})", deliveries)
        if self.sqlite:
            cur.execute("COMMIT")
        else:
            self.conn.commit()

    def ledger_of(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]
                  ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The sync-log rows and the audit events the push wrote for these visits and deliveries (untimed)."""
        cur = self.conn.cursor()
        ids = [v[0] for v in rows[0]] + [d[0] for d in rows[1]]
        log: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join([self.mark] * len(chunk))
            cur.execute(f"SELECT {', '.join(LOG_COLUMNS)} FROM sync_log WHERE record_id IN ({marks})", chunk)  # noqa: S608
            log += cur.fetchall()
            cur.execute(f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events "  # noqa: S608
                        f"WHERE target_type = 'visits' AND target_id IN ({marks})", chunk)
            events += cur.fetchall()
        if not self.sqlite:
            self.conn.rollback()
        return log, events

    def insert_all(self, rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]],
                   ledger: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> float:
        """What the push itself must write, by the bare driver in one durable commit: the rows, their sync-log rows
        and their audit events. Timed (ms). The ledger's copies go to scratch copies of its two tables (the same
        columns and indexes; the audit trail is append-only and phones read the log), emptied afterwards, untimed."""
        log, events = ledger
        log_table, audit_table = self._scratch("sync_log"), self._scratch("audit_events")
        cur = self.conn.cursor()
        started = time.perf_counter()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        self._many(cur, "visits", VISIT_COLUMNS, rows[0])
        self._many(cur, "service_deliveries", DELIVERY_COLUMNS, rows[1])
        self._many(cur, log_table, LOG_COLUMNS, log)
        self._many(cur, audit_table, AUDIT_COLUMNS, events)
        self._commit(cur)
        elapsed = (time.perf_counter() - started) * 1000
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(f"DELETE FROM {log_table}")  # noqa: S608 - our own names
        cur.execute(f"DELETE FROM {audit_table}")  # noqa: S608
        self._commit(cur)
        return elapsed

    def _commit(self, cur: Any) -> None:
        if self.sqlite:
            cur.execute("COMMIT")
        else:
            self.conn.commit()

    def _scratch(self, table: str) -> str:
        """`bench_<table>`: the table's columns and indexes, without its triggers (made once)."""
        name = f"bench_{table}"
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                        "AND type IN ('table', 'index') ORDER BY type DESC", (table,))
            for kind, index, sql in cur.fetchall():
                if kind == "table":
                    cur.execute(sql.replace(f"CREATE TABLE {table} (", f"CREATE TABLE IF NOT EXISTS {name} (", 1))
                else:
                    cur.execute(sql.replace(f"CREATE INDEX {index} ON {table} (",
                                            f"CREATE INDEX IF NOT EXISTS bench_{index} ON {name} (", 1))
        else:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {name} (LIKE {table} INCLUDING ALL)")
            self.conn.commit()
        return name

    def _many(self, cur: Any, table: str, columns: list[str], values: list[tuple[Any, ...]]) -> None:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                        f"VALUES ({', '.join([self.mark] * len(columns))})", values)

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()
