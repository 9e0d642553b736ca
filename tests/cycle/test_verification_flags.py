"""A verification recorded at a flagged check-in carries the flag (issue 13), through the REST route and the sync
push alike: the list shows and filters it, the exports print it, the phones receive it. And a resident moved to
another community (MOVED_WITHIN_CITY, or a move through the register) leaves the old worker's phone at its next
sync and reaches the new community's worker."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from sqlalchemy import Engine

from app.core.types import city_today
from tests.assertions import ok
from tests.conftest import Api, World
from tests.cycle.verify_helpers import VERIFICATIONS, open_month, record, verifications
from tests.db import rows
from tests.factories import dwelling_id, post_visit, visit_body
from tests.sync.helpers import ids, pull
from tests.sync.push_helpers import push
from tests.visits import resident

MONTH = f"{city_today():%Y-%m}"  # the visits are recorded now, so the month is this one


def flagged_visit(api: Api, who: dict[str, Any]) -> dict[str, Any]:
    """An in-person visit checked in 5 km from the dwelling with a mock location: two flags."""
    body = visit_body(who)
    body["checkin"] = {**body["checkin"], "lat": who["lat"] + 0.05, "mock_location": True}
    visit = post_visit(api, body)
    assert visit["flags"] == ["outside_radius", "mock_location"]  # the visit's own order
    return visit


def pending_of(api: Api, resident_id: str, user: str = "worker1") -> dict[str, Any]:
    [found] = [v for v in verifications(api, user, resident_id=resident_id, month=MONTH) if v["outcome"] is None]
    return found


def test_a_flagged_check_in_travels_with_the_verification(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    flagged, clean, phoned = (resident(engine, world, skip=n) for n in range(3))
    done = record(api, "worker1", pending_of(api, flagged["id"]), "PRESENT", evidence="visit",
                  visit_id=flagged_visit(api, flagged)["id"])
    assert done["checkin_flags"] == ["mock_location", "outside_radius"]  # sorted codes
    quiet = post_visit(api, visit_body(clean))
    assert quiet["flags"] == []
    assert record(api, "worker1", pending_of(api, clean["id"]), "PRESENT", evidence="visit",
                  visit_id=quiet["id"])["checkin_flags"] == []
    assert record(api, "worker1", pending_of(api, phoned["id"]), "PRESENT")["checkin_flags"] == []
    [stored] = rows(engine, "SELECT checkin_flags FROM verifications WHERE id = :i", i=done["id"])
    assert stored["checkin_flags"] == '["mock_location","outside_radius"]'

    # The supervisor's list filters by it, in both directions.
    assert [v["id"] for v in verifications(api, "sup_street", month=MONTH, flagged="true")] == [done["id"]]
    unflagged = {v["id"] for v in verifications(api, "sup_street", month=MONTH, flagged="false", pending="false")}
    assert done["id"] not in unflagged and len(unflagged) == 2
    assert api.as_("sup_street", "GET", VERIFICATIONS, params={"flagged": "maybe"}).status_code == 422

    # The exports print it: the XLSX in Chinese, the CSV with the codes too.
    table = list(csv.reader(io.StringIO(api.as_("worker1", "GET", f"{VERIFICATIONS}.csv", params={
        "month": MONTH, "flagged": "true"}).content.decode("utf-8-sig"))))
    assert table[0][-2:] == ["打卡异常", "打卡异常代码"]
    assert [r[-2:] for r in table[1:]] == [["模拟定位、超出住所范围", "mock_location;outside_radius"]]
    book = openpyxl.load_workbook(io.BytesIO(api.as_("worker1", "GET", f"{VERIFICATIONS}.xlsx", params={
        "month": MONTH, "pending": "false"}).content))
    printed = [list(r) for r in book["月核查名单"].iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert sorted(r[13] or "" for r in printed) == ["", "", "模拟定位、超出住所范围"]

    # The phone receives the flags as a string column (like visits.flags).
    body = pull(api, "worker1", schema_version=3)
    [raw] = [v for v in body["changes"]["verifications"]["updated"] if v["id"] == done["id"]]
    assert raw["checkin_flags"] == '["mock_location","outside_radius"]'


def test_a_pushed_outcome_at_a_flagged_visit_carries_the_flag(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    who = resident(engine, world)
    visit = flagged_visit(api, who)
    body = pull(api, "worker1", schema_version=3)
    [raw] = [v for v in body["changes"]["verifications"]["updated"] if v["resident_id"] == who["id"]]
    # The phone's own idea of the server's columns is ignored: the server copies the visit's flags.
    change = {**raw, "outcome": "PRESENT", "evidence": "visit", "visit_id": visit["id"], "checkin_flags": "[]",
              "_status": "updated", "_changed": "outcome,evidence,visit_id,checkin_flags"}
    result = push(api, "worker1", {"verifications": {"created": [], "deleted": [], "updated": [change]}},
                  body["timestamp"])
    assert (result["rejected"], result["applied"]) == ([], {"verifications": 1})
    assert ok(api.as_("worker1", "GET", f"{VERIFICATIONS}/{raw['id']}"))["checkin_flags"] == [
        "mock_location", "outside_radius"]
    later = pull(api, "worker1", body["timestamp"], schema_version=3)
    [back] = [v for v in later["changes"]["verifications"]["updated"] if v["id"] == raw["id"]]
    assert back["checkin_flags"] == '["mock_location","outside_radius"]'


def test_a_moved_resident_leaves_the_old_workers_phone(api: Api, world: World, engine: Engine) -> None:
    """MOVED_WITHIN_CITY from c1 to c2 (recorded by the street supervisor, whose area holds both): worker1's next
    pull deletes the resident; their recorded verification stays on worker1's phone as c1's history of the month
    (it counts in c1's report), and the pending one opened in c2 never reaches it. worker2 receives both."""
    open_month(api, MONTH)
    moving, carried = resident(engine, world, skip=0), resident(engine, world, skip=1)
    old = pull(api, "worker1", schema_version=3, device="old-phone-01")
    new = pull(api, "worker2", schema_version=3, device="new-phone-01")
    before = pending_of(api, moving["id"])
    assert before["id"] in ids(old, "verifications") and moving["id"] in ids(old, "residents")
    assert moving["id"] not in ids(new, "residents")
    done = record(api, "sup_street", before, "MOVED_WITHIN_CITY", new_dwelling_id=dwelling_id(world, "c2"))
    # A move through the register takes the pending verification along (no outcome recorded).
    version = rows(engine, "SELECT version FROM residents WHERE id = :i", i=carried["id"])[0]["version"]
    ok(api.as_("sup_street", "POST", f"/api/v1/residents/{carried['id']}/move", json={
        "version": version, "dwelling_id": dwelling_id(world, "c2", 1),
        "moved_on": city_today().isoformat()}))
    carried_v = pending_of(api, carried["id"], "worker2")

    later = pull(api, "worker1", old["timestamp"], schema_version=3, device="old-phone-01")
    assert {moving["id"], carried["id"]} <= ids(later, "residents", "deleted")
    assert carried_v["id"] in ids(later, "verifications", "deleted")
    assert done["id"] in ids(later, "verifications")  # recorded in c1: c1's month, kept as history
    handed = pending_of(api, moving["id"], "worker2")
    assert handed["id"] != done["id"] and handed["id"] not in ids(later, "verifications") | ids(
        later, "verifications", "deleted")
    there = pull(api, "worker2", new["timestamp"], schema_version=3, device="new-phone-01")
    assert {moving["id"], carried["id"]} <= ids(there, "residents")
    assert {handed["id"], carried_v["id"]} <= ids(there, "verifications")
    assert done["id"] not in ids(there, "verifications")
