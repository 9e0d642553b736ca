"""Every route declares who may call it: `@public` (the short list below) or an `allow(...)` rule somewhere
in its dependency tree. A route that forgets both fails here, before it can ship unauthenticated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from app.auth.deps import AdminActor, StaffActor, allow
from app.core.actor import Role
from app.core.deps import ACCESS_RULE, SessionDep
from app.core.routes import api_routes
from app.main import app

# The whole list of operations reachable without a token. Adding to it is a security decision.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/docs"),
    # The supervisor board's static page, script and style: no data (the page signs in with the API).
    ("GET", "/board"), ("GET", "/board/board.js"), ("GET", "/board/board.css"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    # OAuth 2.0 client credentials: police stations and outflow cities authenticate with their id and secret.
    ("POST", "/api/v1/partner/oauth/token"),
    # A landlord registers themselves (no enumeration, throttled per address; docs/sharing.md).
    ("POST", "/api/v1/partner/landlord/register"),
}
# Served by Starlette itself, outside the API's routers: the OpenAPI document and Swagger UI's assets.
PUBLIC_NON_API = {("Route", "/openapi.json"), ("Mount", "/docs-static")}
DUMMY_ID = "0" * 32


def operations() -> Iterator[tuple[str, str, APIRoute]]:
    for path, route in api_routes(app):
        for method in sorted(route.methods or ()):
            yield method, path, route


def rules(dependant: Dependant) -> Iterator[Any]:
    """Access rules (callables carrying ACCESS_RULE) anywhere below this dependant."""
    for dep in dependant.dependencies:
        rule = getattr(dep.call, ACCESS_RULE, None)
        if rule is not None and rule != "public":
            yield rule
        yield from rules(dep)


def is_public(route: APIRoute) -> bool:
    return getattr(route.endpoint, ACCESS_RULE, None) == "public"


def test_routes_are_enumerated() -> None:
    ops = {(m, p) for m, p, _ in operations()}
    assert ops >= PUBLIC
    assert ("GET", "/api/v1/auth/me") in ops
    assert len(ops) > len(PUBLIC)


def test_public_routes_are_exactly_the_allow_list() -> None:
    public = {(m, p) for m, p, route in operations() if is_public(route)}
    assert public == PUBLIC, f"unexpected public routes: {sorted(public - PUBLIC)}; missing: {sorted(PUBLIC - public)}"


def test_every_other_route_declares_an_access_rule() -> None:
    missing = [f"{m} {p}" for m, p, route in operations() if not is_public(route) and not list(rules(route.dependant))]
    assert not missing, f"routes with neither @public nor allow(...): {missing}"


def test_access_rules_name_real_roles() -> None:
    for method, path, route in operations():
        for rule in rules(route.dependant):
            assert isinstance(rule, frozenset) and rule, (method, path, rule)
            assert all(isinstance(r, Role) for r in rule), (method, path, rule)


def test_public_routes_carry_no_rule() -> None:
    # A route marked public *and* guarded is a contradiction: one of the two is a mistake.
    for method, path, route in operations():
        if is_public(route):
            assert not list(rules(route.dependant)), (method, path)


def test_no_other_routes_outside_the_api() -> None:
    others = set()
    for route in app.routes:
        if getattr(route, "effective_route_contexts", None) is not None or isinstance(route, APIRoute):
            continue
        kind = "Mount" if isinstance(route, Mount) else "Route" if isinstance(route, Route) else type(route).__name__
        others.add((kind, getattr(route, "path", "")))
    assert others == PUBLIC_NON_API


def test_the_walker_finds_nested_rules_and_flags_missing_ones() -> None:
    def nested(actor: StaffActor) -> str:
        return actor.user_id

    router = APIRouter()

    @router.get("/open")
    def open_route(session: SessionDep) -> None: ...

    @router.get("/direct")
    def direct(actor: AdminActor) -> None: ...

    @router.get("/nested")
    def nested_route(user_id: str = Depends(nested)) -> None: ...

    @router.get("/router-level", dependencies=[allow(Role.worker)])
    def router_level() -> None: ...

    probe = FastAPI()
    probe.include_router(router, prefix="/x")
    found = {path: bool(list(rules(route.dependant))) for path, route in api_routes(probe)}
    assert found == {"/x/open": False, "/x/direct": True, "/x/nested": True, "/x/router-level": True}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", DUMMY_ID, path)


NON_PUBLIC = sorted((m, p) for m, p, route in operations() if not is_public(route))


@pytest.mark.parametrize(("method", "path"), NON_PUBLIC, ids=[f"{m} {p}" for m, p in NON_PUBLIC])
def test_non_public_route_without_token_is_401(client: Any, method: str, path: str) -> None:
    url = concrete(path)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        response = client.request(method, url, json={}, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
