"""`migrant outbox-run` survives a kill -9: every event arrives at least once, each id is processed once.

The worker runs as a real process. The receiver processes the 25th request and holds its answer; the worker is
killed while it waits (sent, not yet marked: the worst moment), with the rest of its batch claimed and unsent.
A second worker delivers everything once the dead worker's lease has run out: the held event again, with the same
id, which the receiver's dedupe recognises. Nothing is lost, nothing is entered twice in the disclosure ledger.
And two workers at once share the work without sending any event twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from app.core.db import unit_of_work
from app.ledger.outbox.service import Policy
from app.people.models import Resident
from app.sharing.webhooks import delivery
from app.sharing.webhooks.producer import ARRIVED, announce
from tests.conftest import World
from tests.db import count, rows
from tests.sharing.webhooks.receiver import Receiver

ROOT = Path(__file__).resolve().parents[3]
EVENTS = 120


def start_worker(engine: Engine) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "OUTBOX_LEASE_SECONDS": "1", "OUTBOX_BACKOFF_SECONDS": "0", "OUTBOX_BATCH_SIZE": "10"}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "outbox-run", "--poll", "0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def delivered(engine: Engine) -> int:
    return int(rows(engine, "SELECT count(*) AS n FROM outbox_events WHERE state = 'delivered'")[0]["n"])


def test_the_worker_survives_a_kill_without_losing_or_doubling(
        world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]],
        partner: Callable[..., str]) -> None:
    station = partner("police", division_ids=[s["id"] for s in world.streets])  # the whole city
    police_hook(partner_user_id=station, division_id=None)
    with unit_of_work(engine=engine) as session:
        residents = session.execute(select(Resident).order_by(col(Resident.id)).limit(EVENTS)).scalars().all()
        assert sum(announce(session, r, ARRIVED) for r in residents) == EVENTS
    ids = {r["id"] for r in rows(engine, "SELECT id FROM outbox_events")}
    receiver.hold_at = 25

    first = start_worker(engine)
    try:
        assert receiver.held.wait(60), "the worker never reached the 25th event"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        receiver.release.set()
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert delivered(engine) < EVENTS  # it died mid-run

    second = start_worker(engine)
    try:
        deadline = time.monotonic() + 120
        while delivered(engine) < EVENTS and time.monotonic() < deadline and second.poll() is None:
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()[-2000:]

    assert delivered(engine) == EVENTS and count(engine, "outbox_events") == EVENTS  # none lost, none dead
    assert set(receiver.processed) == ids  # every event arrived; the receiver processed each id once
    assert all(receiver.deliveries[i] >= 1 for i in ids)
    assert receiver.duplicates() >= 1  # the held one came again, with the same id
    again = [r["id"] for r in rows(engine, "SELECT id FROM outbox_events WHERE attempts > 1")]
    assert again and all(receiver.deliveries[i] >= 1 for i in again)
    assert count(engine, "disclosures") == EVENTS  # entered once per delivered record
    assert receiver.refused == []


def test_two_workers_never_send_the_same_event(
        world: World, engine: Engine, receiver: Receiver, police_hook: Callable[..., dict[str, Any]],
        partner: Callable[..., str]) -> None:
    """Claims are leases taken under a lock (PostgreSQL: SKIP LOCKED; SQLite: the write lock): two workers running
    at once share the work and no event goes out twice."""
    station = partner("police", division_ids=[s["id"] for s in world.streets])  # the whole city
    police_hook(partner_user_id=station, division_id=None)
    with unit_of_work(engine=engine) as session:
        residents = session.execute(select(Resident).order_by(col(Resident.id)).limit(60)).scalars().all()
        assert sum(announce(session, r, ARRIVED) for r in residents) == 60
    receiver.delay = 0.005
    small = Policy(max_attempts=3, backoff_seconds=0, backoff_max_seconds=0, lease_seconds=60, batch_size=5)
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: delivery.run(engine=engine, policy=small, once=True), range(2)))
    assert sum(done) == 60
    assert delivered(engine) == 60 and len(receiver.processed) == 60 and receiver.duplicates() == 0
    assert rows(engine, "SELECT max(attempts) AS m FROM outbox_events") == [{"m": 1}]
