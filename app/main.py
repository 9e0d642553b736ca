"""Application factory."""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import anyio
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app import wiring
from app.api import API_PREFIX, api, public_api, root_public
from app.core import openapi
from app.core.config import get_settings
from app.core.db import capacity, get_engine
from app.core.deps import public
from app.core.errors import install_handlers
from app.core.middleware import RequestContextMiddleware
from app.core.routes import install_route_index

DESCRIPTION = """
Service for community workers who serve migrant residents (流动人口): places, accounts and scoped access,
the audit log. Authenticate with `POST /api/v1/auth/login`, then send `Authorization: Bearer <token>`.
Errors are `{"code", "message", "details"}`; send `Accept-Language: zh` for Chinese messages.
"""


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # What start-up loaded (modules, models, the route table: ~200,000 objects) lives as long as the process.
    # Frozen, the cyclic collector's full passes skip it: they cost a 1,000-visit sync push ~150 ms otherwise.
    gc.freeze()
    # A young collection every 50,000 allocations, not 700: a request allocates a few thousand objects that
    # reference counting frees anyway, and the default ran one to five collections per request (`GET /me/tasks`:
    # ~0.1 ms of its 2.7 ms; docs/performance.md). Cyclic garbage waits a little longer: a few MB at most.
    gc.set_threshold(50_000, 20, 10)
    # Threads for the synchronous parts of requests: more than the database connections, so a request holding a
    # connection always finds a thread to finish on (app/core/db.py admits no more requests than connections).
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, capacity(get_engine()) + 8)
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    settings.check_production()
    wiring.install()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = FastAPI(
        title="Migrant Services API",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # MAX_BODY_BYTES is enforced by RequestContextMiddleware (one error shape, request id kept).
    )
    install_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(root_public)
    app.include_router(public_api, prefix=API_PREFIX)
    app.include_router(api, prefix=API_PREFIX)
    _mount_docs(app)
    openapi.install(app)
    install_route_index(app)
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from assets shipped in an installed package: works on an intranet with no internet."""
    static = resources.files("fastapi_offline") / "static"
    app.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    @public
    def docs() -> HTMLResponse:
        return with_policy(get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=app.title + " — docs",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
            # Never send the spec's address to validator.swagger.io (the badge of the standalone layout).
            swagger_ui_parameters={"validatorUrl": None},
        ))


INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """/docs may load only our own files and run only our own inline start-up script (by its hash), and no
    other site may frame it (clickjacking the "Try it out" buttons with the user's token)."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
                      for s in INLINE_SCRIPT.findall(bytes(page.body)))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    page.headers["X-Frame-Options"] = "DENY"
    return page


app = create_app()
