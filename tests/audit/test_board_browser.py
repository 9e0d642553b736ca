"""The supervisor board in headless Chromium with the network cut: it signs in, draws the three pictures from
this server alone, and a screenshot shows them (the flagged point in red).

The real app runs under uvicorn on the test's own database; Chromium is driven over the DevTools protocol as in
tests/test_docs_offline.py (every other host resolves to nothing, everything else goes to a dead proxy).
Skipped without Chromium unless REQUIRE_BROWSER=1 (`make browser-deps` installs it).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine

from app.core.config import ROOT
from tests.audit.helpers import DAY, at, distinct_homes, north, visit
from tests.browser import BROWSER_FLAGS, DEADLINE, DevTools, require_chromium
from tests.conftest import PASSWORD, Api, World
from tests.factories import post_visit

HOST = "board.intranet.test"


@contextlib.contextmanager
def served(url: str, tmp: Path) -> Iterator[int]:
    """uvicorn app.main:app on the test's database, on a port the kernel chose."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    log = (tmp / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--fd", str(sock.fileno()), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}, pass_fds=[sock.fileno()],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    sock.close()
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited:\n{(tmp / 'uvicorn.log').read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("uvicorn did not answer")
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


def wait_for(browser: DevTools, session: str, expression: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = browser.evaluate(session, expression)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never true: {expression}\n{browser.evaluate(session, 'document.body.innerText')}")


def test_board_shows_the_pictures_offline(api: Api, engine: Engine, world: World, tmp_path: Path) -> None:
    binary = require_chromium()
    p = distinct_homes(engine, world, 2)
    post_visit(api, visit(p[0], at(9)))
    flagged = visit(p[1], at(10), lat=north(p[1]["lat"], 30))
    flagged["checkin"]["mock_location"] = True
    post_visit(api, flagged)
    c1 = world.community("c1")
    with served(engine.url.render_as_string(hide_password=False), tmp_path) as port:
        origin = f"http://{HOST}:{port}"
        page = httpx.get(f"http://127.0.0.1:{port}/board", timeout=30)
        assert "default-src 'none'" in page.headers["content-security-policy"]
        args = [*BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
                "--proxy-server=http://127.0.0.1:9", f"--proxy-bypass-list={HOST}", "about:blank"]
        browser = DevTools(binary, args, tmp_path / "chromium.log")
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            s = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Network", "Page", "Runtime", "Log"):
                browser.call(f"{domain}.enable", session=s)
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1200, "height": 2600, "deviceScaleFactor": 1, "mobile": False}, s)
            browser.call("Page.navigate", {"url": f"{origin}/board"}, s)
            wait_for(browser, s, "document.readyState === 'complete' && !!document.getElementById('login-form')")
            browser.evaluate(s, f"""
                document.getElementById('username').value = 'sup_district';
                document.getElementById('password').value = {json.dumps(PASSWORD)};
                document.getElementById('login-form').requestSubmit(); true""")
            wait_for(browser, s, "!document.getElementById('board').hidden")
            browser.evaluate(s, f"""
                document.getElementById('worker').value = {json.dumps(world.users['worker1'])};
                document.getElementById('day').value = {json.dumps(DAY.isoformat())};
                document.getElementById('community').value = {json.dumps(c1['id'])};
                document.getElementById('month').value = {json.dumps(DAY.isoformat()[:7])};
                document.getElementById('division').value = {json.dumps(c1['id'])};
                document.getElementById('pick').requestSubmit(); true""")
            status = wait_for(browser, s, "['ready'].includes(document.getElementById('status').textContent) || "
                                          "document.getElementById('status').textContent.startsWith('error') && "
                                          "document.getElementById('status').textContent")
            assert status is True or status == "ready", status
            dom = json.loads(browser.evaluate(s, """JSON.stringify({
                checkins: document.querySelectorAll('#worker-day svg circle.checkin').length,
                flagged: [...document.querySelectorAll('#worker-day svg circle.flagged')].map(c => c.dataset.rules),
                labels: [...document.querySelectorAll('#worker-day svg text.label')].map(t => t.textContent),
                grids: document.querySelectorAll('#coverage svg text.grid-label').length,
                visited: [...document.querySelectorAll('#coverage svg text.grid-label')]
                    .reduce((n, t) => n + Number(t.dataset.visited), 0),
                months: document.querySelectorAll('#trend svg text.month-label').length})"""))
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, s)
            browser.drain()
        finally:
            browser.close()
    assert dom == {"checkins": 2, "flagged": ["mock_location"], "labels": ["1 09:00", "2 10:00 ⚠ mock_location"],
                   "grids": len(world.grids[c1["id"]]), "visited": 2, "months": 12}
    png = base64.b64decode(shot["data"])
    (tmp_path / "board.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1200, 2600)
    assert dict((c, n) for n, c in image.getcolors(1 << 24)).get((0xd6, 0x27, 0x28), 0) > 20  # the flagged point, drawn
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    outside = [u for u in requests if not u.startswith((origin + "/", "data:", "blob:"))]
    assert f"{origin}/api/v1/audit/pictures/trend?division_id={c1['id']}" in requests and not outside, requests
    assert not [e for e in browser.events if e.get("method") in ("Runtime.exceptionThrown", "Network.loadingFailed")]
