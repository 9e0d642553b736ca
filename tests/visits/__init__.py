"""Helpers for the visit tests: demo residents with located dwellings, client ids, visit rows (visit bodies are
in tests/factories.py)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from tests.conftest import World
from tests.db import rows

API = "/api/v1"
VISITS = f"{API}/visits"
_seq = itertools.count(1)

# Who sees a c1 resident's visits, and who does not.
SEES_C1 = ("worker1", "sup_street", "sup_district", "admin")
BLIND_TO_C1 = ("worker2", "worker3", "sup_other")


def resident(engine: Engine, world: World, community: str = "c1", skip: int = 0, status: str = "REGISTERED",
             located: bool = True) -> dict[str, Any]:
    """A demo resident of the community with their dwelling's coordinates."""
    c = world.community(community)
    located_sql = "d.lat IS NOT NULL" if located else "d.lat IS NULL"
    found = rows(engine, f"SELECT r.id, r.dwelling_id, r.area_path, d.lat, d.lng FROM residents r "  # noqa: S608
                         f"JOIN dwellings d ON d.id = r.dwelling_id WHERE r.community_id = :c AND r.status = :s "
                         f"AND r.merged_into_id IS NULL AND {located_sql} ORDER BY r.id",
                 c=c["id"], s=status)
    return found[skip]


def now() -> datetime:
    return datetime.now(UTC)


def client_id() -> str:
    return uuid.uuid4().hex[:20] + f"-{next(_seq):06d}"


def visit_row(engine: Engine, visit_id: str) -> dict[str, Any]:
    return rows(engine, "SELECT * FROM visits WHERE id = :v", v=visit_id)[0]


