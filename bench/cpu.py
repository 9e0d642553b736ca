"""CPU time of the server process per request, route by route (issue 12, on a shared machine).

    .venv/bin/python bench/cpu.py                  # SQLite: builds bench/out/cpu.db (and cpu.json) once
    .venv/bin/python bench/cpu.py --reuse          # the same city again (another build of the code, say)
    .venv/bin/python bench/cpu.py --pg             # own database bench_cpu on the local PostgreSQL

Requests per second swing ±30 % from run to run while other jobs share the cores; the CPU the server process
spends on a request does not (much). For each route of bench/floor.py (POST /visits only when `--only` names
it: it adds visits to the city): a warm-up, then wrk at `--connections` for `--seconds`, with the process's user +
system time (/proc/<pid>/stat) read before and after; CPU ms per request = that time / the requests answered
("sys": the kernel's part of it).
With `--pg`, the PostgreSQL processes' CPU per request is printed too ("db"): a round trip saved shows there.
The floor app (bench/floor_app.py) is measured the same way (its insert, like POST /visits, when `--only` names
it). Run the same city against two builds of the code (`PYTHONPATH=<other checkout>`) to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import wrk
from city import Account, City, app_server, build, floor_server, load_average
from floor import Inputs, app_specs, create_scratch, floor_specs, inputs
from search import bench_url, free_port

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system time of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime


def database_cpu_seconds() -> float:
    """User + system time of every PostgreSQL process on the machine (its backends answer the server's
    statements: on PostgreSQL, a round trip less is CPU saved there, which the server's own time does not show).
    Other clients of the same PostgreSQL count too: compare runs, not absolute figures."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            total += cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def measure(args: argparse.Namespace, tool: str, pid: int, base: str,
            make: wrk.Spec) -> tuple[float, float, float, int, float]:
    wrk.run(tool, base, make, connections=args.connections, threads=2, seconds=1, timeout=4, prefix="w")
    spy = None
    if args.spy:
        out = HERE / "out" / f"spy-{make.label.replace('/', '_').replace(' ', '_').replace('?', '')}.txt"
        spy = subprocess.Popen([args.spy, "record", "-r", "250", "--format", "raw", "-o", str(out), "--pid", str(pid),
                                "-d", str(args.seconds), "--nonblocking"] + (["--gil"] if args.gil else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before, db_before = cpu_split(pid), database_cpu_seconds() if args.pg else 0.0
    figure = wrk.run(tool, base, make, connections=args.connections, threads=2, seconds=args.seconds, timeout=4,
                     prefix=secrets.token_hex(4))
    after = cpu_split(pid)
    spent, system = sum(after) - sum(before), after[1] - before[1]
    db_spent = database_cpu_seconds() - db_before if args.pg else 0.0
    if spy is not None:
        spy.wait(timeout=60)
    bad = figure.non_2xx + figure.timeouts
    if bad or figure.failure:
        print(f"  {make.label}: {bad} non-2xx/timeouts {figure.statuses} {figure.failure}", flush=True)
    answered = max(figure.requests, 1)
    return spent * 1000 / answered, system * 1000 / answered, db_spent * 1000 / answered, figure.requests, figure.rps


def city_of(args: argparse.Namespace) -> City:
    db = "postgres" if args.pg else "sqlite"
    url = f"sqlite:///{HERE / 'out' / 'cpu.db'}" if db == "sqlite" else bench_url(db, "cpu")
    saved = HERE / "out" / f"cpu-{db}.json"
    if args.reuse and saved.exists():
        data = json.loads(saved.read_text())
        return City(db, url, data["password"], [Account(**a) for a in data["workers"]], [], data["residents"])
    city = build(db, url, size=args.size, seed=args.seed, workers=1, supervisors=0)
    create_scratch(url)
    saved.write_text(json.dumps({"password": city.password, "residents": city.residents,
                                 "workers": [asdict(a) for a in city.workers]}))
    return city


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="the city of an earlier run (bench/out/cpu-<db>.json)")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="measurements per route (each is printed)")
    parser.add_argument("--only", default="", help="comma-separated labels (substring match)")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--spy", default="", help="py-spy's path: profile each measured run (raw, bench/out/spy-*)")
    parser.add_argument("--gil", action="store_true", help="with --spy: sample only the thread holding the GIL "
                        "(where the CPU goes; without it, threads waiting for the GIL inside C calls count as busy)")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    tool = wrk.ensure_wrk(install=False)
    city = city_of(args)
    data: Inputs = inputs(city, args.seed)
    wanted = [w for w in args.only.split(",") if w]
    print(f"code: {sys.modules['app'].__path__[0]}; load average {load_average()} at the start", flush=True)
    servers = [("app", app_server, app_specs)] + ([] if args.no_floor else [("floor", floor_server, None)])
    for name, start, _ in servers:
        with start(city.url, free_port()) as server:
            assert server.process is not None
            specs = floor_specs(data) if name == "floor" else app_specs(data, server.base, 0)
            for make in specs:
                spec = make()
                if (spec.method != "GET" and not wanted) or (wanted and not any(w in spec.label for w in wanted)):
                    continue
                cells = [measure(args, tool, server.process.pid, server.base, spec) for _ in range(args.rounds)]
                print(f"  {spec.label:<28}" + "  ".join(
                    f"{ms:6.2f} ms (sys {sys_ms:4.2f})" + (f" + db {db_ms:4.2f} ms" if args.pg else "")
                    + f" ({n:>5} req, {rps:5.0f}/s)" for ms, sys_ms, db_ms, n, rps in cells)
                      + f"   load {load_average()}", flush=True)


if __name__ == "__main__":
    main()
