"""Fixtures for real-server tests: a fresh migrated database from the suite's template, servers started on it
(killed at teardown whatever happened), and the audit chain checked afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.db import create_db_engine, unit_of_work
from app.ledger.audit import verify_chain
from tests.conftest import Databases
from tests.server.harness import Server

# DB_POOL_SIZE connections per server process on both databases (app/core/db.py), set small to make a burst of
# four times the pool cheap.
POOL_SIZE = 4


@pytest.fixture()
def server_db(databases: Databases) -> Iterator[str]:
    """A copy of the suite's migrated template (the demo world); dropped afterwards."""
    name = f"{databases.run}_srv_{uuid.uuid4().hex[:8]}"
    url = databases.clone_template(name)
    try:
        yield url
    finally:
        databases.drop(name)


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start(url, **env) → a running server; every server started is killed at teardown."""
    started: list[Server] = []

    def start(url: str, **env: str) -> Server:
        server = Server(url, tmp_path, {"DB_POOL_SIZE": str(POOL_SIZE), **env})
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.kill()


def pool_capacity(url: str) -> int:
    return POOL_SIZE


def assert_chain_intact(url: str) -> None:
    engine = create_db_engine(url)
    try:
        with unit_of_work(write=False, engine=engine) as session:
            report = verify_chain(session)
    finally:
        engine.dispose()
    assert report.first_broken_id is None, f"audit chain broken: {report}"
