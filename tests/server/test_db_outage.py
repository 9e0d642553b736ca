"""PostgreSQL stopped in the middle of a push, then started again, under a running server (issue 12).

The machine's shared PostgreSQL is never touched: the test runs its own instance (initdb into a temporary
directory, a free port; as root, as the `postgres` user, since PostgreSQL refuses to run as root), stops it
the way a crash does (`pg_ctl stop -m immediate`) while a push of 1,000 visits is on its way, and requires:
- every answer meanwhile is 503, never a 500 (and every request gets an answer);
- the push in flight answers 200 (it committed) or 503;
- once the database is back, the same server process answers again (no restart), the phone's retried push
  stores each visit once, its pull carries each once, and the audit chain verifies.
PostgreSQL only: it runs in `make test-pg` (CI's second stage); on CI a missing instance fails the test.
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.core.db import create_db_engine, unit_of_work
from tests.conftest import BACKEND, PASSWORD
from tests.server.conftest import assert_chain_intact
from tests.server.harness import CLIENT_TIMEOUT_S, PrivatePostgres, Server, burst, postgres_bin
from tests.server.phone import (
    V1,
    acknowledged_cursor,
    count_in,
    login,
    pull,
    push,
    residents_of,
    sync_headers,
    visits_changes,
)

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL only (make test-pg)")
PUSH_VISITS = 1000
WORKER = "outage_worker"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"cannot run a private PostgreSQL instance on CI: {reason}")
    pytest.skip(f"cannot run a private PostgreSQL instance: {reason}")


@pytest.fixture()
def private_pg() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        _unavailable("no PostgreSQL server binaries (initdb) on this machine")
    assert bin_dir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run the server as")
    instance = PrivatePostgres(bin_dir)
    try:
        instance.init()
    except (RuntimeError, OSError) as exc:
        instance.destroy()
        _unavailable(str(exc))
    try:
        yield instance
    finally:
        instance.destroy()


def _city(instance: PrivatePostgres) -> tuple[str, str]:
    """A migrated database with a small demo city and one worker (its first community): (url, community id)."""
    from app.accounts import service as users_service
    from app.core.actor import Role
    from app.demo.seed import seed_demo
    from app.places.models import Division, Level

    admin = create_engine(instance.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "migrant"'))
    finally:
        admin.dispose()
    url = make_url(instance.url).set(database="migrant").render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=1000, with_users=False)
            community = session.execute(select(Division).where(Division.level == Level.community.value)
                                        .order_by(Division.path).limit(1)).scalar_one()
            users_service.create_user(session, username=WORKER, display_name=WORKER, role=Role.worker,
                                      password=PASSWORD, division_ids=[community.id])
            return url, community.id
    finally:
        engine.dispose()


def test_postgres_stopped_during_a_push_answers_503_then_recovers_without_restart(
        private_pg: PrivatePostgres, servers: Callable[..., Server]) -> None:
    url, community = _city(private_pg)
    server = servers(url)
    token, device = login(server.base, WORKER, PASSWORD)["access_token"], "phone-outage-1"
    residents = residents_of(url, community)
    cursor = acknowledged_cursor(server.base, token, device)
    warm, _, _ = visits_changes(residents, PUSH_VISITS)
    started = time.monotonic()
    assert push(server.base, token, device, cursor, warm).status_code == 200
    took = time.monotonic() - started
    cursor = int(pull(server.base, token, device, cursor)["timestamp"])
    changes, visit_ids, delivery_ids = visits_changes(residents, PUSH_VISITS)
    in_flight: list[httpx.Response | None] = []

    def send() -> None:
        try:
            in_flight.append(push(server.base, token, device, cursor, changes))
        except httpx.HTTPError:
            in_flight.append(None)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    time.sleep(took * 0.5)
    private_pg.stop("immediate")
    auth = {"Authorization": f"Bearer {token}"}
    small, _, _ = visits_changes(residents, 2)
    meanwhile = burst(server.base, [
        ("GET", "/healthz", {}),
        ("GET", V1 + "/auth/me", {"headers": auth}),
        ("GET", V1 + "/sync/pull", {"params": {"schema_version": 1, "last_pulled_at": cursor},
                                    "headers": sync_headers(token, device)}),
        ("POST", V1 + "/sync/push", {"params": {"last_pulled_at": cursor}, "json": small,
                                     "headers": sync_headers(token, device)}),
        ("POST", V1 + "/auth/login", {"json": {"username": WORKER, "password": PASSWORD}}),
    ])
    thread.join(CLIENT_TIMEOUT_S + 5)
    private_pg.start()
    # What went wrong meanwhile is reported with what follows, so one run tells both.
    problems = [f"while the database was down: {o.detail}" for o in meanwhile if o.status != 503]
    if not in_flight or in_flight[0] is None:
        problems.append("the push in flight got no answer")
    elif in_flight[0].status_code not in (200, 503):
        problems.append(f"the push in flight: {in_flight[0].status_code} {in_flight[0].text[:200]}")
    if problems:
        problems.append(f"the server logged: {server.logged_errors()}")

    if not server.wait_healthy(60):
        pytest.fail("the server did not answer /healthz once the database was back; " + "; ".join(problems),
                    pytrace=False)
    response = push(server.base, token, device, cursor, changes)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["rejected"] == [], response.text[:300]
    assert count_in(url, "visits", "id", visit_ids) == PUSH_VISITS
    assert count_in(url, "service_deliveries", "id", delivery_ids) == PUSH_VISITS
    seen = [r["id"] for r in pull(server.base, token, device, cursor)["changes"]["visits"]["updated"]]
    assert all(seen.count(i) == 1 for i in visit_ids), "the phone's pull does not carry each of its visits once"
    server.stop()
    assert_chain_intact(url)
    if problems:
        pytest.fail("recovered without a restart, but: " + "; ".join(problems), pytrace=False)
