"""The published contract (openapi/openapi.json) names every status an operation answers, in one error shape.

Clients are generated from it and schemathesis (`make fuzz`) holds the server to it, so an undocumented 401 or 404
is a broken promise. Statically: what each route's access rule, path and inputs imply is documented (the rules of
app/core/openapi.py, recomputed here from the routes). Dynamically: the suite's typical error cases — no token,
a role refused, an unknown id, bad input, a wrong method — are answered with documented statuses and the
`Error` shape, and a 405 lists every method of its path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from app.core.config import ROOT
from app.core.deps import ACCESS_RULE, OPENS_UNIT_OF_WORK, get_session
from app.core.routes import api_routes
from app.main import app
from tests.conftest import Api

SPEC: dict[str, Any] = json.loads((ROOT / "openapi" / "openapi.json").read_text("utf-8"))
ERROR = "#/components/schemas/Error"
# The OAuth token endpoint answers its own errors in RFC 6749 §5.2's shape (docs/sharing.md), its operation marked
# `x-error-shape`; the middleware's (413, 422) stay ours.
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthErrorOut"}
DUMMY_ID = "0" * 32
# Ending the session or changing its password would turn the rest of the sweep into 401s.
SKIP = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}


def operations() -> Iterator[tuple[str, str, APIRoute, dict[str, Any]]]:
    for path, route in api_routes(app):
        for method in sorted(route.methods or ()):
            op = SPEC["paths"].get(path, {}).get(method.lower())
            if op is not None:
                yield method, path, route, op


def documented(op: dict[str, Any]) -> set[int]:
    return {int(s) for s in op["responses"] if s.isdigit()}


def dependencies(route: APIRoute) -> Iterator[Any]:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        yield dep.call
        stack.extend(dep.dependencies)


def uses_database(route: APIRoute) -> bool:
    return any(call is get_session or getattr(call, OPENS_UNIT_OF_WORK, False) for call in dependencies(route))


def test_hop_routes_are_seen_to_use_the_database() -> None:
    """A hop's rule opens the unit of work itself: its routes count as using the database (and document 503)."""
    me = next(r for _, p, r, _ in operations() if p == "/api/v1/auth/me")
    assert not any(call is get_session for call in dependencies(me))
    assert uses_database(me)
    assert "503" in SPEC["paths"]["/api/v1/auth/me"]["get"]["responses"]


def guarded(route: APIRoute) -> bool:
    """An access rule (`allow`, `hop`) anywhere in the route's dependencies."""
    return any(getattr(call, ACCESS_RULE, None) not in (None, "public") for call in dependencies(route))


def test_every_error_response_uses_the_one_error_shape() -> None:
    assert SPEC["components"]["schemas"]["Error"]["required"] == ["code", "message", "details"]
    assert "HTTPValidationError" not in SPEC["components"]["schemas"]  # not the shape we answer 422 with
    wrong = [f"{m} {p} {s}" for m, p, _, op in operations() for s, r in op["responses"].items()
             if int(s) >= 400 and r.get("content", {}).get("application/json", {}).get("schema") not in (
                 {"$ref": ERROR}, *([OAUTH_ERROR] if "x-error-shape" in op else []))]
    assert not wrong, f"error responses without the Error schema: {wrong}"


def test_each_operation_documents_what_its_route_implies() -> None:
    missing = []
    for method, path, route, op in operations():
        need = {422}
        if guarded(route):
            need |= {401, 403}
        if "{" in path and guarded(route):
            need.add(404)
        if uses_database(route):
            need.add(503)
            if method in {"POST", "PUT", "PATCH", "DELETE"}:
                need.add(409)  # a unique clash is 409 concurrent_conflict
        if "requestBody" in op:
            need.add(413)
        if lacking := need - documented(op):
            missing.append(f"{method} {path} lacks {sorted(lacking)}")
    assert not missing, "\n".join(missing)


def test_sign_in_documents_its_throttle() -> None:
    assert {401, 422, 429, 503} <= documented(SPEC["paths"]["/api/v1/auth/login"]["post"])
    assert 401 in documented(SPEC["paths"]["/api/v1/auth/refresh"]["post"])


def _call(api: Api, user: str | None, method: str, path: str) -> Any:
    url = path.replace("{", "").replace("}", "")  # any id: the parameter's own name, unknown everywhere
    for part in path.split("/"):
        if part.startswith("{"):
            url = url.replace(part.strip("{}"), DUMMY_ID, 1)
    if user is None:
        return api.client.request(method, url)
    return api.as_(user, method, url)


def _undocumented(api: Api, user: str | None) -> list[str]:
    seen = []
    for method, path, _, op in operations():
        if (method, path) in SKIP:
            continue
        response = _call(api, user, method, path)
        if response.status_code not in documented(op):
            seen.append(f"{method} {path} as {user}: {response.status_code} {response.text[:80]}")
        elif response.status_code >= 400:
            shape = {"error", "error_description"} if "x-error-shape" in op else {"code", "message", "details"}
            assert set(response.json()) == shape, (method, path, response.text)
    return seen


@pytest.mark.parametrize("user", [None, "worker1", "auditor", "admin"])
def test_typical_error_cases_answer_documented_statuses(api: Api, user: str | None) -> None:
    """No token (401), a role refused (403), an unknown id (404), no body (422): each must be in the spec."""
    undocumented = _undocumented(api, user)
    assert not undocumented, "\n".join(undocumented)


def test_a_wrong_method_lists_every_method_of_its_path(api: Api) -> None:
    response = api.as_("worker1", "DELETE", "/api/v1/residents")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}
    response = api.as_("worker1", "PUT", f"/api/v1/residents/{DUMMY_ID}")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "PATCH"}
    # A fixed path is its own operation, although /tasks/{task_id} would match it too.
    response = api.as_("worker1", "OPTIONS", "/api/v1/tasks/generate")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_a_body_that_does_not_parse_is_a_documented_400(api: Api) -> None:
    response = api.as_("worker1", "POST", "/api/v1/dwellings", content=b"\xff\xfe{", headers={"Content-Type":
                                                                                              "application/json"})
    assert response.status_code in documented(SPEC["paths"]["/api/v1/dwellings"]["post"])
    assert set(response.json()) == {"code", "message", "details"}


def test_docs_page_may_not_be_framed_or_run_foreign_scripts(api: Api) -> None:
    """tests/test_docs_offline.py shows Swagger UI still renders under this policy (headless Chromium)."""
    response = api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy["script-src"] and "'sha256-" in policy["script-src"]


# --- input rules the schema states, and bodies typed as strictly as it says ---------------------------------------

def test_rules_enforced_by_validators_are_in_the_schema() -> None:
    schemas = SPEC["components"]["schemas"]
    assert schemas["DwellingCreate"]["dependentRequired"] == {"lat": ["lng"], "lng": ["lat"]}
    assert schemas["DwellingCreate"]["properties"]["lat"] == {**schemas["DwellingCreate"]["properties"]["lat"],
                                                             "type": "number", "minimum": 3.0, "maximum": 54.0}
    assert schemas["DwellingUpdate"]["properties"]["address"]["type"] == "string"  # may be left out, never null
    assert schemas["ItemUpdate"]["minProperties"] == 3  # version, note and one change
    assert schemas["DwellingCreate"]["properties"]["address"]["pattern"] == "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
    pull = SPEC["paths"]["/api/v1/sync/pull"]["get"]["parameters"]
    device = next(p for p in pull if p["name"] == "x-device-id")
    assert device["required"] and device["schema"]["pattern"] == "^[A-Za-z0-9._-]{8,64}$"


@pytest.mark.parametrize(("field", "value"), [("sensitive", 0), ("sensitive", "true"), ("sort_order", "5"),
                                              ("sort_order", True)])
def test_a_body_is_typed_as_strictly_as_its_schema(api: Api, field: str, value: Any) -> None:
    item = {"code": "strict_check", "name_zh": "测试", "name_en": "Test", "effective_from": "2026-01-01",
            "note": "contract test", field: value}
    response = api.as_("admin", "POST", "/api/v1/catalog/items", json=item)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["loc"] == ["body", field]
    item[field] = False if field == "sensitive" else 5
    assert api.as_("admin", "POST", "/api/v1/catalog/items", json=item).status_code == 201
