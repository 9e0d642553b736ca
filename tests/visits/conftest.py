"""Fixtures shared by the visit photo tests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import Settings, get_settings
from tests.conftest import Api, World
from tests.factories import post_visit, visit_body
from tests.visits import resident


@pytest.fixture()
def settings() -> Settings:
    return get_settings()


@pytest.fixture()
def visit(api: Api, world: World, engine: Engine) -> dict[str, Any]:
    """A phone visit worker1 recorded on a c1 resident a moment ago."""
    return post_visit(api, visit_body(resident(engine, world), mode="phone", checkin=None))
