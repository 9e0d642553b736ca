"""wrk (Debian's package `wrk`) for bench/floor.py: one figure = one bounded wrk run with bench/wrk.lua.

A figure is a method, the paths to rotate over, headers and optional body templates ("{{ID}}" → a client id
unique to the request). Every run is bounded: wrk's own `--timeout` turns a stalled request into a counted
timeout, and the process itself is killed if it outlives its duration by a margin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.core.config import ROOT

SCRIPT = ROOT / "bench" / "wrk.lua"
INSTALL = "apt-get install -y wrk   (Debian's package; as root: apt-get update first)"


def ensure_wrk(install: bool) -> str:
    """wrk's path; installed with apt-get when missing and allowed (root), else a message saying how."""
    found = shutil.which("wrk")
    if found:
        return found
    if install and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False, timeout=300)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(f"wrk is not installed: {INSTALL}")


@dataclass(frozen=True)
class Spec:
    label: str
    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)
    connections: int = 0  # 0: the run's default


@dataclass
class Figure:
    label: str
    requests: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    socket_errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    failure: str = ""  # wrk itself failed or was killed
    recovery_s: float | None = 0.0  # after the run, until the server answered /healthz again (None: never)
    logged: dict[str, int] = field(default_factory=dict)  # server errors in its log meanwhile, by kind

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)


def _lua_string(text: str) -> str:
    out = []
    for byte in text.encode():
        out.append(chr(byte) if 32 <= byte < 127 and byte not in (34, 92) else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _lua_spec(spec: Spec, prefix: str) -> str:
    def items(values: list[str]) -> str:
        return "{" + ", ".join(_lua_string(v) for v in values) + "}"

    headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in spec.headers.items()) + "}"
    return (f"return {{method = {_lua_string(spec.method)}, paths = {items(spec.paths)}, headers = {headers}, "
            f"bodies = {items(spec.bodies)}, prefix = {_lua_string(prefix)}}}\n")


def run(wrk: str, base: str, spec: Spec, *, connections: int, threads: int, seconds: int, timeout: int,
        prefix: str) -> Figure:
    """One bounded wrk run; the figure counts 2xx only in req/s and lists every status and timeout."""
    figure = Figure(spec.label)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_lua_spec(spec, prefix))
    try:
        argv = [wrk, f"-t{threads}", f"-c{spec.connections or connections}", f"-d{seconds}s", f"--timeout={timeout}s",
                "-s", str(SCRIPT), base]
        done = subprocess.run(argv, env={**os.environ, "WRK_SPEC": fh.name}, capture_output=True, text=True,
                              timeout=seconds + timeout + 30, check=False)
    except subprocess.TimeoutExpired:
        figure.failure = "wrk did not finish in time (killed)"
        return figure
    finally:
        Path(fh.name).unlink(missing_ok=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if line is None:
        figure.failure = f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}"
        return figure
    data = json.loads(line.removeprefix("WRK_RESULT "))
    figure.requests, figure.seconds = data["requests"], data["duration_us"] / 1e6
    figure.statuses = {int(k): v for k, v in data["statuses"].items()}
    figure.timeouts = data["timeout"]
    figure.socket_errors = data["connect"] + data["read"] + data["write"]
    figure.p50_ms, figure.p99_ms, figure.max_ms = data["p50_us"] / 1e3, data["p99_us"] / 1e3, data["max_us"] / 1e3
    return figure
