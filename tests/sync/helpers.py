"""Calling the sync API as a phone does."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from tests.conftest import Api

V1 = "/api/v1"
PULL = V1 + "/sync/pull"


def pull_raw(api: Api, user: str, last: int | str | None = None, *, device: str = "phone-0001",
             schema_version: int = 1, migration: Any = None, headers: dict[str, str] | None = None) -> Any:
    params: dict[str, Any] = {"schema_version": schema_version, "last_pulled_at": "null" if last is None else last}
    if migration is not None:
        params["migration"] = json.dumps(migration)
    return api.as_(user, "GET", PULL, params=params,
                   headers={"X-Device-Id": device, "X-App-Version": "1.0.0", **(headers or {})})


def pull(api: Api, user: str, last: int | None = None, **kwargs: Any) -> dict[str, Any]:
    response = pull_raw(api, user, last, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any], table: str, kind: str = "updated") -> set[str]:
    items = body["changes"][table][kind]
    return {r["id"] for r in items} if kind == "updated" else set(items)


def rows(engine: Engine, stmt: Any) -> list[Any]:
    with Session(engine) as s:
        return list(s.execute(stmt).all())


__all__ = ["PULL", "V1", "ids", "pull", "pull_raw", "rows"]
