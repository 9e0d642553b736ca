"""Real servers for tests: the app under uvicorn in a subprocess, and a private PostgreSQL instance.

Everything here is bounded in time and killed on the way out: a server runs in its own process group (SIGKILL
reaches uvicorn and anything it started), start-up waits for /healthz at most `START_S` seconds, and the
fixtures in conftest.py stop whatever a test left running, whether it passed or not.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_S = 60
# Longer than the pool's 30 s checkout timeout: a request stuck waiting for a connection comes back as the
# server's answer (today a 500), not as a client timeout; still bounded, so a stall fails the test.
CLIENT_TIMEOUT_S = 75.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m uvicorn app.main:app` (one worker) on loopback against `url`."""

    def __init__(self, url: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.url, self.port = url, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **(env or {})}
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Server:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if not self.wait_healthy(START_S):
            self.kill()
            raise AssertionError(f"the server did not start within {START_S} s:\n{self.log_tail()}")
        return self

    def wait_healthy(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash: nothing runs on the way out)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def logged_errors(self) -> str:
        """The unhandled errors the app logged ("unhandled error <Kind> on <route>"), counted."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        found = Counter(re.sub(r"/[0-9a-f]{32}", "/{id}", line.split(" unhandled error ", 1)[1].split(" (request")[0])
                        for line in lines if " unhandled error " in line)
        return "; ".join(f"{n}× {what}" for what, n in found.most_common()) or "none"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class Outcome:
    """One request of a burst: its status (None: no answer) and, when it failed, why."""

    status: int | None
    detail: str


async def _burst(requests: Iterable[tuple[str, str, dict[str, Any]]], base: str) -> list[Outcome]:
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT_S,
                                 limits=httpx.Limits(max_connections=None, max_keepalive_connections=None)) as client:
        async def one(method: str, path: str, kwargs: dict[str, Any]) -> Outcome:
            try:
                response = await client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                return Outcome(None, f"{method} {path}: no answer ({type(exc).__name__})")
            return Outcome(response.status_code, f"{method} {path}: {response.status_code} {response.text[:200]}")

        return list(await asyncio.gather(*(one(m, p, k) for m, p, k in requests)))


def burst(base: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Outcome]:
    """Every request at once (one connection each); returns when all have an answer or timed out."""
    return asyncio.run(_burst(requests, base))


# --- a private PostgreSQL instance -----------------------------------------------------------------------------

def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL instance of the test's own, in a temporary directory, on a free port: stopping it touches
    nobody else. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (runuser)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="migrant-private-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.as_postgres = os.geteuid() == 0

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.dir)

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                         "--locale=C.UTF-8")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        done = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-500:]} {self.log_tail()}")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: as a crash or a pulled plug (no shutdown checkpoint; recovery on the next start)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
