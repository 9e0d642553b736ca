"""Search benchmark: find a resident by ID number and by name prefix in a district of 200,000 residents.

    .venv/bin/python bench/search.py --db sqlite
    .venv/bin/python bench/search.py --db postgres        # postgresql+psycopg://postgres@127.0.0.1:5432

What it does, in one run on one machine:
1. builds the database (migrations, then the demo generator with every resident in one district: 金水区
   410105) — or reuses it with --reuse (SQLite: bench/out/search-<size>.db; PostgreSQL: its own database
   bench_search_<size>, created here and dropped at the end unless --keep);
2. creates a district supervisor (random password, kept in memory) and starts the real app under uvicorn
   on loopback (one worker, the production server), then signs in through the API;
3. measures, interleaved so that machine noise hits both sides alike:
   - API:    GET /api/v1/residents?id_number=…   and   GET /api/v1/residents?q=<name prefix>
   - direct: the very SQL those requests run for the search (count + first page, captured from the
             app's own query builder for this supervisor's scope), sent through the bare driver
             (sqlite3 / psycopg) in a read transaction — the physical limit of the same indexed query;
   - floors: GET /healthz (HTTP + one SELECT 1) and GET /api/v1/auth/me (authentication alone);
4. prints medians, p95 and the ratio direct median / API median (target ≥ 0.5), plus EXPLAIN for both
   queries (each must use an index). No assertions on time.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.cli import alembic_config
from app.core.actor import Actor, AreaScope, Role
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.core.pagination import PageParams
from app.people.models import Resident
from app.people.register import service
from app.places.models import Division

wiring.install()  # the ledger and the event subscriptions, as the app and the CLI have them

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DISTRICT = "410105"
MARK = "bench_search_ready"


# --- the database ----------------------------------------------------------------------------------------

def bench_url(db: str, name: str) -> str:
    """The database a bench builds for itself: bench/out/<name>.db, or bench_<name> on the PostgreSQL server."""
    if db == "sqlite":
        return f"sqlite:///{ROOT / 'bench' / 'out' / f'{name}.db'}"
    return make_url(PG_SERVER).set(database=f"bench_{name.replace('-', '_')}").render_as_string(hide_password=False)


def database_url(db: str, size: int) -> str:
    return bench_url(db, f"search-{size}")


def admin(sql: str) -> None:
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def drop(db: str, url: str) -> None:
    if db == "sqlite":
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def ready(db: str, url: str) -> bool:
    """A database an earlier run built completely (its last act was to record MARK)."""
    if db == "sqlite" and not Path(make_url(url).database or "").exists():
        return False
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM audit_events WHERE action = :a LIMIT 1"), {"a": MARK}).first())
    except Exception:
        return False
    finally:
        engine.dispose()


def build(db: str, url: str, size: int, seed: int) -> None:
    from app.demo.seed import seed_demo
    from app.ledger import audit

    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    started, cpu = time.perf_counter(), time.process_time()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        print(f"  generated {done:>9,} / {total:,} residents  {done / elapsed:8,.0f}/s", flush=True)

    try:
        with unit_of_work(engine=engine) as session:
            result = seed_demo(session, size=size, seed=seed, with_users=False, districts=1, progress=progress)
            audit.record(session, MARK)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"built {result.residents:,} residents ({result.tenancies:,} tenancies, {result.fp_documents:,} "
              f"婚育证明, {result.health_records:,} health records) in {elapsed:.0f} s: "
              f"{result.residents / elapsed:,.0f} residents/s including indexes and commit "
              f"(this process used {cpu:.0f} s of CPU; load average {os.getloadavg()[0]:.1f})")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def supervisor(url: str) -> tuple[str, str, str]:
    """A district supervisor for the bench (fresh random password each run)."""
    from app.accounts import service as users_service

    engine = create_db_engine(url)
    username, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(18) + "aA1!"
    try:
        with unit_of_work(engine=engine) as session:
            district = session.execute(select(Division).where(Division.code == DISTRICT)).scalar_one()
            users_service.create_user(session, username=username, display_name="bench", role=Role.supervisor,
                                      password=password, division_ids=[district.id])
            return username, password, district.path
    finally:
        engine.dispose()


def samples(url: str, n: int, prefix_len: int, rng: random.Random) -> tuple[list[str], list[str]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(Resident)).scalar_one()
            ids, prefixes = [], []
            for _ in range(n):
                row = conn.execute(select(Resident.id_number, Resident.name).order_by(Resident.id)
                                   .offset(rng.randrange(total)).limit(1)).one()
                ids.append(row[0])
                prefixes.append(row[1][:prefix_len])
            return ids, prefixes
    finally:
        engine.dispose()


# --- the direct side: the app's own SQL through the bare driver -----------------------------------------

class Direct:
    def __init__(self, url: str, actor: Actor, limit: int) -> None:
        self.engine = create_db_engine(url)
        self.dialect = self.engine.dialect
        self.raw: Any = self.engine.raw_connection()  # our connect-time settings (case_sensitive_like …)
        self.actor, self.limit = actor, limit
        self.sqlite = self.dialect.name == "sqlite"

    def statements(self, **criteria: str) -> list[tuple[str, Any]]:
        """count + first page, exactly as GET /residents builds them (service.search + paginate)."""
        stmt = service.search(self.actor, **criteria)  # type: ignore[arg-type]
        params = PageParams(limit=self.limit, offset=0)
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        page = stmt.limit(params.limit).offset(params.offset)
        return self.compiled([count, page])

    def compiled(self, stmts: list[Any]) -> list[tuple[str, Any]]:
        out = []
        for s in stmts:
            compiled = s.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
            if self.sqlite:
                out.append((compiled.string, tuple(compiled.params[k] for k in compiled.positiontup or ())))
            else:
                out.append((compiled.string, dict(compiled.params)))
        return out

    def what_if(self, prefix: str, district: bool) -> list[tuple[str, Any]]:
        """The name search as it could be written: each LIKE pattern one bound value (SQLAlchemy's
        startswith() sends `? || '%'`, which SQLite cannot match against an index), optionally with the
        district code the scope implies (so (district_code, name) is an index range on PostgreSQL too)."""
        assert self.actor.area_prefixes

        def pattern(text: str) -> str:
            return text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"

        stmt = select(Resident).where(col(Resident.area_path).like(pattern(self.actor.area_prefixes[0]), escape="/"))
        if district:
            stmt = stmt.where(col(Resident.district_code) == self.actor.area_prefixes[0].split("/")[2])
        stmt = stmt.where(col(Resident.name).like(pattern(prefix), escape="/")).order_by(
            col(Resident.name), col(Resident.id))
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        return self.compiled([count, stmt.limit(self.limit).offset(0)])

    def run(self, statements: list[tuple[str, Any]] | None = None, **criteria: str) -> int:
        statements = statements or self.statements(**criteria)
        cursor = self.raw.cursor()
        if self.sqlite:
            cursor.execute("BEGIN")
        rows = 0
        for sql, params in statements:
            cursor.execute(sql, params)
            rows += len(cursor.fetchall())
        self.raw.rollback() if not self.sqlite else cursor.execute("ROLLBACK")
        cursor.close()
        return rows

    def explain(self, statements: list[tuple[str, Any]] | None = None, **criteria: str) -> list[str]:
        lines = []
        cursor = self.raw.cursor()
        for sql, params in statements or self.statements(**criteria):
            if self.sqlite:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                lines.append(" | ".join(str(r[-1]) for r in cursor.fetchall()))
            else:
                cursor.execute("EXPLAIN " + sql, params)
                lines.append(" | ".join(r[0].strip() for r in cursor.fetchall()))
        if not self.sqlite:
            self.raw.rollback()
        cursor.close()
        return lines

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


def uses_index(plan: str) -> bool:
    lowered = plan.lower()
    full_scan = ("scan residents" in lowered and "using" not in lowered.split("scan residents")[1][:40]) or \
        "seq scan on residents" in lowered
    return not full_scan and ("index" in lowered)


def what_if(direct: Direct, prefixes: list[str], n: int) -> None:
    """Evidence for a fix in app code: the same search, written so that the indexes can serve it."""
    variants = {"as the app sends it": None, "one-value LIKE patterns": False, "… + district_code": True}
    print("\n  what if (direct SQL only, name prefix):")
    for label, district in variants.items():
        if district is not None:
            plans = direct.explain(direct.what_if(prefixes[0], district))
            for kind, plan in zip(("count", "page"), plans, strict=True):
                print(f"    EXPLAIN {label} {kind}: {'index' if uses_index(plan) else 'NO INDEX'}: {plan}")
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(n):
        for label, district in variants.items():
            stmts = direct.statements(q=prefixes[i]) if district is None else direct.what_if(prefixes[i], district)
            times[label].append(timed(lambda stmts=stmts: direct.run(stmts)))
    for label in variants:
        med, p95 = summary(times[label])
        print(f"    {label:<26}{med:>10.3f}ms median{p95:>10.3f}ms p95")


def breakdown(url: str, username: str, district_path: str, ids: list[str], prefixes: list[str], n: int) -> None:
    """What one search request is made of: its parts timed one by one in this process (same database)."""
    from sqlmodel import Session

    from app.auth.models import AuthSession, User, UserScope
    from app.core.config import get_settings
    from app.core.db import begin
    from app.core.pagination import Page, paginate
    from app.core.security import decode_access_token, issue_access_token
    from app.core.types import utcnow
    from app.ledger import audit
    from app.people.register.router import list_item

    engine = create_db_engine(url)
    settings = get_settings()
    with Session(engine) as session:
        user = session.execute(select(User).where(col(User.username) == username)).scalar_one()
    actor = Actor(user.id, username, Role.supervisor, "bench", AreaScope((district_path,)))
    token, _ = issue_access_token(settings, user_id=user.id, session_id="s" * 32, now=utcnow())

    def empty(i: int) -> None:
        with Session(engine) as session:
            begin(session, write=False)
            session.rollback()

    def who(i: int) -> None:  # what get_actor asks the database
        with Session(engine) as session:
            begin(session, write=False)
            session.execute(select(User, AuthSession).join(AuthSession, col(AuthSession.user_id) == col(User.id))
                            .where(col(User.id) == user.id)).first()
            list(session.execute(select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(
                Division.id)).where(col(UserScope.user_id) == user.id)).scalars())
            session.rollback()

    def found(i: int, name: bool = False) -> Page[Any]:
        with Session(engine) as session:
            begin(session, write=False)
            stmt = service.search(actor, q=prefixes[i]) if name else service.search(actor, id_number=ids[i])
            rows, total = paginate(session, stmt, PageParams(limit=50, offset=0))
            page: Page[Any] = Page(items=[list_item(r) for r in rows], total=total, limit=50, offset=0)
            session.rollback()
            return page

    pages = [found(i, name=True) for i in range(min(n, 50))]

    def audited(i: int) -> None:
        with Session(engine) as session:
            begin(session, write=True)
            service.audit_search(session, ["x"], "id_number")
            audit.seal_pending(session)
            session.commit()

    parts: list[tuple[str, Callable[[int], Any]]] = [
        ("empty read transaction", empty),
        ("JWT verification", lambda i: decode_access_token(settings, token)),
        ("actor: user + scope queries", who),
        ("search by ID: count + page (ORM)", found),
        ("search by name: count + page (ORM)", lambda i: found(i, name=True)),
        ("page of up to 50 to JSON", lambda i: pages[i % len(pages)].model_dump_json()),
        ("audit event: seal + commit", audited),
    ]
    print("\n  breakdown (in-process, median ms):")
    for label, fn in parts:
        print(f"    {label:<38}{summary([timed(lambda i=i, fn=fn: fn(i)) for i in range(n)])[0]:>9.3f}")
    engine.dispose()


# --- the API side ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


class Api:
    def __init__(self, port: int, username: str, password: str) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.username, self.password = username, password
        self.login()

    def login(self) -> None:
        response = self.client.post("/api/v1/auth/login", json={"username": self.username, "password": self.password})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.logged_in = time.monotonic()

    def get(self, path: str, **params: str) -> int:
        if time.monotonic() - self.logged_in > 240:  # access tokens live 10 minutes
            self.login()
        response = self.client.get(path, params=params)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
        body = response.json()
        return int(body.get("total", 1))


# --- measuring ---------------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - started) / 1e6


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--size", type=int, default=200_000, help="residents in the district")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per query kind")
    parser.add_argument("--prefix-len", type=int, default=2, help="name prefix length (2 = surname + 1)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--reuse", action="store_true", help="reuse a database built by an earlier run")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--breakdown", action="store_true", help="also time a request's parts in-process")
    parser.add_argument("--what-if", action="store_true",
                        help="also time the name search written with one-value LIKE patterns (+ district code)")
    args = parser.parse_args()

    url = database_url(args.db, args.size)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    if not (args.reuse and ready(args.db, url)):
        build(args.db, url, args.size, args.seed)
    username, password, district_path = supervisor(url)
    rng = random.Random(args.seed)
    ids, prefixes = samples(url, args.requests, args.prefix_len, rng)
    actor = Actor("bench", username, Role.supervisor, "bench", AreaScope((district_path,)))
    direct = Direct(url, actor, limit=50)
    port = free_port()
    server = start_server(url, port)
    try:
        api = Api(port, username, password)
        print(f"\n{args.db}: {args.size:,} residents in district {DISTRICT}; {args.requests} requests per kind; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
        for label, criteria in (("id_number", {"id_number": ids[0]}), ("name prefix", {"q": prefixes[0]})):
            for sql_kind, plan in zip(("count", "page"), direct.explain(**criteria), strict=True):
                print(f"  EXPLAIN {label} {sql_kind}: {'index' if uses_index(plan) else 'NO INDEX'}: {plan}")
        # Warm-up: caches, prepared statements, the server's first requests.
        for i in range(20):
            api.get("/api/v1/residents", id_number=ids[i])
            api.get("/api/v1/residents", q=prefixes[i])
            direct.run(id_number=ids[i])
            direct.run(q=prefixes[i])
        times: dict[str, list[float]] = {k: [] for k in ("api_id", "direct_id", "api_q", "direct_q", "healthz", "me")}
        matches: list[int] = []
        for i in range(args.requests):
            # The direct side's SQL is built and compiled before the clock starts: only the database counts.
            by_id, by_name = direct.statements(id_number=ids[i]), direct.statements(q=prefixes[i])
            times["api_id"].append(timed(lambda i=i: api.get("/api/v1/residents", id_number=ids[i])))
            times["direct_id"].append(timed(lambda s=by_id: direct.run(s)))
            times["api_q"].append(timed(lambda i=i: matches.append(api.get("/api/v1/residents", q=prefixes[i]))))
            times["direct_q"].append(timed(lambda s=by_name: direct.run(s)))
            if i % 3 == 0:
                times["healthz"].append(timed(lambda: api.client.get("/healthz")))
                times["me"].append(timed(lambda: api.get("/api/v1/auth/me")))
        if args.what_if:
            what_if(direct, prefixes, args.requests)
        if args.breakdown:
            breakdown(url, username, district_path, ids, prefixes, min(args.requests, 200))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        direct.close()
    print(f"  name prefixes of {args.prefix_len} characters match {statistics.median(matches):.0f} residents "
          f"(median; max {max(matches)}); pages of 50")
    print(f"\n  {'query':<22}{'API median':>12}{'API p95':>10}{'direct median':>15}{'direct p95':>12}{'ratio':>8}")
    for label, key in (("by ID number", "id"), ("by name prefix", "q")):
        api_med, api_p95 = summary(times[f"api_{key}"])
        dir_med, dir_p95 = summary(times[f"direct_{key}"])
        print(f"  {label:<22}{api_med:>10.2f}ms{api_p95:>8.2f}ms{dir_med:>13.3f}ms{dir_p95:>10.3f}ms"
              f"{dir_med / api_med:>8.2f}")
    for label, key in (("GET /healthz", "healthz"), ("GET /auth/me", "me")):
        med, p95 = summary(times[key])
        print(f"  {label:<22}{med:>10.2f}ms{p95:>8.2f}ms")
    print(f"  ratio = direct median / API median (target ≥ 0.5); load average {os.getloadavg()[0]:.1f} at the end")
    if args.db == "postgres" and not args.keep:
        drop(args.db, url)


if __name__ == "__main__":
    main()
