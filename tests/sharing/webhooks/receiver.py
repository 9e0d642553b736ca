"""A partner's webhook receiver for the tests: a real HTTP server on loopback, in a thread.

It does what docs/sharing.md asks of a receiver: checks the signature and the replay window with
`app.sharing.webhooks.signing.verify` (refused: 401), processes each event id once (a repeated id is a duplicate,
acknowledged and not processed again), then answers. `script` holds the statuses of the next answers (200 once it
is empty): a 500 after processing is a lost acknowledgement, so the sender tries again with the same id.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.sharing.webhooks.signing import SignatureRefused, verify


class Receiver:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.secret = ""
        self.delay = delay
        self.script: list[int] = []
        self.processed: dict[str, bytes] = {}  # event id -> body, the first time it came
        self.deliveries: Counter[str] = Counter()  # event id -> how many verified requests carried it
        self.refused: list[str] = []  # SignatureRefused codes
        # Hold the answer to the `hold_at`-th verified request (already processed) until `release` is set:
        # the sender is between sending and hearing back when `held` is set.
        self.hold_at: int | None = None
        self.held, self.release = threading.Event(), threading.Event()
        # Called on every request, its answers kept (the sender's pool: no connection held while sending).
        self.probe: Callable[[], Any] | None = None
        self.probed: list[Any] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def duplicates(self) -> int:
        return sum(self.deliveries.values()) - len(self.deliveries)

    def receive(self, headers: Any, body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        if self.probe is not None:
            self.probed.append(self.probe())
        with self._lock:
            try:
                event_id = verify(self.secret, dict(headers.items()), body)
            except SignatureRefused as refusal:
                self.refused.append(refusal.code)
                return 401
            self.deliveries[event_id] += 1
            self.processed.setdefault(event_id, body)  # dedupe: a known id is not processed again
            hold = self.hold_at == sum(self.deliveries.values())
            status = self.script.pop(0) if self.script else 200
        if hold:
            self.held.set()
            self.release.wait(60)
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.receive(self.headers, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender is gone (killed while waiting for the answer)
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler
