"""The monthly verification and the register around it: visits as evidence, the remaining error paths, and
verifications that follow a move, a merge and a new arrival made through the register itself."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, World
from tests.cycle.verify_helpers import PERIODS, open_month, record, set_today, verifications
from tests.db import rows
from tests.factories import phone_visit_body, post_visit
from tests.people.wf_helpers import merge, pair


@pytest.fixture(autouse=True)
def _today(monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))


def test_a_visit_as_evidence_and_the_remaining_refusals(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    first, second = verifications(api, "worker1", month="2026-11")[:2]
    visit = post_visit(api, phone_visit_body(first["resident_id"]))
    others = record(api, "worker1", second, "PRESENT", status=422, evidence="visit", visit_id=visit["id"])
    assert others["code"] == "visit_other_resident"
    same = record(api, "worker1", second, "MOVED_WITHIN_CITY", status=422, new_dwelling_id=second["dwelling_id"])
    assert same["code"] == "same_dwelling"
    future = record(api, "worker1", second, "LEFT_CITY", status=422, moved_on="2030-01-01")
    assert future["code"] == "date_out_of_range"
    assert record(api, "worker1", second, "PRESENT", status=422, moved_on=1)["code"] == "date_format"
    assert rows(engine, "SELECT outcome, version FROM verifications WHERE id = :i", i=second["id"]) == [
        {"outcome": None, "version": 1}]
    assert rows(engine, "SELECT status FROM residents WHERE id = :i", i=second["resident_id"]) == [
        {"status": "REGISTERED"}]

    done = record(api, "worker1", first, "PRESENT", evidence="visit", visit_id=visit["id"])
    assert (done["evidence"], done["visit_id"]) == ("visit", visit["id"])
    assert api.as_("sup_street", "GET", f"{PERIODS}/{'0' * 32}").status_code == 404
    assert api.as_("worker1", "GET", f"/api/v1/cycle/verifications/{'0' * 32}").status_code == 404


def test_pending_verifications_follow_a_move_through_the_register(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    pending = verifications(api, "worker1", month="2026-11")[0]
    c2 = world.community("c2")
    version = rows(engine, "SELECT version FROM residents WHERE id = :i", i=pending["resident_id"])[0]["version"]
    moved = api.as_("sup_street", "POST", f"/api/v1/residents/{pending['resident_id']}/move",
                    json={"version": version, "dwelling_id": world.dwellings[c2["id"]][0], "moved_on": "2026-11-04"})
    assert moved.status_code == 200, moved.text
    assert [v["id"] for v in verifications(api, "worker1", resident_id=pending["resident_id"])] == []
    [there] = verifications(api, "worker2", resident_id=pending["resident_id"])
    assert (there["id"], there["community_id"], there["outcome"], there["version"]) == (
        pending["id"], c2["id"], None, 2)
    [period] = api.as_("worker2", "GET", PERIODS, params={"month": "2026-11"}).json()["items"]
    assert there["period_id"] == period["id"] and period["community_id"] == c2["id"]
    assert record(api, "worker2", there, "PRESENT")["outcome"] == "PRESENT"


def test_merged_records_and_new_arrivals(api: Api, world: World, engine: Engine) -> None:
    open_month(api, "2026-11")
    keep, merged = pair(api, world)  # registered while the month is open: each gets a verification at once
    assert len(verifications(api, "worker1", resident_id=keep["id"])) == 1
    assert len(verifications(api, "worker1", resident_id=merged["id"])) == 1
    response = merge(api, keep, merged)
    assert response.status_code == 200, response.text
    assert verifications(api, "worker1", resident_id=merged["id"]) == []
    assert len(verifications(api, "worker1", resident_id=keep["id"])) == 1
    assert rows(engine, "SELECT COUNT(*) AS n FROM sync_log WHERE table_name = 'verifications' AND op = 'delete'"
                ) == [{"n": 1}]
