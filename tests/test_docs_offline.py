"""The interactive API docs (/docs) work on an intranet with no internet at all.

The real app runs under uvicorn in its own process; headless Chromium (Debian's package) opens /docs with
the network cut: every host name but ours resolves to nothing, and everything that is not our host goes
to a proxy that does not exist. Chromium is driven over the DevTools protocol (on a pipe, no extra
packages), so the test sees every request the page makes and the DOM that Swagger UI renders: all our
operations must be listed, and no request may leave our origin.

We serve under a made-up host name rather than 127.0.0.1 on purpose: Swagger UI behaves differently on
localhost (its online validator badge, which sends the spec's URL to validator.swagger.io, is skipped for
localhost), and users reach the docs by a host name.

Skipped when Chromium is not installed, unless REQUIRE_BROWSER=1 (CI sets it), where it fails instead.
Install it with `make browser-deps`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import ROOT

HTTP_TIMEOUT = 60.0  # a loaded CI machine can take a while to build the OpenAPI document the first time
HOST = "docs.intranet.test"  # .test is reserved (RFC 2606): no resolver anywhere knows it
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


# --- the app, served for real ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """uvicorn app.main:app on a loopback port chosen by the kernel (the bound socket is handed over)."""
    tmp = tmp_path_factory.mktemp("docs-server")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    # The test environment (APP_ENV=test, test keys), plus a database of its own: /docs never touches it.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'docs.db'}", "PYTHONUNBUFFERED": "1"}
    log = (tmp / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--fd", str(sock.fileno()), "--log-level", "warning"],
        cwd=ROOT, env=env, pass_fds=[sock.fileno()], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    sock.close()
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited with {proc.returncode}:\n{(tmp / 'uvicorn.log').read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=HTTP_TIMEOUT).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer:\n{(tmp / 'uvicorn.log').read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_docs_page_references_only_our_own_assets(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    page = httpx.get(f"{base}/docs", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], f"external URLs in /docs: {urls}"
    assert not re.search(r"https?://(?!127\.0\.0\.1)", page.text), "the page names an outside host"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        response = httpx.get(f"{base}/docs-static/{asset}", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset


# --- Chromium over the DevTools protocol -------------------------------------------------------------

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


RENDERED_OPERATIONS = """
JSON.stringify([...document.querySelectorAll('.opblock')].map(el => [
  (el.querySelector('.opblock-summary-method') || {}).textContent || '',
  ((el.querySelector('.opblock-summary-path') || {}).dataset || {}).path || '',
]))
"""


def test_docs_render_with_the_network_cut(server: int, tmp_path: Path) -> None:
    binary = require_chromium()
    spec = httpx.get(f"http://127.0.0.1:{server}/openapi.json", timeout=HTTP_TIMEOUT).json()
    expected = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ("POST", "/api/v1/auth/login") in expected

    origin = f"http://{HOST}:{server}"
    args = [
        *BROWSER_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        # No name resolves except ours, which is our loopback server…
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
        # …and anything else, IP addresses included, goes to a proxy on the discard port, where nothing listens.
        "--proxy-server=http://127.0.0.1:9",
        f"--proxy-bypass-list={HOST}",
        "about:blank",
    ]
    browser = DevTools(binary, args, tmp_path / "chromium.log")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": f"{origin}/docs"}, session)

        rendered: set[tuple[str, str]] = set()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            rendered = {(m.upper(), p) for m, p in json.loads(browser.evaluate(session, RENDERED_OPERATIONS) or "[]")}
            if rendered >= expected:
                break
            time.sleep(0.25)
        # Let anything the page does after rendering (images, badges, fonts) show up in the log too.
        time.sleep(1.0)
        browser.drain()
        title = browser.evaluate(session, "document.querySelector('.info .title')?.textContent || ''")
        html = browser.evaluate(session, "document.documentElement.outerHTML")
    finally:
        browser.close()

    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    failed = [e["params"] for e in browser.events if e.get("method") == "Network.loadingFailed"]
    errors = [e["params"] for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]

    outside = [u for u in requests if not u.startswith(origin + "/") and not u.startswith(("data:", "blob:"))]
    assert not outside, f"the docs page reached outside the server: {outside}"
    assert f"{origin}/openapi.json" in requests
    assert f"{origin}/docs-static/swagger-ui-bundle.js" in requests
    assert not failed, f"requests failed: {failed}"
    assert not errors, f"JavaScript errors: {errors}"
    assert "Migrant Services API" in str(title)
    assert ("POST", "/api/v1/auth/login") in rendered, html[:2000] if html else "empty page"
    missing = expected - rendered
    assert not missing, f"operations in openapi.json but not on the page: {sorted(missing)}"


def test_chromium_really_is_offline(server: int, tmp_path: Path) -> None:
    """The same browser settings cannot load a page from anywhere else: the cut is real."""
    binary = require_chromium()
    args = [
        *BROWSER_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        f"--proxy-bypass-list={HOST}",
        "about:blank",
    ]
    browser = DevTools(binary, args, tmp_path / "chromium.log")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        outcomes = {}
        for url in ("https://example.com/", "http://93.184.215.14/", f"http://127.0.0.1:{server}/healthz",
                    f"http://{HOST}:{server}/healthz"):
            result = browser.call("Page.navigate", {"url": url}, session)
            outcomes[url] = result.get("errorText", "ok")
    finally:
        browser.close()
    assert outcomes[f"http://{HOST}:{server}/healthz"] == "ok"
    for url in ("https://example.com/", "http://93.184.215.14/", f"http://127.0.0.1:{server}/healthz"):
        assert outcomes[url] != "ok", outcomes
