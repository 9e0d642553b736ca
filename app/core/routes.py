"""Enumerate the app's operations (FastAPI ≥ 0.160 keeps included routers as lazy branches), and find the one a request
is for without walking them all (the route index, at the end)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import (  # the private parts of FastAPI's dispatch the route index repeats
    _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
    _FASTAPI_INCLUDED_ROUTER_KEY,
    APIRoute,
    APIRouter,
    _apply_router_form_limits,
    _EffectiveRouteContext,
    _get_fastapi_scope,
    _IncludedRouter,
    _update_scope,
)
from fastapi.telemetry._api import _route_selected
from starlette._utils import get_route_path
from starlette.routing import Match, compile_path
from starlette.types import Receive, Scope, Send


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


# --- the route index ---------------------------------------------------------------------------------------
# FastAPI ≥ 0.160 matches a request by walking every included router in order, and each router re-walks its
# routes' versions (`_get_routes_version`) at every level, twice (once to match, once to handle): 0.1–1 ms of
# CPU a request with our ~190 operations, more the later the route is included. The index below finds the same
# route from the path's first segments, then hands the request to it exactly as FastAPI's own dispatch would
# (the same scope keys, the same wrapped endpoint). Anything it is not sure of — no full match, a 405, a mount,
# a redirect for a trailing slash, a route added after start-up — goes to FastAPI's router unchanged.

KEY_SEGMENTS = 3


@dataclass(frozen=True)
class _Leaf:
    """An operation inside included routers: its effective context and the chain of routers that lead to it."""

    order: int
    context: Any  # fastapi.routing._EffectiveRouteContext of an APIRoute
    chain: tuple[Any, ...]  # the _IncludedRouter branches, outermost first
    path_format: str


@dataclass(frozen=True)
class _Opaque:
    """Anything else (a mount, a plain route, a top-level route): if it matches at all, FastAPI decides."""

    order: int
    route: Any


def _key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/")[1:KEY_SEGMENTS + 1])


class RouteIndex:
    """The router's ASGI app (`router.middleware_stack`), with FastAPI's own router behind it."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback = router.middleware_stack
        self.version: int | None = None
        self.buckets: dict[tuple[str, ...], list[_Leaf | _Opaque]] = {}
        self.anywhere: list[_Leaf | _Opaque] = []

    def build(self) -> None:
        entries: list[_Leaf | _Opaque] = []

        def walk(routes: list[Any], chain: tuple[Any, ...]) -> None:
            for route in routes:
                if isinstance(route, _IncludedRouter):
                    walk(route.effective_candidates(), (*chain, route))
                elif chain and isinstance(route, _EffectiveRouteContext) and isinstance(route.original_route, APIRoute):
                    fmt = route.starlette_route and getattr(route.starlette_route, "path_format", None)
                    entries.append(_Leaf(len(entries), route, chain, fmt or route.path_format))
                else:
                    entries.append(_Opaque(len(entries), route))

        walk(list(self.router.routes), ())
        buckets: dict[tuple[str, ...], list[_Leaf | _Opaque]] = {}
        anywhere: list[_Leaf | _Opaque] = []
        for entry in entries:
            key = _key(entry.path_format) if isinstance(entry, _Leaf) else None
            if key is None or any("{" in part for part in key):
                anywhere.append(entry)
            else:
                buckets.setdefault(key, []).append(entry)
        self.buckets = {key: sorted([*listed, *anywhere], key=lambda e: e.order) for key, listed in buckets.items()}
        self.anywhere = anywhere
        self.version = self.router._get_routes_version()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.version is None:
                self.build()
            leaf, child_scope = self.find(scope)
            if leaf is not None:
                await self.dispatch(leaf, child_scope, scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    def find(self, scope: Scope) -> tuple[_Leaf | None, Scope]:
        """The route FastAPI would pick when it is a full match on an operation; otherwise None."""
        path = get_route_path(scope)
        for entry in self.buckets.get(_key(path), self.anywhere):
            if isinstance(entry, _Opaque):
                if entry.route.matches(scope)[0] != Match.NONE:
                    return None, {}
                continue
            match, child_scope = entry.context.matches(scope)
            if match == Match.FULL:
                return entry, child_scope
            # A partial match (another method) is FastAPI's to answer, unless a later route matches in full.
        return None, {}

    async def dispatch(self, leaf: _Leaf, child_scope: Scope, scope: Scope, receive: Receive, send: Send) -> None:
        """What APIRouter.app → _IncludedRouter.handle → … → _handle_selected → APIRoute.handle do once the
        route is chosen (fastapi/routing.py)."""
        router = self.router
        _apply_router_form_limits(scope, router.form_limits)
        if "router" not in scope:
            scope["router"] = router
        fastapi_scope = _get_fastapi_scope(scope)
        for branch in leaf.chain:
            _apply_router_form_limits(scope, branch.include_context.form_limits)
            fastapi_scope[_FASTAPI_INCLUDED_ROUTER_KEY] = branch
        context = leaf.context
        child_scope["route"] = context.original_route
        _update_scope(scope, child_scope)
        _route_selected(scope=scope, path=leaf.path_format)
        fastapi_scope[_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = context
        await context.original_route.handle(scope, receive, send)


def install_route_index(app: FastAPI) -> RouteIndex:
    index = RouteIndex(app.router)
    app.router.middleware_stack = index
    return index
