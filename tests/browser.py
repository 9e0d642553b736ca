"""Headless Chromium driven over the DevTools protocol (on a pipe, no extra packages), for the tests that open a
page: the API docs offline, the audit board. Skipped when Chromium is not installed, unless REQUIRE_BROWSER=1."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

DEADLINE = 120.0  # seconds; a guard against hanging, not a timing assertion
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--mute-audio",
]


def chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    path = chromium()
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but Chromium is not installed: run `make browser-deps` (as root)")
        pytest.skip("Chromium is not installed (make browser-deps); set REQUIRE_BROWSER=1 to make this a failure")
    return path


class DevTools:
    """A minimal DevTools-protocol client over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-framed)."""

    def __init__(self, binary: str, args: list[str], log_path: Path) -> None:
        to_browser_r, to_browser_w = _pipe_high()
        from_browser_r, from_browser_w = _pipe_high()

        def wire_pipes() -> None:  # in the child, before exec: only os.dup2, safe after fork
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(  # preexec_fn only calls os.dup2: safe after fork
            [binary, *args, "--remote-debugging-pipe"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            close_fds=False,  # our pipe ends are close-on-exec; only fds 3 and 4 (made by dup2) survive exec
            preexec_fn=wire_pipes,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = to_browser_w
        self._in = from_browser_r
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(raw))

    def _pump(self, timeout: float) -> bool:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            return True
        if message is None:
            raise RuntimeError(f"Chromium closed the DevTools pipe (exit {self.proc.poll()})")
        if "id" in message:
            self._responses[message["id"]] = message
        else:
            self.events.append(message)
        return True

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        message: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE
        while mid not in self._responses:
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self._pump(0.5)
        response = self._responses.pop(mid)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return dict(response.get("result", {}))

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result["result"].get("value")

    def drain(self) -> None:
        while not self._messages.empty():
            self._pump(0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.log.close()


def _pipe_high() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 or more and close-on-exec, so dup2 onto 3 and 4 cannot clobber them."""
    read, write = os.pipe()
    high = (fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10))
    os.close(read)
    os.close(write)
    return high
