"""The sync window's cap on a worker's first pull (issue 13; docs/sync.md "The sync window").

    .venv/bin/python bench/window.py --db sqlite          # bench/out/window.db, rebuilt every run
    .venv/bin/python bench/window.py --db postgres        # own database bench_window on
                                                          # postgresql+psycopg://postgres@127.0.0.1:5432

Builds the database of bench/sync.py (ten communities of `--residents` residents in one district, a worker for
the first with `--visits` visits spread over the last twelve months, every synced row in the sync log), then,
for each value of SYNC_VISIT_MONTHS in `--months` (13: the fixed window before issue 13, which holds all twelve
months; then the default, 4), starts the real app under uvicorn with that setting and times `--first-pulls`
first pulls (`last_pulled_at=null`, `Accept-Encoding: gzip`, after one warm-up): the median time to the last
byte, the compressed and the raw JSON size, and the records per table. No assertions on time; the load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess

from search import bench_url, drop, free_port, start_server, summary  # bench/search.py
from sync import Phone, body_of, build  # bench/sync.py

from app.core.config import ROOT


def first_pulls(url: str, username: str, password: str, months: int, runs: int, schema_version: int = 1) -> str:
    os.environ["SYNC_VISIT_MONTHS"] = str(months)  # the server process reads it at start
    port = free_port()
    server = start_server(url, port)
    try:
        phone = Phone(port, username, password, f"bench-{secrets.token_hex(4)}", schema_version)
        phone.pull(None)  # warm-up
        pulls = [phone.pull(None) for _ in range(runs)]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    body, raw_size = body_of(pulls[-1][2])
    counts = {t: len(c["updated"]) for t, c in body["changes"].items()}
    med, _ = summary([p[0] for p in pulls])
    return (f"SYNC_VISIT_MONTHS={months}: first pull median {med:.0f} ms (min {min(p[0] for p in pulls):.0f}, max "
            f"{max(p[0] for p in pulls):.0f}) over {runs} runs; {len(pulls[-1][2]) / 1e6:.2f} MB gzip, "
            f"{raw_size / 1e6:.1f} MB raw JSON\n    records: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--residents", type=int, default=5_000, help="residents per community (ten communities)")
    parser.add_argument("--visits", type=int, default=60_000, help="visits in the worker's community")
    parser.add_argument("--months", type=int, nargs="+", default=[13, 4], help="SYNC_VISIT_MONTHS values to run")
    parser.add_argument("--first-pulls", type=int, default=5, help="timed first pulls per value (after a warm-up)")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    url = bench_url(args.db, "window")
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    username, password = build(args.db, url, args.residents, args.visits, args.seed)
    print(f"{args.db}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    for months in args.months:
        print(first_pulls(url, username, password, months, args.first_pulls), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.db == "postgres":
        drop(args.db, url)


if __name__ == "__main__":
    main()
