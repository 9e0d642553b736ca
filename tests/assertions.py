"""The one place for response assertions shared by the tests (docs/CONVENTIONS.md, "Tests")."""

from __future__ import annotations

import re
from typing import Any

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error of this status in the one error shape, `{"code", "message", "details"}`, with a
    snake_case code (this one, when given) and a message; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and SNAKE.match(body["code"]), body
    assert isinstance(body["message"], str) and body["message"], body
    if code is not None:
        assert body["code"] == code, body
    return dict(body)


def ok(response: Any, status: int = 200) -> Any:
    """The response has this (success) status; returns its JSON."""
    assert response.status_code == status, response.text
    return response.json()
