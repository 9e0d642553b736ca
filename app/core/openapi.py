"""The published contract's error responses, derived from how each route is built, never listed by hand.

FastAPI documents only the success and a 422 whose shape (`HTTPValidationError`) is not ours. Every error this
API answers is `{"code", "message", "details"}` (app/core/errors.py), so every error response of every
operation refers to one `Error` schema, and the statuses an operation may answer follow from the route:

| status | when the route … | because |
|---|---|---|
| 401, 403 | declares an access rule (`allow`, `hop`) | no or dead token; the role, or a pending password change |
| 404 | has a path id, or an `…id`/`…ids` in its query or body | out of scope is 404 (CONVENTIONS.md, Access) |
| 409 | writes (POST, PUT, PATCH, DELETE) to the database | a unique clash is 409 `concurrent_conflict` |
| 400, 413 | takes a body | a body that does not parse; MAX_BODY_BYTES (app/core/middleware.py) |
| 415 | takes a file (multipart) or a raw body | the upload's own type checks |
| 422 | always | input rules; a NUL byte in the URL is refused on every route |
| 503 | uses the database (`SessionDep`) | `service_busy` / `database_unavailable`, with Retry-After |

A route adds what only it knows (a 429 for sign-in throttling, a description of its codes) with FastAPI's
`responses=`; those descriptions are kept and get the same `Error` schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.deps import ACCESS_RULE, OPENS_UNIT_OF_WORK
from app.core.routes import api_routes

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error: a stable snake_case `code`, a message in English or Chinese (`Accept-Language: zh`) "
                   "and `details` (never the input's values).",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "Stable, snake_case: what a client acts on"},
        "message": {"type": "string"},
        "details": {"description": "Depends on the code (a validation error lists the fields); often null"},
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "string"}}}
DESCRIPTIONS = {
    400: "The body cannot be read at all (not JSON, a broken form: `bad_request`)",
    401: "No valid token, or the session ended (`unauthorized`, `session_expired`)",
    403: "The caller's role may not do this (`forbidden`), or must change their password first "
         "(`password_change_required`)",
    404: "Not found, or outside the caller's area (`not_found`)",
    409: "Conflicts with the current state (`stale_version`, `concurrent_conflict`, …)",
    413: "The body is too large (`body_too_large`)",
    415: "Unsupported media type",
    422: "The input is not valid (`validation_error` or the rule's own code)",
    429: "Too many attempts; wait for Retry-After",
    503: "Busy or unreachable database; nothing was changed, retry later (`service_busy`, `database_unavailable`)",
}
WRITES = {"post", "put", "patch", "delete"}
NUL_FREE = "^[^\\x00]*$"  # InputModel and the middleware refuse a NUL anywhere (422 nul_byte)
# A body's text is stripped before its length is checked (InputModel): a required text needs one visible character.
NUL_FREE_TEXT = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"


def install(app: FastAPI) -> None:
    """Make `app.openapi()` document every operation's errors (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(build(), app)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(spec: dict[str, Any], app: FastAPI) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _refuse_nul(spec)
    for path, route in api_routes(app):
        item = spec["paths"].get(path)
        if item is None:
            continue
        for method in route.methods or ():
            op = item.get(method.lower())
            if op is not None:
                _document(op, method.lower(), path, route)


def statuses(method: str, path: str, route: APIRoute, op: dict[str, Any]) -> set[int]:
    """The error statuses an operation may answer, from its access rule, dependencies and inputs."""
    found = {422}
    guarded = any(getattr(d.call, ACCESS_RULE, None) not in (None, "public") for d in _below(route.dependant))
    uses_db = any(getattr(d.call, OPENS_UNIT_OF_WORK, False) for d in _below(route.dependant))
    body = op.get("requestBody")
    if guarded:
        found |= {401, 403}
        if "{" in path or any(n == "id" or n.endswith(("_id", "_ids")) for n in _input_names(route)):
            found.add(404)
    if uses_db:
        found.add(503)
        if method in WRITES:
            found.add(409)
    if body is not None:
        found |= {400, 413}  # 400: a body that cannot be parsed at all (not JSON, not a form)
        if any(not kind.endswith("json") for kind in body.get("content", {})):
            found.add(415)
    return found


def _document(op: dict[str, Any], method: str, path: str, route: APIRoute) -> None:
    for param in op.get("parameters", []):
        # A parameter the route checks itself (for its own error code) but the contract requires.
        if param.get("schema", {}).pop("x-required", False):
            param["required"] = True
            schema = param["schema"]
            kinds = [k for k in schema.pop("anyOf", []) if k.get("type") != "null"]
            param["schema"] = {**kinds[0], **schema} if len(kinds) == 1 else {**schema, "anyOf": kinds}
    responses = op.setdefault("responses", {})
    # An operation that answers its errors in another standard's shape (the OAuth token endpoint: RFC 6749 §5.2)
    # names it in `x-error-shape` and keeps the error schemas it declared; the others are the middleware's, ours.
    own_shape = "x-error-shape" in op
    for status in statuses(method, path, route, op) | {int(s) for s in responses if s.isdigit() and int(s) >= 400}:
        response = responses.setdefault(str(status), {})
        if status == 422 and "HTTPValidationError" in str(response.get("content")):
            response.pop("content")
            response["description"] = DESCRIPTIONS[422]
        response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
        if not (own_shape and "content" in response):
            response["content"] = {"application/json": {"schema": ERROR_REF}}
        if status in (429, 503):
            response.setdefault("headers", RETRY_AFTER)


def _below(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _below(dep)


def _input_names(route: APIRoute) -> set[str]:
    names: set[str] = set()
    for dependant in (route.dependant, *_below(route.dependant)):
        names |= {p.name for p in dependant.query_params}
        for param in dependant.body_params:
            names.add(param.name)
            names |= set(getattr(param.field_info.annotation, "model_fields", None) or {})
    return names


def _refuse_nul(spec: dict[str, Any]) -> None:
    """Every input string the schema leaves open says it holds no NUL: parameters, and the bodies' schemas."""
    schemas = spec.get("components", {}).get("schemas", {})
    pending: list[tuple[Any, bool]] = []  # (schema, inside a body)
    for item in spec["paths"].values():
        for op in item.values():
            pending += [(p.get("schema"), False) for p in op.get("parameters", [])]
            pending += [(c.get("schema"), True) for c in op.get("requestBody", {}).get("content", {}).values()]
    seen: set[int] = set()
    while pending:
        node, body = pending.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            pending.append((schemas.get(ref.rsplit("/", 1)[1]), body))
        if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
            node["pattern"] = NUL_FREE_TEXT if body and node.get("minLength", 0) >= 1 else NUL_FREE
        children = [*node.get("properties", {}).values(), *node.get("$defs", {}).values()]
        children += [child for key in ("anyOf", "allOf", "oneOf", "prefixItems") for child in node.get(key, [])]
        children += [node.get(key) for key in ("items", "additionalProperties", "not")]
        pending += [(child, body) for child in children]
