"""The demo city the request-path benches run on (bench/floor.py, bench/load.py), and the servers they start.

A city is built fresh for each run: the real migrations, the demo generator (`app.demo.seed`, the code of
`migrant seed-demo`) at `size` residents, the bench's own accounts (never the demo's), the demo visit history
and tasks (`app.demo.visits`) for the communities those workers cover, every synced row entered in the sync
log (as bulk writers must), then ANALYZE.

The bench's accounts share one random password, hashed once at the production argon2 cost: each login still
costs the server what a real one does, and building 200 accounts does not take 200 hashes.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from alembic import command
from search import admin, drop  # bench/search.py
from sqlalchemy import select, true
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.cli import alembic_config
from app.core.actor import Role
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.places.models import Division, Level

wiring.install()  # the ledger and the event subscriptions, as the app and the CLI have them

OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Account:
    username: str
    user_id: str
    role: Role
    division_id: str
    division_path: str


@dataclass
class City:
    db: str
    url: str
    password: str
    workers: list[Account] = field(default_factory=list)
    supervisors: list[Account] = field(default_factory=list)
    residents: int = 0


def build(db: str, url: str, *, size: int, seed: int, workers: int, supervisors: int) -> City:
    """A fresh database: the demo city, `workers` workers (communities in turn) and `supervisors` supervisors
    (districts, then streets, in turn), their visit history and tasks."""
    from app.demo.seed import seed_demo
    from app.demo.visits import seed_visits

    OUT.mkdir(parents=True, exist_ok=True)
    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    city = City(db, url, secrets.token_urlsafe(18) + "aA1!")
    started = time.perf_counter()
    try:
        with unit_of_work(engine=engine) as session:
            result = seed_demo(session, size=size, seed=seed, with_users=False, with_visits=False)
        with unit_of_work(engine=engine) as session:
            _accounts(session, city, workers, supervisors)
            history = seed_visits(session, seed)
            _log_everything(session)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    city.residents = result.residents
    print(f"built {result.residents:,} residents in {result.divisions:,} divisions, {len(city.workers)} workers and "
          f"{len(city.supervisors)} supervisors for the bench, {history.visits:,} earlier visits, {history.tasks:,} "
          f"tasks in {time.perf_counter() - started:.0f} s", flush=True)
    return city


def _accounts(session: Any, city: City, workers: int, supervisors: int) -> None:
    from app.accounts import service as users_service

    hashed = users_service.hash_password(city.password)  # production cost, once
    levels = {level: list(session.execute(select(Division).where(col(Division.level) == level.value)
                                          .order_by(col(Division.path))).scalars())
              for level in (Level.community, Level.district, Level.street)}
    overseen = levels[Level.district] + levels[Level.street]
    tag = secrets.token_hex(3)
    original = users_service.hash_password
    users_service.hash_password = lambda _password: hashed  # type: ignore[assignment]
    try:
        for kind, count, places, out in ((Role.worker, workers, levels[Level.community], city.workers),
                                         (Role.supervisor, supervisors, overseen, city.supervisors)):
            for i in range(count):
                place = places[i % len(places)]
                username = f"bench_{tag}_{kind.value[0]}{i:04d}"
                user = users_service.create_user(session, username=username, display_name=username, role=kind,
                                                 password=city.password, division_ids=[place.id])
                out.append(Account(username, user.id, kind, place.id, place.path))
    finally:
        users_service.hash_password = original


def _log_everything(session: Any) -> None:
    """What the ORM would have logged, had the generator's rows come one by one (as bench/sync.py does)."""
    from app.ledger import changes
    from app.sync.wire import MODELS

    for model in MODELS.values():
        changes.mark_rows(session, model.__table__, true())  # type: ignore[attr-defined]


# --- servers ---------------------------------------------------------------------------------------------

class Server:
    """A server in its own process group on loopback; stopped (and killed if need be) on exit."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str], label: str) -> None:
        self.argv, self.port, self.env, self.label = argv, port, env, label
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.log_path = OUT / f"server-{port}.log"

    def __enter__(self) -> Server:
        OUT.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.argv, env={**os.environ, **self.env}, cwd=ROOT, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if not healthy(self.base, 60, self.process):
            self.__exit__()
            raise SystemExit(f"{self.label} did not start; see {self.log_path}")
        return self

    def errors_logged(self, since: int) -> tuple[int, dict[str, int]]:
        """(the log's size now, the server errors logged after byte `since` by kind): the app logs every
        unhandled error as "unhandled error <Kind> on <route>", uvicorn as "Exception in ASGI application"."""
        if self.log is not None:
            self.log.flush()
        data = self.log_path.read_bytes()
        kinds: dict[str, int] = {}
        asgi = 0
        for line in data[since:].decode(errors="replace").splitlines():
            if " unhandled error " in line:
                kind = line.split(" unhandled error ", 1)[1].split(" ", 1)[0]
                kinds[kind] = kinds.get(kind, 0) + 1
            elif "Exception in ASGI application" in line:
                asgi += 1
        if asgi > sum(kinds.values()):  # uvicorn also logs the ones the app logged
            kinds["other"] = asgi - sum(kinds.values())
        return len(data), kinds

    def __exit__(self, *_exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()


def healthy(base: str, within: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Does GET /healthz answer 200 within `within` seconds?"""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def app_server(url: str, port: int, workers: int = 1) -> Server:
    """The real app as production runs it: `migrant serve` (uvicorn, `workers` processes)."""
    env = {"DATABASE_URL": url, "APP_ENV": "development", "LOG_LEVEL": "WARNING", "UVICORN_LOG_LEVEL": "warning"}
    argv = [str(BIN / "migrant"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return Server(argv, port, env, f"migrant serve --workers {workers}")


def floor_server(url: str, port: int) -> Server:
    """The bare FastAPI app of bench/floor_app.py under the same uvicorn, one worker, as `migrant serve` runs."""
    argv = [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(ROOT / "bench"), "--host",
            "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    return Server(argv, port, {"FLOOR_DATABASE_URL": url}, "the floor app")


def login(base: str, username: str, password: str) -> dict[str, Any]:
    response = httpx.post(base + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=60)
    response.raise_for_status()
    return dict(response.json())


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
