"""Instructions per request, counted by valgrind (callgrind): an A/B of two builds of the code that the host's noise
cannot move (issue 12, on a shared machine).

    .venv/bin/python bench/cpu.py                            # once, to build bench/out/cpu.db (SQLite)
    .venv/bin/python bench/instructions.py                   # this checkout
    .venv/bin/python bench/instructions.py --tree ../base    # also another checkout, alternating with this one

On this host, CPU time per request moved by ±15 % between identical runs, more than most changes save. Callgrind
counts the instructions the process executes, the same for the same code and input whatever else the machine does.
For each build: the route's requests in-process (Starlette's TestClient: client and server in one process, one
request at a time) on a fresh copy of bench/out/cpu.db, under `valgrind --tool=callgrind`, once with `--small`
requests and once with `--small + --requests`; the difference over `--requests` is the instructions one request
costs, start-up and sign-in excluded. The client's share (httpx, the test client's thread hand-off) is in it, the
same in both builds: compare builds, not the absolute figure. About 30 times slower than running natively (a
minute or two a build). No assertions; the figures are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROUTES = ("POST /visits", "GET /auth/me", "GET /residents/{id}", "GET /residents?id_number=", "POST /sync/push")
PUSH_VISITS = 100  # a push's visits (two service deliveries each) for "POST /sync/push"


def child(db: str, route: str, n: int) -> None:
    """In the measured process: sign in, warm up, then `n` requests."""
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("APP_ENV", "development")
    os.environ["LOG_LEVEL"] = "WARNING"
    import visits as bench_visits  # bench/visits.py
    from fastapi.testclient import TestClient

    from app.main import app

    saved = json.loads((HERE / "out" / "cpu-sqlite.json").read_text())
    worker = saved["workers"][0]
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/login", json={"username": worker["username"],
                                                       "password": saved["password"]}).json()["access_token"]
        auth = {"Authorization": "Bearer " + token, "X-Device-Id": "instructions-phone"}
        rng = random.Random(20261207)
        people = bench_visits.residents(os.environ["DATABASE_URL"], worker["username"])
        now = datetime.now(UTC)
        with sqlite3.connect(db) as conn:  # every resident's ID number by id (the worker's own are looked up)
            numbers = dict(conn.execute("SELECT id, id_number FROM residents").fetchall())
        warm = 20
        if route == "POST /sync/push":
            push(client, auth, worker["username"], n)
            return
        for i in range(warm + n):
            resident_id = people[i % len(people)][0]
            if route == "POST /visits":
                body = {**bench_visits.body(rng, people[i % len(people)], now), "id": uuid.UUID(
                    int=rng.getrandbits(128)).hex}
                response = client.post("/api/v1/visits", json=body, headers=auth)
            elif route == "GET /residents/{id}":
                response = client.get(f"/api/v1/residents/{resident_id}", headers=auth)
            elif route == "GET /residents?id_number=":
                response = client.get("/api/v1/residents", params={"id_number": numbers[resident_id]}, headers=auth)
            else:
                response = client.get("/api/v1/auth/me", headers=auth)
            if response.status_code not in (200, 201):
                raise SystemExit(f"{route}: {response.status_code} {response.text[:300]}")


def push(client: Any, auth: dict[str, str], username: str, n: int) -> None:
    """A first pull, a warm-up push, then `n` pushes of PUSH_VISITS new visits (bench/sync.py's phone's)."""
    import sync as bench_sync  # bench/sync.py

    pulled = client.get("/api/v1/sync/pull", params={"schema_version": 1, "last_pulled_at": "null"}, headers=auth)
    cursor = pulled.json()["timestamp"]
    people, items, catalog = bench_sync.push_inputs(os.environ["DATABASE_URL"], username)
    rng, now = random.Random(20261207), datetime.now(UTC)
    for _ in range(1 + n):
        changes, _ids = bench_sync.push_changes(rng, people, PUSH_VISITS, items, catalog, now)
        response = client.post("/api/v1/sync/push", params={"last_pulled_at": str(cursor)}, json=changes,
                               headers=auth)
        if response.status_code != 200 or response.json()["rejected"]:
            raise SystemExit(f"POST /sync/push: {response.status_code} {response.text[:300]}")


def count(tree: str, route: str, n: int) -> int:
    """Instructions of one child run of `n` requests with the code of `tree` (PYTHONPATH), on a fresh copy."""
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "city.db"
        for suffix in ("", "-wal"):  # the city as bench/cpu.py left it (nothing writes to it meanwhile)
            if (HERE / "out" / f"cpu.db{suffix}").exists():
                shutil.copyfile(HERE / "out" / f"cpu.db{suffix}", f"{db}{suffix}")
        out = Path(scratch) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (tree, str(HERE)) if p)}
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                               __file__, "--child", str(db), "--route", route, "--requests", str(n)],
                              env=env, cwd=scratch, capture_output=True, text=True, check=False)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"valgrind run failed ({done.returncode}): {done.stderr[-800:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", default=[], help="another checkout to compare (repeatable)")
    parser.add_argument("--route", choices=ROUTES, default="POST /visits")
    parser.add_argument("--requests", type=int, default=200, help="requests counted (the difference of two runs)")
    parser.add_argument("--small", type=int, default=10, help="requests of the shorter run")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.route, args.requests)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not (HERE / "out" / "cpu.db").exists():
        raise SystemExit("no bench/out/cpu.db: run bench/cpu.py first")
    trees = [str(ROOT)] + [str(Path(t).resolve()) for t in args.tree]
    print(f"{args.route}: instructions per request, {args.requests} requests after {args.small} "
          "(callgrind, in-process, client included)", flush=True)
    for tree in trees:
        small = count(tree, args.route, args.small)
        large = count(tree, args.route, args.small + args.requests)
        print(f"  {tree:<40} {(large - small) / args.requests / 1e6:8.3f} M", flush=True)


if __name__ == "__main__":
    main()
