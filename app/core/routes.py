"""Enumerate the app's operations (FastAPI ≥ 0.160 keeps included routers as lazy branches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) for every API operation, however deeply its router was included."""
    for route in app.routes:
        contexts: Any = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts():
                if isinstance(ctx.original_route, APIRoute):
                    yield ctx.path, ctx.original_route
        elif isinstance(route, APIRoute):
            yield route.path, route
