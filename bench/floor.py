"""The request path against the framework's floor (issue 12): every route's req/s next to a bare FastAPI app.

    .venv/bin/python bench/floor.py                     # SQLite: bench/out/floor.db, rebuilt every run
    .venv/bin/python bench/floor.py --pg                # own database bench_floor on
                                                        # postgresql+psycopg://postgres@127.0.0.1:5432

In one run on one machine, against one database:
1. builds the demo city (`--size` residents; bench/city.py) with a worker account of the bench's own;
2. the floor: bench/floor_app.py under the same uvicorn (one worker) — a resident read by primary key and one
   durable single-row insert, through the bare driver;
3. the real app, `migrant serve` (one worker; on PostgreSQL also `--workers 2`), on the same database;
4. every figure driven by wrk (bench/wrk.py, bench/wrk.lua) at `--connections` for `--seconds`, bounded (the
   wrk process is killed past its time); after each, the wait until the server answers /healthz again (a
   stall) and the unhandled errors it logged meanwhile (wrk counts a timeout only for an answer that came
   late: a request still stuck when the run ends, which later fails with a 500, shows only there);
   a last empty-pull figure at `--stress` connections (the issue's "no 5xx, no stall" run);
5. prints req/s (2xx only) side by side, each ratio to the floor read (POST /visits to the floor insert) with
   the issue's target, 5xx and other non-2xx answers, timeouts, stalls and logged errors; then a push of
   `--push-visits` visits against the raw insert of the same rows (bench/sync.py's `push_round`);
6. with `--paired N`: the floor and the app (one worker) run side by side, and each route is measured N times
   right after its floor figure (the floor read, or the floor insert for POST /visits); the median of the N
   ratios is printed with each one. The host's speed drifts by half within minutes on a shared machine, and a
   ratio to a floor measured minutes earlier drifts with it; a ratio to the figure just before it does not.
No assertions on time; the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sync  # bench/sync.py
import visits  # bench/visits.py
import wrk
from city import City, Server, app_server, build, floor_server, healthy, load_average, login
from search import bench_url, drop, free_port
from sqlalchemy import select
from sqlmodel import col

from app.core.db import create_db_engine
from app.people.models import Resident, ResidentStatus

V1 = "/api/v1"
DEVICE = "bench-phone-0001"
# Route → (target ratio, denominator figure). The targets; /healthz has none.
TARGETS: dict[str, tuple[float | None, str]] = {
    "GET /healthz": (None, "floor read"),
    "GET /auth/me": (0.5, "floor read"),
    "empty pull": (0.5, "floor read"),
    "GET /me/tasks": (0.4, "floor read"),
    "GET /residents/{id}": (0.35, "floor read"),
    "GET /residents?id_number=": (0.35, "floor read"),
    "POST /visits": (0.3, "floor insert"),
}


@dataclass
class Inputs:
    city: City
    ids: list[str]  # residents of the worker's community
    id_numbers: list[str]
    visit_bodies: list[str]  # JSON with "{{ID}}" for the client id


def inputs(city: City, seed: int, n: int = 200) -> Inputs:
    worker = city.workers[0]
    engine = create_db_engine(city.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(col(Resident.id), col(Resident.id_number))
                                .where(col(Resident.community_id) == worker.division_id,
                                       col(Resident.status) == ResidentStatus.registered.value)
                                .order_by(col(Resident.id)).limit(n)).all()
    finally:
        engine.dispose()
    rng = random.Random(seed)
    people = visits.residents(city.url, worker.username)  # (id, key person, lat, lng), bench/visits.py
    now = datetime.now(UTC)
    bodies = []
    for i in range(n):
        body = visits.body(rng, people[i % len(people)], now)
        body["id"] = "{{ID}}"
        bodies.append(json.dumps(body, ensure_ascii=False))
    return Inputs(city, [r[0] for r in rows], [r[1] for r in rows], bodies)


def latest_cursor(base: str, headers: dict[str, str]) -> int:
    """The device's cursor once its scope is acknowledged and nothing else is changing: its pulls from then on
    are quiet and empty (requests a previous figure left queued may still be writing: pull until empty)."""
    params: dict[str, Any] = {"schema_version": 1, "last_pulled_at": "null"}
    for attempt in range(20):
        response = httpx.get(base + V1 + "/sync/pull", params=params, headers={**headers, "X-Device-Id": DEVICE},
                             timeout=120)
        response.raise_for_status()
        pulled = response.json()
        params["last_pulled_at"] = pulled["timestamp"]
        if attempt >= 3 and not any(c["updated"] or c["deleted"] for c in pulled["changes"].values()):
            return int(pulled["timestamp"])
        time.sleep(0.5 if attempt >= 3 else 0)
    raise SystemExit("pulls at the latest cursor did not come back empty")


def floor_specs(data: Inputs) -> list[Callable[[], wrk.Spec]]:
    json_headers = {"Content-Type": "application/json"}
    return [lambda: wrk.Spec("floor read", "GET", [f"/floor/residents/{i}" for i in data.ids]),
            lambda: wrk.Spec("floor insert", "POST", ["/floor/inserts"], json_headers, data.visit_bodies)]


def app_specs(data: Inputs, base: str, stress: int) -> list[Callable[[], wrk.Spec]]:
    """Built when their turn comes: a fresh token each, the pull's cursor as it is then."""
    worker = data.city.workers[0]

    def auth() -> dict[str, str]:
        return {"Authorization": "Bearer " + login(base, worker.username, data.city.password)["access_token"]}

    def pull(connections: int = 0) -> wrk.Spec:
        headers = auth()
        cursor = latest_cursor(base, headers)
        return wrk.Spec(f"empty pull, {connections} conns" if connections else "empty pull", "GET",
                        [f"{V1}/sync/pull?schema_version=1&last_pulled_at={cursor}"],
                        {**headers, "X-Device-Id": DEVICE}, connections=connections)

    return [
        lambda: wrk.Spec("GET /healthz", "GET", ["/healthz"]),
        lambda: wrk.Spec("GET /auth/me", "GET", [V1 + "/auth/me"], auth()),
        pull,
        lambda: wrk.Spec("GET /me/tasks", "GET", [V1 + "/me/tasks"], auth()),
        lambda: wrk.Spec("GET /residents/{id}", "GET", [f"{V1}/residents/{i}" for i in data.ids], auth()),
        lambda: wrk.Spec("GET /residents?id_number=", "GET", [f"{V1}/residents?id_number={n}" for n in data.id_numbers],
                         auth()),
        lambda: wrk.Spec("POST /visits", "POST", [V1 + "/visits"], {**auth(), "Content-Type": "application/json"},
                         data.visit_bodies),
        *([lambda: pull(stress)] if stress else []),  # the "done when": no 5xx, no stall
    ]


def drive(args: argparse.Namespace, tool: str, server: Server, specs: list[Callable[[], wrk.Spec]],
          notes: list[str]) -> dict[str, wrk.Figure]:
    """Each figure in turn; after each, how long the server took to answer /healthz again (a stall) and the
    errors it logged meanwhile (requests still queued when wrk stopped end there, 500s included)."""
    figures: dict[str, wrk.Figure] = {}
    base = server.base
    offset, _ = server.errors_logged(0)
    for make in specs:
        try:
            spec = make()
        except (httpx.HTTPError, SystemExit) as exc:  # signing in or the pull's cursor failed
            notes.append(f"{base}: a figure could not be prepared ({exc!r}); skipped")
            continue
        figure = wrk.run(tool, base, spec, connections=args.connections, threads=args.threads, seconds=args.seconds,
                         timeout=args.timeout, prefix=secrets.token_hex(4))
        figures[spec.label] = figure
        started = time.monotonic()
        figure.recovery_s = time.monotonic() - started if healthy(base, args.settle) else None
        offset, figure.logged = server.errors_logged(offset)
        print(f"  {spec.label:<28}{figure.rps:>9,.0f} req/s  {describe(figure, args.timeout)}", flush=True)
        if figure.recovery_s is None:
            notes.append(f"{spec.label}: the server did not answer /healthz within {args.settle} s afterwards; "
                         "the remaining figures of this server were skipped")
            break
    return figures


def describe(f: wrk.Figure, timeout: int) -> str:
    if f.failure:
        return f.failure
    if not f.requests:
        return "NO ANSWER during the whole run" + (f"; STALL {f.recovery_s:.0f} s" if f.recovery_s else "")
    parts = [f"p50 {f.p50_ms:.1f} ms, p99 {f.p99_ms:.1f} ms, max {f.max_ms:.0f} ms"]
    other = {s: n for s, n in sorted(f.statuses.items()) if not 200 <= s < 300}
    if other:
        parts.append("non-2xx " + ", ".join(f"{s}×{n}" for s, n in other.items()))
    if f.timeouts:
        parts.append(f"{f.timeouts} timeouts (> {timeout} s)")
    if f.socket_errors:
        parts.append(f"{f.socket_errors} socket errors")
    if f.logged:
        parts.append("server log: " + ", ".join(f"{n} unhandled {k}" for k, n in f.logged.items()))
    if f.recovery_s is None or f.recovery_s > 1:
        parts.append("STALL: /healthz " + ("never answered again" if f.recovery_s is None else
                                           f"answered again only {f.recovery_s:.0f} s after the run"))
    return "; ".join(parts)


def push_vs_raw(args: argparse.Namespace, city: City, base: str, say: Callable[[str], None]) -> None:
    """bench/sync.py's push rounds (a push of --push-visits visits against the raw insert of the same rows)."""
    worker = city.workers[0]
    port = int(base.rsplit(":", 1)[1])
    try:
        phone = sync.Phone(port, worker.username, city.password, f"bench-push-{secrets.token_hex(4)}")
        cursor = int(sync.body_of(phone.pull(None)[2])[0]["timestamp"])
        for _ in range(3):  # acknowledge the scope
            cursor = int(sync.body_of(phone.pull(cursor)[2])[0]["timestamp"])
        ns = argparse.Namespace(pushes=args.pushes, push_visits=args.push_visits, seed=args.seed)
        sync.push_round(ns, city.url, worker.username, phone, cursor, say)
    except (SystemExit, httpx.HTTPError) as exc:
        say(f"(a) push: failed: {exc}")


def paired(args: argparse.Namespace, tool: str, url: str, data: Inputs) -> None:
    """Each route `--paired` times right after its floor figure, the floor and the app (one worker) up side by
    side (each idle while the other is driven); the median ratio and every ratio, in the order measured."""
    print(f"\n  paired ratios, {args.paired} rounds per route (each to a floor figure taken just before it); "
          f"load average {load_average()} at the start", flush=True)
    with floor_server(url, free_port()) as floor, app_server(url, free_port()) as app:
        read, insert = (make() for make in floor_specs(data))
        for make in app_specs(data, app.base, 0):
            spec = make()
            if spec.label not in TARGETS or (args.only and spec.label not in args.only.split(",")):
                continue
            target, base_name = TARGETS[spec.label]
            ratios: list[float] = []
            pairs: list[str] = []
            for _ in range(args.paired):
                figures = [wrk.run(tool, server.base, s, connections=args.connections, threads=args.threads,
                                   seconds=args.seconds, timeout=args.timeout, prefix=secrets.token_hex(4))
                           for server, s in ((floor, insert if base_name == "floor insert" else read), (app, spec))]
                if figures[1].server_errors or figures[1].timeouts or figures[1].failure:
                    print(f"    {spec.label}: {figures[1].server_errors} 5xx, {figures[1].timeouts} timeouts "
                          f"{figures[1].failure}", flush=True)
                ratios.append(figures[1].rps / figures[0].rps if figures[0].rps else 0.0)
                pairs.append(f"{figures[1].rps:,.0f}/{figures[0].rps:,.0f}")
            goal = f"target ≥ {target}" if target else "no target"
            print(f"  {spec.label:<28} median {statistics.median(ratios):5.2f}  ({goal}; "
                  + ", ".join(f"{r:.2f}" for r in ratios) + "; req/s route/floor " + ", ".join(pairs) + ")",
                  flush=True)


def report(db: str, figures: dict[str, dict[str, wrk.Figure]], args: argparse.Namespace) -> None:
    floor = figures.get("floor", {})
    servers = [k for k in figures if k.startswith("app")]
    head = "".join(f"{s:>12}{'ratio':>7}" for s in servers)
    print(f"\n{db}: req/s of 2xx answers, wrk -t{args.threads} -c{args.connections} -d{args.seconds}s "
          f"--timeout {args.timeout}s; load average {load_average()} at the end")
    print(f"  {'figure':<28}{head}{'  target':>8}  {'5xx':>5}{'non-2xx':>8}{'timeouts':>9}{'stall s':>8}{'log 5xx':>8}")
    for name in ("floor read", "floor insert"):
        f = floor.get(name)
        if f:
            print(f"  {name:<28}{f.rps:>12,.0f}{'':>7}{'':>8}  {f.server_errors:>5}{f.non_2xx:>8}{f.timeouts:>9}")
    if "floor read" in figures.get("floor end", {}):
        print(f"  {'floor read (again, at end)':<28}{figures['floor end']['floor read'].rps:>12,.0f}")
    rows = {**TARGETS, f"empty pull, {args.stress} conns": (None, "floor read")} if args.stress else TARGETS
    for name, (target, base_name) in rows.items():
        cells, bad, stall, logged = "", [0, 0, 0], 0.0, 0
        for server in servers:
            f = figures[server].get(name)
            denominator = floor.get(base_name)
            if f is None:
                cells += f"{'—':>12}{'':>7}"
                continue
            ratio = f.rps / denominator.rps if denominator and denominator.rps else 0.0
            cells += f"{f.rps:>12,.0f}{ratio:>7.2f}"
            bad = [bad[0] + f.server_errors, bad[1] + f.non_2xx, bad[2] + f.timeouts]
            stall = max(stall, float("inf") if f.recovery_s is None else f.recovery_s)
            logged += sum(f.logged.values())
        goal = f"≥ {target}" if target else ""
        print(f"  {name:<28}{cells}{goal:>8}  {bad[0]:>5}{bad[1]:>8}{bad[2]:>9}{stall:>8.0f}{logged:>8}")
    if len(servers) == 2:
        scale = {n: figures[servers[1]][n].rps / figures[servers[0]][n].rps for n in TARGETS
                 if n in figures[servers[0]] and n in figures[servers[1]] and figures[servers[0]][n].rps}
        print("  2 workers / 1 worker: " + ", ".join(f"{n} {s:.2f}" for n, s in scale.items()))
    print("  ratio = the route's req/s / the floor read's (POST /visits: / the floor insert's); 5xx, non-2xx and "
          "timeouts summed over the servers;\n  stall s: the longest wait, after a run, for /healthz to answer; "
          "log 5xx: unhandled errors the server logged meanwhile (500s of requests still queued when wrk stopped)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (own database bench_floor) instead of SQLite")
    parser.add_argument("--size", type=int, default=20_000, help="residents in the demo city")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per figure")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=4,
                        help="wrk's per-request timeout (s); keep it below --seconds so a stall is counted")
    parser.add_argument("--stress", type=int, default=64,
                        help="connections of a last empty-pull figure (the issue's done-when run); 0: none")
    parser.add_argument("--settle", type=int, default=90, help="how long a stalled server may take to answer again")
    parser.add_argument("--pushes", type=int, default=3, help="timed pushes (bench/sync.py); 0: none")
    parser.add_argument("--push-visits", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--paired", type=int, default=0, metavar="N",
                        help="afterwards, N ratios per route, each to a floor figure taken just before it (median)")
    parser.add_argument("--paired-only", action="store_true", help="only the paired ratios (needs --paired N)")
    parser.add_argument("--only", default="", help="paired ratios of these routes only (comma-separated labels, "
                        "as printed: 'POST /visits,GET /auth/me')")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install wrk when it is missing")
    args = parser.parse_args()
    if args.paired_only and not args.paired:
        parser.error("--paired-only needs --paired N")
    tool = wrk.ensure_wrk(install=not args.no_install)
    db = "postgres" if args.pg else "sqlite"
    url = bench_url(db, "floor")
    city = build(db, url, size=args.size, seed=args.seed, workers=1, supervisors=0)
    data = inputs(city, args.seed)
    create_scratch(url)
    figures: dict[str, dict[str, wrk.Figure]] = {}
    notes: list[str] = []
    print(f"\n{db}: load average {load_average()} at the start", flush=True)
    try:
        if args.paired_only:
            paired(args, tool, url, data)
            return
        with floor_server(url, free_port()) as server:
            figures["floor"] = drive(args, tool, server, floor_specs(data), notes)
        for n in (1, 2) if args.pg else (1,):
            with app_server(url, free_port(), workers=n) as server:
                label = f"app {n}w"
                print(f"  -- migrant serve --workers {n}", flush=True)
                figures[label] = drive(args, tool, server, app_specs(data, server.base, args.stress), notes)
                if n == 1 and args.pushes:
                    push_vs_raw(args, city, server.base, lambda line: notes.append(line.strip()))
        with floor_server(url, free_port()) as server:
            figures["floor end"] = drive(args, tool, server, floor_specs(data)[:1], notes)
        if args.paired:
            paired(args, tool, url, data)
    finally:
        if figures:
            report(db, figures, args)
        for note in notes:
            print("  " + note)
        if db == "postgres" and not args.keep:
            drop(db, url)


def create_scratch(url: str) -> None:
    from floor_app import SCRATCH  # bench/floor_app.py
    from sqlalchemy import text

    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(SCRATCH))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
