"""The whole API under hostile input (issue 11, items 3, 11c and 11d): deep JSON in any body, enum values in
messages, dates written as text. Each sweep reads the routes from the app, so a new one is covered too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.inputs import JSON_MAX_DEPTH
from app.main import app
from tests.conftest import PASSWORD, Api, World
from tests.db import count
from tests.factories import visit_body
from tests.visits import resident

V1 = "/api/v1"
LOGIN = f"{V1}/auth/login"


def code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- deep JSON in an ordinary body (FastAPI's own parsing) -------------------------------------------------


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 100, 900, 1_500, 100_000])
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/merge-patch+json"])
def test_deep_json_body_is_422_before_parsing(api: Api, depth: int, content_type: str) -> None:
    """Before: 422 validation_error below ~950 levels, 400 bad_request above (the parser's RecursionError)."""
    content = '{"username": "worker1", "password": ' + nested(depth) + "}"
    response = api.client.post(LOGIN, content=content, headers={"Content-Type": content_type})
    assert code(response) == (422, "json_too_deep")
    assert response.json()["details"] == {"max_depth": JSON_MAX_DEPTH}


def test_deep_json_on_an_authenticated_write_changes_nothing(api: Api, world: World, engine: Engine) -> None:
    before = count(engine, "visits")
    body = json.dumps(visit_body(resident(engine, world))).replace('"notes": [', '"notes": ' + "[" * 1_500, 1)
    response = api.as_("worker1", "POST", f"{V1}/visits", content=body, headers={"Content-Type": "application/json"})
    assert code(response) == (422, "json_too_deep")
    assert count(engine, "visits") == before


def test_json_at_the_depth_limit_is_validated_as_usual(api: Api) -> None:
    content = '{"username": "worker1", "password": ' + nested(JSON_MAX_DEPTH - 1) + "}"
    response = api.client.post(LOGIN, content=content, headers={"Content-Type": "application/json"})
    assert code(response) == (422, "validation_error")
    assert response.json()["details"][0]["loc"] == ["body", "password"]


def test_brackets_in_strings_do_not_count(api: Api) -> None:
    response = api.client.post(LOGIN, json={"username": "[" * 5_000, "password": "{" * 200})
    assert code(response) == (422, "validation_error")  # too long a name, not too deep


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_chunked_bodies_are_read_whole_and_checked(api: Api) -> None:
    """Without Content-Length the body is counted as it streams: the limit and the depth still hold."""
    headers = {"Content-Type": "application/json"}
    good = json.dumps({"username": "worker1", "password": PASSWORD}).encode()
    assert api.client.post(LOGIN, content=_chunks(good, 7), headers=headers).status_code == 200
    deep = ('{"username": "worker1", "password": ' + nested(2_000) + "}").encode()
    assert code(api.client.post(LOGIN, content=_chunks(deep), headers=headers)) == (422, "json_too_deep")
    huge = b'{"username": "' + b"x" * 2_000_000 + b'"}'
    assert code(api.client.post(LOGIN, content=_chunks(huge, 65_536), headers=headers)) == (413, "body_too_large")


# --- enum values in messages ---------------------------------------------------------------------------------


def test_validation_messages_show_allowed_values_plainly(api: Api) -> None:
    response = api.as_("admin", "POST", f"{V1}/users", json={
        "username": "newperson", "display_name": "x", "role": "landlord", "password": "Night-Shift-Visit-42"})
    assert response.status_code == 422
    [detail] = [d for d in response.json()["details"] if d["loc"] == ["body", "role"]]
    assert "<" not in detail["message"] and "Role." not in detail["message"], detail
    assert all(f"'{role}'" in detail["message"] for role in ("worker", "supervisor", "admin", "auditor"))


def test_no_validation_message_names_a_python_enum(api: Api) -> None:
    """Every enum-typed query parameter, given a value it does not take."""
    for path, method, name in _query_params(lambda schema: "enum" in json.dumps(schema)):
        response = api.as_("admin" if "audit" not in path else "auditor", method, _concrete(path),
                           params={name: "not-a-member"})
        if response.status_code == 422:
            assert "<" not in response.text and "Enum" not in response.text, (path, name, response.text)


# --- dates and times as ISO text ----------------------------------------------------------------------------

SPEC = app.openapi()


def _schema_format(schema: dict[str, Any]) -> str | None:
    if "format" in schema:
        return str(schema["format"])
    return next((f for s in schema.get("anyOf", []) if (f := _schema_format(s))), None)


def _query_params(match: Any) -> Iterator[tuple[str, str, str]]:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] == "query" and match(param.get("schema", {})):
                    yield path, method.upper(), param["name"]


def _concrete(path: str) -> str:
    return path.replace("{", "").replace("}", "")  # any id: parameters are checked before the lookup


DATE_PARAMS = sorted(_query_params(lambda s: _schema_format(s) == "date"))
DATETIME_PARAMS = sorted(_query_params(lambda s: _schema_format(s) == "date-time"))


def test_the_sweep_finds_the_date_parameters() -> None:
    assert {(p, n) for p, _, n in DATE_PARAMS} >= {(f"{V1}/visits", "from"), (f"{V1}/visits", "to"),
                                                   (f"{V1}/catalog", "on"), (f"{V1}/tasks", "due_from")}
    assert {(p, n) for p, _, n in DATETIME_PARAMS} >= {(f"{V1}/audit/events", "since")}


SUPERVISED = (f"{V1}/audit/quality", f"{V1}/audit/activity", f"{V1}/audit/pictures")
# Query parameters a route requires besides the date (any value: the date is checked first or alone).
REQUIRED = {f"{V1}/audit/pictures/worker-day": {"worker_id": "x"}}


def _caller(path: str) -> str:
    if path.startswith(SUPERVISED):
        return "sup_district"
    return "auditor" if path.startswith(f"{V1}/audit") else "worker1"


@pytest.mark.parametrize(("path", "method", "name"), DATE_PARAMS)
@pytest.mark.parametrize("value", ["0", "1", "1700000000", "20260501", "2026-05-01T00:00:00", "2026-5-1",
                                   "٢٠٢٦-٠٥-٠١", "２０２６-05-01", "2026-W18-5", " 2026-05-01"])
def test_date_query_parameters_take_yyyy_mm_dd_only(api: Api, path: str, method: str, name: str,
                                                    value: str) -> None:
    response = api.as_(_caller(path), method, _concrete(path), params={**REQUIRED.get(path, {}), name: value})
    assert code(response) == (422, "date_format"), (path, name, value, response.text)


@pytest.mark.parametrize(("path", "method", "name"), DATE_PARAMS)
def test_date_query_parameters_still_take_dates(api: Api, path: str, method: str, name: str) -> None:
    extra = REQUIRED.get(path, {})
    response = api.as_(_caller(path), method, _concrete(path), params={**extra, name: "2026-05-01"})
    assert response.status_code in (200, 404), (path, name, response.text)  # 404: the made-up id
    assert code(api.as_(_caller(path), method, _concrete(path), params={**extra, name: "2026-02-30"}))[0] == 422


@pytest.mark.parametrize(("path", "method", "name"), DATETIME_PARAMS)
@pytest.mark.parametrize("value", ["0", "1700000000", "1e20", "-99999999999999", "now", "２０２６-05-01T00:00:00Z"])
def test_datetime_query_parameters_take_iso_text_only(api: Api, path: str, method: str, name: str,
                                                      value: str) -> None:
    response = api.as_(_caller(path), method, _concrete(path), params={name: value})
    assert code(response) == (422, "datetime_format"), (path, name, value, response.text)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("arrival_date", 0, "date_format"), ("arrival_date", 1_700_000_000, "date_format"),
    ("arrival_date", "2026-10-01T00:00:00", "date_format"), ("birth_date", 0, "date_format"),
])
def test_body_dates_are_text_too(api: Api, world: World, engine: Engine, field: str, value: Any,
                                 expected: str) -> None:
    before = count(engine, "residents")
    body = {"name": "张丽", "id_number": "411602199003150025", "hukou_code": "411602", "arrival_date": "2026-10-01",
            "dwelling_id": world.dwellings[world.community("c1")["id"]][0], field: value}
    assert code(api.as_("worker1", "POST", f"{V1}/residents", json=body)) == (422, expected)
    assert count(engine, "residents") == before


@pytest.mark.parametrize("value", [0, 1_790_000_000, "1790000000"])
def test_body_times_are_text_too(api: Api, world: World, engine: Engine, value: Any) -> None:
    before = count(engine, "visits")
    body = visit_body(resident(engine, world), started_at=value)
    assert code(api.as_("worker1", "POST", f"{V1}/visits", json=body)) == (422, "datetime_format")
    assert count(engine, "visits") == before
