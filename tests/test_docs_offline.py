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

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import ROOT
from tests.browser import BROWSER_FLAGS, DEADLINE, DevTools, require_chromium

HTTP_TIMEOUT = 60.0  # a loaded CI machine can take a while to build the OpenAPI document the first time
HOST = "docs.intranet.test"  # .test is reserved (RFC 2606): no resolver anywhere knows it
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
