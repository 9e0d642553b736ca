"""Sync under hostile input (issue 11, items 2, 3 and 11b): cursors are ASCII digits, JSON nesting is bounded
before anything parses it, and a push always names the pull it follows."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy import Engine, select

from app.core.inputs import JSON_MAX_DEPTH
from app.people.models import Resident
from app.visits.models import Visit
from tests.conftest import Api, World
from tests.sync.helpers import PULL, pull_raw, rows
from tests.sync.push_helpers import PUSH, changes, codes, cursor, push, push_raw, visit_raw, wid

HEADERS = {"X-Device-Id": "phone-0001", "Content-Type": "application/json"}
# Digits a cursor must not be read from: str.isdigit() is true for all of them, and int() reads all but "²".
NOT_ASCII_DIGITS = ["²", "١٢", "۱۲", "１２", "१२", "৭", "1²", " 12", "12 ", "+12", "1_2", "0x1", "1e3", "1" * 19]


def code(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["code"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", NOT_ASCII_DIGITS)
def test_pull_cursor_is_ascii_digits_only(api: Api, raw: str) -> None:
    assert code(pull_raw(api, "worker1", raw)) == (422, "cursor_invalid")


@pytest.mark.parametrize("raw", NOT_ASCII_DIGITS)
def test_push_cursor_is_ascii_digits_only(api: Api, engine: Engine, raw: str) -> None:
    cursor(api, "worker1")
    before = rows(engine, select(Resident.id))
    assert code(push_raw(api, "worker1", changes(residents={}), raw)) == (422, "cursor_invalid")
    assert rows(engine, select(Resident.id)) == before


@pytest.mark.parametrize("raw", [None, "", "null", "undefined", "0", "000"])
def test_push_without_a_cursor_is_refused(api: Api, raw: str | None) -> None:
    """docs/sync.md: a push always follows a pull, so a missing, null or zero cursor is 422 cursor_invalid."""
    cursor(api, "worker1")
    assert code(push_raw(api, "worker1", changes(residents={}), raw)) == (422, "cursor_invalid")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 1_500, 9_900])  # the parameter holds 20,000 characters
def test_deep_migration_is_migration_invalid(api: Api, depth: int) -> None:
    last = cursor(api, "worker1")
    migration = '{"from": 1, "tables": [], "columns": ' + nested(depth) + "}"
    response = api.as_("worker1", "GET", PULL, params={"schema_version": 1, "last_pulled_at": last,
                                                        "migration": migration}, headers=HEADERS)
    assert code(response) == (422, "migration_invalid")


def test_migration_at_the_depth_limit_is_read(api: Api) -> None:
    last = cursor(api, "worker1")
    ok = {"from": 1, "tables": ["residents"], "columns": [{"table": "visits", "columns": ["x"]}]}
    assert pull_raw(api, "worker1", last, migration=ok).status_code == 200


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 1_500, 100_000])
@pytest.mark.parametrize("compressed", [False, True])
def test_deep_push_body_is_refused_before_parsing(api: Api, engine: Engine, depth: int, compressed: bool) -> None:
    last = cursor(api, "worker1")
    content = b'{"changes": {"residents": {"created": [], "updated": [], "deleted": []}}, "x": ' \
        + nested(depth).encode() + b"}"
    headers = {**HEADERS, **({"Content-Encoding": "gzip"} if compressed else {})}
    response = api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last},
                       content=gzip.compress(content) if compressed else content, headers=headers)
    assert code(response) == (422, "json_too_deep")
    assert response.json()["details"] == {"max_depth": JSON_MAX_DEPTH}


def test_brackets_inside_strings_are_not_nesting(api: Api, world: World, engine: Engine) -> None:
    last = cursor(api, "worker1")
    who = str(rows(engine, select(Resident.id).where(
        Resident.area_path.startswith(world.community("c1")["path"])))[0][0])
    visit_id = wid()
    raw = {"changes": changes(visits={"created": [visit_raw(visit_id, who)]}), "note": "[" * 5_000}
    response = api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=json.dumps(raw),
                       headers=HEADERS)
    assert response.status_code == 200, response.text
    assert rows(engine, select(Visit.id).where(Visit.id == visit_id))


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH + 1, 1_500])
def test_deep_json_inside_a_record_value_refuses_only_that_record(api: Api, world: World, engine: Engine,
                                                                  depth: int) -> None:
    """A visit's `notes` travel as a JSON string the server parses: its depth is bounded too (a 500 before)."""
    last = cursor(api, "worker1")
    who = str(rows(engine, select(Resident.id).where(
        Resident.area_path.startswith(world.community("c1")["path"])))[0][0])
    good, bad = wid(), wid()
    body = push(api, "worker1", changes(visits={"created": [
        visit_raw(good, who), visit_raw(bad, who, notes=nested(depth))]}), last)
    assert codes(body) == {bad: "record_invalid"}
    assert rows(engine, select(Visit.id).where(Visit.id == good))
    assert not rows(engine, select(Visit.id).where(Visit.id == bad))
