"""Test harness: real databases, real migrations, the real app.

Backend: SQLite by default; PostgreSQL when TEST_DATABASE_URL names a server, e.g.
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres make test
Each test session migrates a template database once and loads a small demo world into it; every test
gets its own copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL), so tests are
isolated and the audit log's append-only triggers stay on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.update(
    APP_ENV="test",
    JWT_KEYS="test-current:test-signing-key-current-0123456789abcdef,"
    "test-previous:test-signing-key-previous-0123456789abcdef",
    THROTTLE_SECRET="test-throttle-secret",
    ARGON2_TIME_COST="1",
    ARGON2_MEMORY_KIB="1024",
    LOG_LEVEL="WARNING",
    PHOTO_DIR=tempfile.mkdtemp(prefix="migrant-test-photos-"),
)
os.environ.pop("DATABASE_URL", None)

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from app import wiring
from app.cli import alembic_config
from app.core.db import create_db_engine, guard_single_checkout, unit_of_work, use_engine
from app.ledger.audit import verify_chain

wiring.install()

PASSWORD = "Field-Work-2026!"
# Engines (by id) whose audit log a test tampered with on purpose: not verified afterwards.
TAMPERED: set[int] = set()
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKEND = "postgresql" if PG_URL.startswith("postgresql") else "sqlite"


def pytest_report_header() -> str:
    return f"database backend: {BACKEND}"


# --- databases ---------------------------------------------------------------------------------------

class Databases:
    """Creates per-test databases from a migrated template."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.run = f"t{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = self.url_for(f"{self.run}_tmpl")

    def url_for(self, name: str) -> str:
        if BACKEND == "sqlite":
            return f"sqlite:///{self.tmp / (name + '.db')}"
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def admin_execute(self, sql: str) -> None:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def create_empty(self, name: str) -> str:
        url = self.url_for(name)
        if BACKEND == "postgresql":
            self.admin_execute(f'CREATE DATABASE "{name}"')
        return url

    def clone_template(self, name: str) -> str:
        url = self.url_for(name)
        if BACKEND == "sqlite":
            shutil.copyfile(self.tmp / f"{self.run}_tmpl.db", self.tmp / f"{name}.db")
        else:
            self.admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.run}_tmpl"')
        return url

    def drop(self, name: str) -> None:
        if BACKEND == "sqlite":
            for suffix in (".db", ".db-wal", ".db-shm"):
                (self.tmp / f"{name}{suffix}").unlink(missing_ok=True)
        else:
            self.admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class World:
    """Ids of the demo places and staff every test can rely on."""

    city: dict[str, Any] = field(default_factory=dict)
    districts: list[dict[str, Any]] = field(default_factory=list)
    streets: list[dict[str, Any]] = field(default_factory=list)
    communities: list[dict[str, Any]] = field(default_factory=list)
    grids: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dwellings: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # username -> id

    def community(self, key: str) -> dict[str, Any]:
        """c1: own community; c2: neighbour on the same street; c3: another district."""
        first = self.communities[0]
        same_street = [c for c in self.communities if c["parent_id"] == first["parent_id"] and c is not first]
        other = [c for c in self.communities if c["district_code"] != first["district_code"]]
        return {"c1": first, "c2": same_street[0], "c3": other[0]}[key]


def _build_world(url: str) -> World:
    from app.accounts import service as users_service
    from app.core.actor import Role
    from app.demo.seed import seed_demo
    from app.places.models import Division, Dwelling

    engine = create_db_engine(url)
    world = World()
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=1000, with_users=False)
            rows = session.execute(select(Division).order_by(Division.path)).scalars().all()
            by_level: dict[str, list[dict[str, Any]]] = {}
            for d in rows:
                by_level.setdefault(d.level, []).append(d.model_dump())
            world.city = by_level["city"][0]
            world.districts, world.streets = by_level["district"], by_level["street"]
            world.communities = by_level["community"]
            for g in by_level["grid"]:
                world.grids.setdefault(g["parent_id"], []).append(g)
            for dw in session.execute(select(Dwelling).order_by(Dwelling.address)).scalars():
                world.dwellings.setdefault(dw.community_id, []).append(dw.id)
            c1, c2, c3 = (world.community(k) for k in ("c1", "c2", "c3"))
            street_a = next(s for s in world.streets if s["id"] == c1["parent_id"])
            district_a = next(d for d in world.districts if d["code"] == c1["district_code"])
            district_b = next(d for d in world.districts if d["code"] == c3["district_code"])
            staff = [
                ("admin", Role.admin, []), ("auditor", Role.auditor, []),
                ("worker1", Role.worker, [c1["id"]]), ("worker2", Role.worker, [c2["id"]]),
                ("worker3", Role.worker, [c3["id"]]),
                ("grid_worker", Role.worker, [world.grids[c1["id"]][0]["id"]]),
                ("sup_street", Role.supervisor, [street_a["id"]]),
                ("sup_district", Role.supervisor, [district_a["id"]]),
                ("sup_other", Role.supervisor, [district_b["id"]]),
            ]
            for username, role, scope in staff:
                user = users_service.create_user(session, username=username, display_name=username, role=role,
                                                 password=PASSWORD, division_ids=scope)
                world.users[username] = user.id
    finally:
        engine.dispose()
    return world


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    name = f"{dbs.run}_tmpl"
    url = dbs.create_empty(name)
    command.upgrade(alembic_config(url), "head")
    dbs.world = _build_world(url)  # type: ignore[attr-defined]
    yield dbs
    dbs.drop(name)


@pytest.fixture()
def world(databases: Databases) -> World:
    return databases.world  # type: ignore[attr-defined, no-any-return]


@pytest.fixture()
def engine(databases: Databases) -> Iterator[Engine]:
    """A fresh database for the test. Afterwards the audit chain must verify: everything a test did
    through the app left an intact log (tests that tamper on purpose register in TAMPERED)."""
    name = f"{databases.run}_{uuid.uuid4().hex[:10]}"
    url = databases.clone_template(name)
    eng = create_db_engine(url)
    guard_single_checkout(eng)  # a request holding a connection that asks for a second one fails loudly
    use_engine(eng)
    try:
        yield eng
        if id(eng) not in TAMPERED:
            with unit_of_work(write=False, engine=eng) as session:
                report = verify_chain(session)
            assert report.first_broken_id is None, f"audit chain broken after the test: {report}"
    finally:
        TAMPERED.discard(id(eng))
        use_engine(None)
        eng.dispose()
        databases.drop(name)


@pytest.fixture()
def client(engine: Engine) -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app, base_url="http://testserver") as c:
        yield c


class Api:
    """Logs in staff once per test and keeps their headers."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._headers: dict[str, dict[str, str]] = {}

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def headers(self, username: str) -> dict[str, str]:
        if username not in self._headers:
            token = self.login(username)["access_token"]
            self._headers[username] = {"Authorization": f"Bearer {token}"}
        return self._headers[username]

    def as_(self, username: str, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers(username), **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)


@pytest.fixture()
def api(client: TestClient) -> Api:
    return Api(client)
