"""Periods and verifications over the sync API (schema version 2): what a pull carries, the window that ages
old months out as deletions, a push that goes through the REST route's rules, and older apps (version 1)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from app.sync import pull as pull_module
from app.sync.wire import date_to_ms
from tests.conftest import Api, World
from tests.cycle.verify_helpers import open_month, set_today, verifications
from tests.db import rows
from tests.sync.helpers import ids, pull
from tests.sync.push_helpers import push


def today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    set_today(monkeypatch, day)
    monkeypatch.setattr(pull_module, "city_today", lambda: day)


def test_pull_carries_the_window_and_ages_months_out(api: Api, world: World, engine: Engine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    district = world.community("c1")["district_code"]
    today(monkeypatch, date(2026, 9, 3))
    open_month(api, "2026-09", district_code=district)
    first = pull(api, "worker1", schema_version=2)
    september = {v["id"] for v in verifications(api, "worker1", month="2026-09")}
    assert ids(first, "verifications") == september != set()
    [period] = first["changes"]["periods"]["updated"]
    assert (period["month"], period["state"]) == ("2026-09", "open") and "area_path" not in period
    record = first["changes"]["verifications"]["updated"][0]
    assert record["outcome"] is None and isinstance(record["created_at"], int) and "district_code" not in record
    # Someone else's district is not on the phone.
    assert not ids(first, "verifications") & {v["id"] for v in verifications(api, "worker3")}

    cursor = first["timestamp"]
    for month, day in (("2026-10", date(2026, 10, 3)), ("2026-11", date(2026, 11, 3)), ("2026-12", date(2026, 12, 3))):
        today(monkeypatch, day)
        open_month(api, month, district_code=district)
    latest = pull(api, "worker1", cursor, schema_version=2)
    kept = {v["id"] for m in ("2026-10", "2026-11", "2026-12") for v in verifications(api, "worker1", month=m)}
    assert ids(latest, "verifications") == kept
    # September left the window (SYNC_WINDOW_MONTHS = 3): its records arrive as deletions.
    assert ids(latest, "verifications", "deleted") == september
    assert ids(latest, "periods", "deleted") == {period["id"]}
    assert {p["month"] for p in latest["changes"]["periods"]["updated"]} == {"2026-10", "2026-11", "2026-12"}


def test_push_records_through_the_rest_rules(api: Api, world: World, engine: Engine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    today(monkeypatch, date(2026, 11, 5))
    open_month(api, "2026-11")
    body = pull(api, "worker1", schema_version=2)
    held = sorted(body["changes"]["verifications"]["updated"], key=lambda v: v["id"])
    present, gone, bad, far = held[0], held[1], held[2], verifications(api, "worker3")[0]

    def changed(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {**raw, **fields, "_status": "updated", "_changed": ",".join(fields)}

    changes = {"verifications": {"created": [], "deleted": [], "updated": [
        changed(present, outcome="PRESENT", evidence="visit", visit_id=None),
        changed(gone, outcome="RETURNED_HOME", evidence="phone", moved_on=date_to_ms(date(2026, 11, 1))),
        changed(bad, outcome="SOMEWHERE", evidence="phone"),
        {**changed(present, outcome="PRESENT", evidence="phone"), "id": far["id"]},
    ]}, "periods": {"created": [], "deleted": [], "updated": [{**body["changes"]["periods"]["updated"][0],
                                                                "state": "closed", "_status": "updated"}]}}
    result = push(api, "worker1", changes, body["timestamp"])
    refused = {(r["table"], r["id"]): r["code"] for r in result["rejected"]}
    assert refused == {("verifications", present["id"]): "evidence_missing",
                       ("verifications", bad["id"]): "record_invalid",
                       ("verifications", far["id"]): "not_found",
                       ("periods", body["changes"]["periods"]["updated"][0]["id"]): "read_only_table"}
    assert result["applied"] == {"verifications": 1}
    [stored] = rows(engine, "SELECT outcome, evidence, moved_on, verified_by, version FROM verifications "
                            "WHERE id = :i", i=gone["id"])
    assert (stored["outcome"], stored["evidence"], str(stored["moved_on"])) == ("RETURNED_HOME", "phone",
                                                                                 "2026-11-01")
    assert (stored["verified_by"], stored["version"]) == (world.users["worker1"], 2)
    assert rows(engine, "SELECT status, left_reason FROM residents WHERE id = :i", i=gone["resident_id"]) == [
        {"status": "LEFT", "left_reason": "returned_home"}]

    # The same push again changes nothing; a stale copy of a recorded verification is refused, not applied.
    again = push(api, "worker1", {"verifications": {"created": [], "deleted": [], "updated": [
        changed(gone, outcome="RETURNED_HOME", evidence="phone", moved_on=date_to_ms(date(2026, 11, 1)))]}},
                 body["timestamp"])
    assert (again["rejected"], again["applied"], again["unchanged"]) == ([], {}, 1)
    stale = push(api, "worker1", {"verifications": {"created": [], "deleted": [gone["id"]], "updated": [
        changed(gone, outcome="PRESENT", evidence="phone")]}}, body["timestamp"])
    assert {(r["id"], r["code"]) for r in stale["rejected"]} == {(gone["id"], "stale_version"),
                                                                  (gone["id"], "delete_not_allowed")}
    # The resident who left leaves the phone at its next pull; their recorded verification stays.
    later = pull(api, "worker1", body["timestamp"], schema_version=2)
    assert gone["resident_id"] in ids(later, "residents", "deleted")
    assert gone["id"] in ids(later, "verifications")


def test_older_apps_and_the_migrations_to_versions_2_and_3(api: Api, world: World,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    today(monkeypatch, date(2026, 11, 5))
    open_month(api, "2026-11")
    old = pull(api, "worker1", schema_version=1)
    assert "verifications" not in old["changes"] and "periods" not in old["changes"]
    migrated = pull(api, "worker1", old["timestamp"], schema_version=2,
                    migration={"from": 1, "tables": ["periods", "verifications"], "columns": []})
    assert ids(migrated, "verifications") == {v["id"] for v in verifications(api, "worker1")} != set()
    assert len(migrated["changes"]["periods"]["updated"]) == 1
    assert migrated["changes"]["residents"]["updated"] == []
    # Version 3 adds columns to verifications (check-in flags, a partner's proposal): the phone's migration names
    # them and the pull sends the table in full again, with the new columns.
    added = ["checkin_flags", "proposed_outcome", "proposed_source", "proposed_on", "proposed_at", "proposed_by"]
    third = pull(api, "worker1", migrated["timestamp"], schema_version=3,
                 migration={"from": 2, "tables": [], "columns": [{"table": "verifications", "columns": added}]})
    assert ids(third, "verifications") == ids(migrated, "verifications")
    assert third["changes"]["periods"]["updated"] == [] and third["changes"]["residents"]["updated"] == []
    assert all(set(added) <= set(v) for v in third["changes"]["verifications"]["updated"])


def test_a_grid_worker_sees_their_community_period(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    today(monkeypatch, date(2026, 11, 5))
    open_month(api, "2026-11")
    c1 = world.community("c1")
    [period] = api.as_("grid_worker", "GET", "/api/v1/cycle/periods").json()["items"]
    assert period["community_id"] == c1["id"]
    progress = period["progress"]  # counted over the grid worker's own area
    assert progress["total"] == len(verifications(api, "grid_worker")) < len(verifications(api, "worker1"))
    assert api.as_("grid_worker", "GET", f"/api/v1/cycle/periods/{period['id']}").status_code == 200
    other = api.as_("worker2", "GET", "/api/v1/cycle/periods").json()["items"]
    assert api.as_("grid_worker", "GET", f"/api/v1/cycle/periods/{other[0]['id']}").status_code == 404

    first = pull(api, "grid_worker", schema_version=2, device="grid-phone-01")
    assert [p["id"] for p in first["changes"]["periods"]["updated"]] == [period["id"]]
    closed = api.as_("sup_street", "POST", f"/api/v1/cycle/periods/{period['id']}/close",
                     json={"version": period["version"]})
    assert closed.status_code == 200, closed.text
    later = pull(api, "grid_worker", first["timestamp"], schema_version=2, device="grid-phone-01")
    assert [(p["id"], p["state"]) for p in later["changes"]["periods"]["updated"]] == [(period["id"], "closed")]
