"""Enumerate the app's operations (FastAPI ≥ 0.160 keeps included routers as lazy branches)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import compile_path


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


def path_methods(app: FastAPI, path: str) -> set[str]:
    """Every method some route serves at this concrete path (what a 405's Allow header must list: Starlette
    names only the methods of the first route whose path matched, and FastAPI has one route per method)."""
    table: list[tuple[str, re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "route_methods", None)
    if table is None:
        table = [(full, compile_path(full)[0], frozenset(route.methods or ())) for full, route in api_routes(app)]
        app.state.route_methods = table
    matching = [(template, methods) for template, regex, methods in table if regex.match(path)]
    # The path as the contract names it: a fixed path (/tasks/generate) is not also /tasks/{task_id}; among
    # templates, the one with the fewest parameters is the operation's own.
    fewest = min((template.count("{") for template, _ in matching), default=0)
    return {method for template, methods in matching if template.count("{") == fewest for method in methods}
