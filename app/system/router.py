from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.db import get_engine
from app.core.deps import public
from app.core.errors import error_body

public_router = APIRouter(tags=["system"])


@public_router.get("/healthz", summary="Liveness and database check")
@public
def healthz() -> JSONResponse:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(error_body("database_unavailable", "The database is not reachable."), 503)
    return JSONResponse({"status": "ok", "database": "ok"})
