"""In-process A/B of the route index (bench/cpu.py's city, SQLite): CPU seconds (time.process_time) of N requests
through Starlette's TestClient with FastAPI's own router, then with the index, alternating. Client and server
share the process, so only the difference between the two columns is the server's saving.

    .venv/bin/python bench/cpu.py                   # once, to build bench/out/cpu.db
    .venv/bin/python bench/cpu_inproc.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["DATABASE_URL"] = f"sqlite:///{HERE / 'out' / 'cpu.db'}"
os.environ.setdefault("APP_ENV", "development")
os.environ["LOG_LEVEL"] = "WARNING"

from fastapi.testclient import TestClient  # noqa: E402

from app.main import app  # noqa: E402


def main() -> None:
    saved = json.loads((HERE / "out" / "cpu-sqlite.json").read_text())
    worker = saved["workers"][0]
    index = app.router.middleware_stack
    fallback = getattr(index, "fallback", index)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/login", json={"username": worker["username"],
                                                       "password": saved["password"]}).json()["access_token"]
        auth = {"Authorization": "Bearer " + token, "X-Device-Id": "inproc-phone"}
        rid = client.get("/api/v1/residents?limit=1", headers=auth).json()["items"][0]["id"]
        routes = {"GET /healthz": "/healthz", "GET /auth/me": "/api/v1/auth/me", "GET /me/tasks": "/api/v1/me/tasks",
                  "GET /residents/{id}": f"/api/v1/residents/{rid}"}
        n = 300
        for label, path in routes.items():
            cells = {"fastapi": [], "index": []}
            for _ in range(3):
                for name, stack in (("fastapi", fallback), ("index", index)):
                    app.router.middleware_stack = stack
                    started = time.process_time()
                    for _ in range(n):
                        assert client.get(path, headers=auth).status_code == 200
                    cells[name].append((time.process_time() - started) * 1000 / n)
            app.router.middleware_stack = index
            best = {k: min(v) for k, v in cells.items()}
            print(f"  {label:<22} FastAPI's router {best['fastapi']:.2f} ms, index {best['index']:.2f} ms, "
                  f"saved {best['fastapi'] - best['index']:.2f} ms CPU a request (best of 3 × {n}); "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
