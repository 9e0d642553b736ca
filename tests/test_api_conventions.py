"""API-wide conventions (docs/CONVENTIONS.md): one error shape in two languages, strict inputs, body limits,
cache and request-id headers, the health check."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, ValidationError
from sqlalchemy import Engine, create_engine, select
from sqlmodel import col

from app.core.config import get_settings
from app.core.db import use_engine
from app.core.schemas import InputModel
from tests.assertions import assert_error
from tests.conftest import BACKEND, PASSWORD, Api, Databases, World

LOGIN = "/api/v1/auth/login"
USERS = "/api/v1/users"
JSON = {"Content-Type": "application/json"}
CJK = re.compile(r"[\u4e00-\u9fff]")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def user_id(world: World, username: str = "worker1") -> str:
    return world.users[username]


# --- one error shape, two languages ------------------------------------------------------------------

def error_cases(api: Api, world: World) -> Iterator[tuple[str, Any, int, str]]:
    """(label, response, status, code) for one request of every kind of failure."""
    c = api.client
    uid = user_id(world)
    yield "no token", c.get("/api/v1/auth/me"), 401, "unauthorized"
    yield "bad token", c.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-jwt"}), 401, "unauthorized"
    yield "wrong password", c.post(LOGIN, json={"username": "worker1", "password": "wrong"}), 401, \
        "invalid_credentials"
    yield "role", api.as_("worker1", "GET", USERS), 403, "forbidden"
    yield "unknown route", c.get("/api/v1/no-such-thing"), 404, "not_found"
    yield "unknown record", api.as_("admin", "GET", f"{USERS}/{'0' * 32}"), 404, "not_found"
    yield "method", c.delete("/healthz"), 405, "method_not_allowed"
    yield "validation", c.post(LOGIN, json={"username": "x"}), 422, "validation_error"
    yield "nul byte", c.post(LOGIN, json={"username": "a\x00b", "password": "x"}), 422, "nul_byte"
    yield "nul in url", c.get(f"{USERS}?q=%00"), 422, "nul_byte"
    yield "stale", api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"version": 999, "display_name": "x"}), \
        409, "stale_version"
    too_big = b" " * (get_settings().max_body_bytes + 1)
    yield "too large", c.post(LOGIN, content=too_big, headers=JSON), 413, "body_too_large"


def test_every_error_has_one_shape(api: Api, world: World) -> None:
    for label, response, status, code in error_cases(api, world):
        body = assert_error(response, status, code)
        assert not CJK.search(body["message"]), (label, body)


def test_accept_language_zh_gives_chinese_messages(api: Api, world: World) -> None:
    english = {label: r.json()["message"] for label, r, _, _ in error_cases(api, world)}
    api.client.headers["Accept-Language"] = "zh-CN,zh;q=0.9,en;q=0.8"
    api._headers.clear()
    for label, response, status, code in error_cases(api, world):
        body = assert_error(response, status, code)
        assert CJK.search(body["message"]), (label, body)
        assert body["message"] != english[label], label


def test_validation_details_never_echo_input(api: Api) -> None:
    secret = "SENSITIVE-411602199003150025"
    response = api.client.post(LOGIN, json={"username": "worker1", "password": "x", "id_number": secret})
    body = assert_error(response, 422, "validation_error")
    assert secret not in response.text
    assert body["details"][0]["loc"] == ["body", "id_number"]
    assert body["details"][0]["type"] == "extra_forbidden"


def test_unexpected_error_is_a_500_in_the_same_shape(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    probe = create_app()

    @probe.get("/api/v1/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("secret 411602199003150025")

    with TestClient(probe, raise_server_exceptions=False) as c:
        response = c.get("/api/v1/boom", headers={"X-Request-ID": "trace-500"})
        zh = c.get("/api/v1/boom", headers={"Accept-Language": "zh"})
    assert_error(response, 500, "internal_error")
    assert "411602199003150025" not in response.text and "RuntimeError" not in response.text
    assert response.headers["x-request-id"] == "trace-500"
    assert response.headers["cache-control"] == "no-store"
    assert CJK.search(assert_error(zh, 500, "internal_error")["message"])
    assert re.fullmatch(r"[0-9a-f]{32}", zh.headers["x-request-id"])


def test_production_500_is_logged_without_messages(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A driver's error message repeats the refused values: in production only types and frames are logged,
    and the error does not travel on to the server's own (full) logging."""
    from fastapi.testclient import TestClient

    from app.core import middleware
    from app.core.config import Settings
    from app.main import create_app

    probe = create_app()

    @probe.post("/api/v1/boom", include_in_schema=False)
    def boom() -> None:
        try:
            raise ValueError("Key (id_number)=(411602199003150025) already exists")
        except ValueError as exc:
            raise RuntimeError("while saving 张丽") from exc

    production = Settings(app_env="production")
    monkeypatch.setattr(middleware, "get_settings", lambda: production)
    with TestClient(probe) as c:  # raise_server_exceptions stays on: nothing may escape
        response = c.post("/api/v1/boom", headers={"X-Request-ID": "trace-prod", "Accept-Language": "zh"})
    body = assert_error(response, 500, "internal_error")
    assert CJK.search(body["message"])
    assert response.headers["x-request-id"] == "trace-prod"
    assert response.headers["cache-control"] == "no-store"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "trace-prod" in logged and "RuntimeError" in logged and "ValueError" in logged
    assert "411602199003150025" not in logged and "张丽" not in logged
    assert all(r.exc_info is None for r in caplog.records)


# --- strict inputs -----------------------------------------------------------------------------------

def test_unknown_json_field_is_422(api: Api, world: World) -> None:
    assert_error(api.client.post(LOGIN, json={"username": "worker1", "password": PASSWORD, "role": "admin"}),
                 422, "validation_error")
    uid = user_id(world)
    response = api.as_("admin", "PATCH", f"{USERS}/{uid}", json={"version": 1, "password_hash": "x"})
    assert_error(response, 422, "validation_error")
    # Nothing was written: mass assignment is impossible, not merely ignored.
    assert api.as_("admin", "GET", f"{USERS}/{uid}").json()["version"] == 1


@pytest.mark.parametrize("where", ["username", "password"])
def test_nul_byte_in_body_string_is_422(api: Api, where: str) -> None:
    body = {"username": "worker1", "password": PASSWORD, where: "ab\x00cd"}
    assert_error(api.client.post(LOGIN, json=body), 422, "nul_byte")


@pytest.mark.parametrize("url", [f"{USERS}?q=ab%00cd", f"{USERS}?q=%00", f"{USERS}/ab%00cd", f"{USERS}?%00=1"])
def test_nul_byte_in_url_is_422(api: Api, url: str) -> None:
    assert_error(api.as_("admin", "GET", url), 422, "nul_byte")


@pytest.mark.parametrize(
    "query",
    ["limit=" + str(10**30), "limit=0", "limit=-1", "offset=-1", "offset=" + str(10**30), "limit=1e400",
     "limit=abc", "limit=1.5", "limit=NaN", "offset=Infinity", "role=wizard", "active=maybe", "q=" + "x" * 65],
)
def test_out_of_range_query_is_422(api: Api, query: str) -> None:
    assert_error(api.as_("admin", "GET", f"{USERS}?{query}"), 422, "validation_error")


def test_page_limit_is_capped(api: Api) -> None:
    response = api.as_("admin", "GET", f"{USERS}?limit=1000")
    assert response.status_code == 200, response.text
    assert response.json()["limit"] == get_settings().page_max


@pytest.mark.parametrize("version", [10**30, -1, 0, 2**31, 1.5, "ten", None, [1]])
def test_out_of_range_body_number_is_422(api: Api, world: World, version: Any) -> None:
    response = api.as_("admin", "PATCH", f"{USERS}/{user_id(world)}", json={"version": version})
    assert_error(response, 422, "validation_error")


def test_huge_integer_literal_is_4xx(api: Api, world: World) -> None:
    # Python refuses to parse integers over 4300 digits: still a client error, never a 500.
    raw = b'{"version": 1' + b"0" * 5000 + b"}"
    response = api.as_("admin", "PATCH", f"{USERS}/{user_id(world)}", content=raw, headers=JSON)
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_rejected_in_body(api: Api, world: World, token: str) -> None:
    raw = f'{{"version": {token}}}'.encode()
    response = api.as_("admin", "PATCH", f"{USERS}/{user_id(world)}", content=raw, headers=JSON)
    assert_error(response, 422, "validation_error")
    raw = f'{{"username": {token}, "password": "x"}}'.encode()
    assert_error(api.client.post(LOGIN, content=raw, headers=JSON), 422, "validation_error")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_input_models_refuse_non_finite_floats(value: float) -> None:
    class Point(InputModel):
        lat: float = Field(ge=-90, le=90)
        weight: float | None = None

    with pytest.raises(ValidationError):
        Point.model_validate({"lat": 1.0, "weight": value})
    with pytest.raises(ValidationError):
        Point.model_validate_json(json.dumps({"lat": 1.0, "weight": value}))  # NaN/Infinity tokens


@pytest.mark.parametrize("raw", [b'{"username": "worker1", ', b"{'username': 'x'}", b"[1, 2", b"\xff\xfe", b"null"])
def test_malformed_json_is_422(api: Api, raw: bytes) -> None:
    assert_error(api.client.post(LOGIN, content=raw, headers=JSON), 422, "validation_error")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"]
)
def test_wrong_content_type_is_4xx(api: Api, content_type: str) -> None:
    raw = json.dumps({"username": "worker1", "password": PASSWORD}).encode()
    response = api.client.post(LOGIN, content=raw, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)
    assert "access_token" not in response.text


# --- body size ---------------------------------------------------------------------------------------

def padded_login(size: int) -> bytes:
    """A login body of exactly `size` bytes (JSON whitespace as padding)."""
    body = json.dumps({"username": "nobody", "password": "x"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_body_over_limit_with_content_length_is_413(api: Api) -> None:
    limit = get_settings().max_body_bytes
    response = api.client.post(LOGIN, content=padded_login(limit + 1), headers=JSON)
    assert_error(response, 413, "body_too_large")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    # At the limit the body is read and handled as usual.
    assert_error(api.client.post(LOGIN, content=padded_login(limit), headers=JSON), 401, "invalid_credentials")


def test_body_over_limit_without_content_length_is_413(api: Api) -> None:
    limit = get_settings().max_body_bytes
    response = api.client.post(LOGIN, content=chunks(padded_login(limit + 1)), headers=JSON)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "body_too_large")
    response = api.client.post(LOGIN, content=chunks(padded_login(limit)), headers=JSON)
    assert_error(response, 401, "invalid_credentials")


def test_body_over_limit_in_chinese(api: Api) -> None:
    big = padded_login(get_settings().max_body_bytes + 1)
    for content in (big, chunks(big)):
        response = api.client.post(LOGIN, content=content, headers={**JSON, "Accept-Language": "zh"})
        assert CJK.search(assert_error(response, 413, "body_too_large")["message"])


# --- headers -----------------------------------------------------------------------------------------

def test_api_responses_are_never_cached(api: Api) -> None:
    responses = [
        api.client.post(LOGIN, json={"username": "worker1", "password": PASSWORD}),  # tokens
        api.as_("worker1", "GET", "/api/v1/auth/me"),
        api.client.get("/api/v1/auth/me"),
        api.client.get("/api/v1/no-such-thing"),
        api.client.post(LOGIN, json={"username": "a\x00"}),
        api.client.get(f"{USERS}?q=%00"),
        api.client.post(LOGIN, content=b" " * (get_settings().max_body_bytes + 1), headers=JSON),
    ]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", (response.request.url, response.headers)
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("incoming", ["req-123_abc.DEF", "a", "x" * 64])
def test_request_id_is_echoed(api: Api, incoming: str) -> None:
    for response in (api.client.get("/healthz", headers={"X-Request-ID": incoming}),
                     api.client.get("/api/v1/auth/me", headers={"X-Request-ID": incoming})):
        assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 65, "semi;colon", "<script>", "dé".encode()])
def test_bad_request_id_is_replaced(api: Api, incoming: str | bytes) -> None:
    response = api.client.get("/healthz", headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_request_id_is_fresh_per_request(api: Api) -> None:
    ids = {api.client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_request_id_lands_in_the_audit_log(api: Api, engine: Engine) -> None:
    from app.ledger.models import AuditEvent

    response = api.client.post(LOGIN, json={"username": "worker1", "password": PASSWORD},
                               headers={"X-Request-ID": "trace-me-42"})
    assert response.status_code == 200
    with engine.connect() as conn:
        ids = conn.execute(select(col(AuditEvent.request_id)).where(col(AuditEvent.action).like("auth.login%")))
        assert "trace-me-42" in set(ids.scalars())


# --- health ------------------------------------------------------------------------------------------

def test_healthz_ok(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture()
def unreachable_engine(databases: Databases, tmp_path: Path) -> Iterator[Engine]:
    if BACKEND == "postgresql":
        url = databases.url_for(f"{databases.run}_missing")  # never created
        bad = create_engine(url, connect_args={"connect_timeout": 5})
    else:
        bad = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'app.db'}")
    yield bad
    bad.dispose()


def test_healthz_503_when_database_unreachable(api: Api, engine: Engine, unreachable_engine: Engine) -> None:
    use_engine(unreachable_engine)
    try:
        response = api.client.get("/healthz")
        body = assert_error(response, 503, "database_unavailable")
        assert "sqlite" not in response.text.lower() and "postgres" not in response.text.lower()
        zh = api.client.get("/healthz", headers={"Accept-Language": "zh"})
        assert CJK.search(assert_error(zh, 503, "database_unavailable")["message"])
        assert body["message"] != zh.json()["message"]
    finally:
        use_engine(engine)
    assert api.client.get("/healthz").status_code == 200
