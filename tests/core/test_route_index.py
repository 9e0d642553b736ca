"""The route index (app/core/routes.py) picks the operation FastAPI's own router would pick, or leaves the request
to FastAPI: every operation with path parameters filled in several ways and every method, unknown paths, the
trailing slash, 404 and 405 through HTTP."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import Match

from app.core.routes import RouteIndex, api_routes
from tests.assertions import assert_error

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def scope(path: str, method: str) -> dict[str, Any]:
    return {"type": "http", "path": path, "method": method, "root_path": "", "headers": [], "query_string": b""}


def fastapi_choice(app: FastAPI, s: dict[str, Any]) -> tuple[Any, Any]:
    """(the effective route context, its path parameters) of FastAPI's own full match through the included routers;
    (None, None) for anything else (no match, a partial one, a top-level route)."""
    for route in app.router.routes:
        match, _ = route.matches(s)
        if match == Match.FULL:
            if not isinstance(route, _IncludedRouter):
                return None, None
            branch = route
            while True:
                match, child, chosen, context = branch._match(s)
                if isinstance(chosen, _IncludedRouter):
                    branch = chosen
                    continue
                return (context, child.get("path_params")) if match == Match.FULL else (None, None)
    return None, None


def test_the_index_chooses_what_fastapi_chooses(client: TestClient) -> None:
    app: Any = client.app
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    index.build()
    paths = {"/healthz", "/docs", "/openapi.json", "/docs-static/x.js", "/nope", "/api/v1/nope", "/api/v1/residents/",
             "/api/v1/auth/me/", "/api/v1", "/"}
    for template, _route in api_routes(app):
        for sample in ("abc", "123", "import", "generate", "x-y"):
            paths.add(re.sub(r"\{[^}]+\}", sample, template))
    chosen = 0
    for path in sorted(paths):
        for method in METHODS:
            leaf, child = index.find(scope(path, method))
            context, params = fastapi_choice(app, scope(path, method))
            if leaf is None:
                assert context is None, (method, path)
            else:
                chosen += 1
                assert leaf.context is context and child["path_params"] == params, (method, path)
    assert chosen > 150


def test_requests_the_index_leaves_to_fastapi(client: TestClient) -> None:
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")
    refused = client.delete("/api/v1/auth/me")
    assert_error(refused, 405, "method_not_allowed")
    assert "GET" in refused.headers["Allow"]
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_path_parameters_reach_the_route(client: TestClient) -> None:
    # An operation with a path parameter, found through the index: unauthenticated, so 401 — but a route matched.
    assert_error(client.get("/api/v1/residents/" + "0" * 32), 401, "unauthorized")
    assert client.get("/healthz").status_code == 200
