"""Outbox delivery rate to a local receiver (issue 14, "Push delivery"; docs/sharing.md).

    .venv/bin/python bench/outbox.py --db sqlite          # bench/out/outbox.db, rebuilt every run
    .venv/bin/python bench/outbox.py --db postgres        # own database bench_outbox on
                                                          # postgresql+psycopg://postgres@127.0.0.1:5432, dropped

Builds a demo city of `--events` residents (the demo generator), one police endpoint covering the whole city, and
queues one `resident.arrived` event per resident through the real producer (`announce`, as the register does).
The receiver is a separate process on loopback (a threading http.server that checks every signature with
`signing.verify` and deduplicates on the id, as docs/sharing.md asks of a partner). Then:

1. **Worker** — `delivery.run(once=True)` (the code of `migrant outbox-run`): claim a batch, POST each event signed,
   settle the batch (delivery log, delivered marks, one disclosure per record and its audit event); events/s.
2. **Limit** — the same number of signed POSTs of the same bodies to the same receiver in a bare loop over one
   keep-alive httpx client, with no database at all; requests/s. The ratio worker/limit is what the database
   round trips (two short write transactions per batch) cost.

No assertions on time; the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from alembic import command
from search import admin, bench_url, drop, free_port  # bench/search.py
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlmodel import col

from app import wiring
from app.auth.models import User
from app.cli import alembic_config
from app.core.config import ROOT
from app.core.db import create_db_engine, unit_of_work
from app.demo.seed import seed_demo
from app.ledger.outbox.service import Policy
from app.people.models import Resident
from app.places.models import Division
from app.sharing.webhooks import delivery, signing
from app.sharing.webhooks.models import WebhookEndpoint
from app.sharing.webhooks.producer import ARRIVED, announce
from app.sharing.webhooks.sealing import seal

SECRET = "whsec_bench-" + os.urandom(8).hex()


def serve(port: int, secret: str) -> None:
    """The receiver process: verify, dedupe, answer 200; GET answers the counts."""
    seen: set[str] = set()
    counts = {"requests": 0, "refused": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                seen.add(signing.verify(secret, dict(self.headers.items()), body))
                counts["requests"] += 1
                status = 200
            except signing.SignatureRefused:
                counts["refused"] += 1
                status = 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            data = json.dumps({**counts, "unique": len(seen)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def build(db: str, url: str, events: int, receiver: str) -> None:
    drop(db, url)
    if db == "postgres":
        admin(f'CREATE DATABASE "{make_url(url).database}"')
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    try:
        with unit_of_work(engine=engine) as session:
            seed_demo(session, size=events, with_users=False)
        with unit_of_work(engine=engine) as session:
            city = session.execute(select(Division).where(col(Division.level) == "city")).scalars().one()
            police = User(username="bench-police", display_name="bench", role="police", password_hash="!")
            session.add(police)
            session.flush()
            endpoint = WebhookEndpoint(partner_user_id=police.id, partner_kind="police", url=receiver, secret="",
                                       area_prefix=city.path, event_types=ARRIVED)
            endpoint.secret = seal(SECRET, endpoint.id)
            session.add(endpoint)
            session.flush()
            residents = session.execute(select(Resident).limit(events)).scalars().all()
            queued = sum(announce(session, r, ARRIVED) for r in residents)
        print(f"queued {queued} events", flush=True)
    finally:
        engine.dispose()


def bodies(url: str) -> list[tuple[str, bytes]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return [(r[0], r[1].encode()) for r in conn.execute(text("SELECT id, body FROM outbox_events"))]
    finally:
        engine.dispose()


def limit(receiver: str, sample: list[tuple[str, bytes]]) -> float:
    with httpx.Client(timeout=5, trust_env=False) as client:
        started = time.perf_counter()
        for event_id, body in sample:
            client.post(receiver, content=body, headers=signing.headers(SECRET, event_id, body)).raise_for_status()
        return len(sample) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50, help="OUTBOX_BATCH_SIZE")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "SECRET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    wiring.install()
    url = bench_url(args.db, "outbox")
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    port = free_port()
    receiver_url = f"http://127.0.0.1:{port}/hook"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), SECRET])
    try:
        build(args.db, url, args.events, receiver_url)
        for _ in range(300):  # the receiver process is up before anything is sent
            try:
                httpx.get(receiver_url, trust_env=False)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"{args.db}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        policy = Policy(max_attempts=8, backoff_seconds=10, backoff_max_seconds=3600, lease_seconds=300,
                        batch_size=args.batch)
        engine = create_db_engine(url)
        started = time.perf_counter()
        sent = delivery.run(engine=engine, policy=policy, once=True)
        worker = sent / (time.perf_counter() - started)
        with engine.connect() as conn:
            states = dict(conn.execute(text("SELECT state, count(*) FROM outbox_events GROUP BY state")).all())
            disclosed = conn.execute(text("SELECT count(*) FROM disclosures")).scalar_one()
        engine.dispose()
        bare = limit(receiver_url, bodies(url))
        counts = httpx.get(receiver_url, trust_env=False).json()
        print(f"worker (outbox-run, batch {args.batch}): {sent} events, {worker:,.0f} events/s; states {states}, "
              f"{disclosed} disclosures")
        print(f"limit (bare loop of signed POSTs, same receiver): {bare:,.0f} requests/s; worker/limit "
              f"{worker / bare:.2f}")
        print(f"receiver: {counts}; load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        server.terminate()
        server.wait(10)
        if args.db == "postgres":
            drop(args.db, url)


if __name__ == "__main__":
    main()
