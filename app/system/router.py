"""Operational endpoints outside the versioned API: the health check for load balancers and Docker."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from app.core.db import admitted, get_engine
from app.core.deps import public
from app.core.errors import ServiceBusy, error_body, language

log = logging.getLogger("app.health")
public_router = APIRouter(tags=["system"])


@public_router.get(
    "/healthz",
    summary="Liveness and database check",
    responses={503: {"description": "The database is not reachable (`database_unavailable`), or every connection "
                                    "is busy (`service_busy`, with Retry-After)"}},
)
@public
async def healthz(request: Request) -> JSONResponse:
    engine = get_engine()
    try:
        async with admitted(engine):
            await run_in_threadpool(_ping, engine)
    except ServiceBusy:
        message = "服务器繁忙。" if language(request) == "zh" else "The server is busy."
        return JSONResponse(error_body("service_busy", message), 503,
                            headers={"Cache-Control": "no-store", "Retry-After": "2"})
    except Exception as exc:
        # The class name only: driver messages can carry host names and user names.
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        message = "数据库不可用。" if language(request) == "zh" else "The database is not reachable."
        return JSONResponse(error_body("database_unavailable", message), 503, headers={"Cache-Control": "no-store"})
    return JSONResponse({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
