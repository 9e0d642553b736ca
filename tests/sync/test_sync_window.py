"""The sync window (docs/sync.md "The sync window"): a phone keeps the visits of the last SYNC_VISIT_MONTHS months
and open tasks; what leaves the window arrives as deletions, and an old visit pushed late is stored but not
sent back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.types import city_today
from app.cycle.verification.opening import first_day, shift
from app.sync import pull as pull_module
from app.sync.wire import date_to_ms, to_ms
from tests.conftest import Api, World
from tests.cycle.verify_helpers import open_month, set_today
from tests.db import rows
from tests.sync.helpers import ids, pull
from tests.sync.push_helpers import changes, delivery_raw, push, visit_raw, wid

SYNC_LOG_AGED = "SELECT count(*) AS n FROM sync_log WHERE fields = 'sync_window'"


def clock(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """The city date the pull's window and the cycle's opening read."""
    set_today(monkeypatch, day)
    monkeypatch.setattr(pull_module, "city_today", lambda: day)


def month(day: date) -> str:
    return day.isoformat()[:7]


def own_resident(engine: Engine, world: World, community: str = "c1") -> str:
    return str(rows(engine, "SELECT id FROM residents WHERE area_path LIKE :p AND status = 'REGISTERED' "
                            "ORDER BY id LIMIT 1", p=world.community(community)["path"] + "%")[0]["id"])


def push_visits(api: Api, resident: str, ages: list[int], last: int,
                user: str = "worker1") -> list[tuple[str, str, date]]:
    """Visits started `ages` days ago (real time: pushes check their age), each with one delivery."""
    made, visits, deliveries = [], [], []
    for days in ages:
        started = datetime.now(UTC) - timedelta(days=days)
        visit, delivery = wid(), wid()
        visits.append(visit_raw(visit, resident, started_at=to_ms(started),
                                ended_at=to_ms(started + timedelta(minutes=5))))
        deliveries.append(delivery_raw(delivery, visit))
        made.append((visit, delivery, city_today() - timedelta(days=days)))
    body = push(api, user, changes(visits={"created": visits}, service_deliveries={"created": deliveries}), last)
    assert body["rejected"] == [] and body["applied"] == {"visits": len(ages), "service_deliveries": len(ages)}
    return made


def apply(store: dict[str, set[str]], body: dict[str, Any]) -> None:
    """What WatermelonDB does with a pull: upsert `updated`, drop `deleted`."""
    for table in ("visits", "service_deliveries", "tasks"):
        store.setdefault(table, set())
        store[table] |= ids(body, table)
        store[table] -= ids(body, table, "deleted")


def held(body: dict[str, Any]) -> dict[str, set[str]]:
    store: dict[str, set[str]] = {}
    apply(store, body)
    return store


def test_the_window_caps_the_first_pull_and_ages_out_across_a_month(
        api: Api, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = own_resident(engine, world)
    last = pull(api, "worker1", device="phone-seed1")["timestamp"]
    # 85, 40 and 5 days old: three different months (a month is at most 31 days).
    (old, old_d, _), (mid, mid_d, mid_day), (new, new_d, _) = push_visits(api, resident, [85, 40, 5], last)
    n = get_settings().sync_visit_months
    # The window starts with the middle visit's month: the oldest is outside it.
    inside = first_day(shift(month(mid_day), n - 1))
    clock(monkeypatch, inside + timedelta(days=27))
    first = pull(api, "worker1", device="phone-aaaa")
    assert {mid, new} <= ids(first, "visits") and old not in ids(first, "visits")
    assert {mid_d, new_d} <= ids(first, "service_deliveries") and old_d not in ids(first, "service_deliveries")
    since = pull_module.Window.now().visits_since
    assert all(v["started_at"] >= to_ms(since) for v in first["changes"]["visits"]["updated"])
    # A larger window takes the old visit too (it is stored: the window only shapes what phones keep).
    monkeypatch.setattr(get_settings(), "sync_visit_months", n + 3)
    assert old in ids(pull(api, "worker1", device="phone-bbbb"), "visits")
    monkeypatch.setattr(get_settings(), "sync_visit_months", n)

    # The month changes; the daily cycle-open logs what left the window, and the incremental pull deletes it.
    phone = held(first)
    later = first_day(shift(month(mid_day), n))
    clock(monkeypatch, later)
    # A pull before that day's cycle-open keeps the month that left (docs/sync.md: nothing logged it yet) ...
    gap = pull(api, "worker1", first["timestamp"], device="phone-aaaa")
    assert mid not in ids(gap, "visits", "deleted")
    apply(phone, gap)
    open_month(api, month(later))
    aged = rows(engine, SYNC_LOG_AGED)[0]["n"]
    assert aged > 0
    # ... and the next one, after it, deletes it.
    step = pull(api, "worker1", gap["timestamp"], device="phone-aaaa")
    assert {mid} <= ids(step, "visits", "deleted") and {mid_d} <= ids(step, "service_deliveries", "deleted")
    assert new not in ids(step, "visits", "deleted")
    apply(phone, step)
    # Exactly the window: what a phone starting now would get, no stale row kept, none missing.
    assert phone == held(pull(api, "worker1", device="phone-cccc"))
    assert new in phone["visits"] and mid not in phone["visits"] and new_d in phone["service_deliveries"]
    # Opening again the same day (it runs daily) logs nothing more, and the next pull is quiet.
    open_month(api, month(later))
    assert rows(engine, SYNC_LOG_AGED)[0]["n"] == aged
    quiet = pull(api, "worker1", step["timestamp"], device="phone-aaaa")
    assert not ids(quiet, "visits", "deleted") and not ids(quiet, "visits")


def test_a_district_aged_first_does_not_hide_the_others(
        api: Api, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cycle-open --district` ages its own district's visits only; the city-wide run then ages the others
    and logs nothing twice."""
    made = {}
    for user, community in (("worker1", "c1"), ("worker3", "c3")):
        last = pull(api, user, device="phone-seed1")["timestamp"]
        made[user] = push_visits(api, own_resident(engine, world, community), [40], last, user)[0]
    cursors = {user: pull(api, user, device="phone-dddd")["timestamp"] for user in made}
    later = first_day(shift(month(made["worker1"][2]), get_settings().sync_visit_months))
    clock(monkeypatch, later)

    def marks(user: str) -> int:
        return int(rows(engine, SYNC_LOG_AGED + " AND record_id = :i", i=made[user][0])[0]["n"])

    open_month(api, month(later), district_code=world.community("c1")["district_code"])
    assert (marks("worker1"), marks("worker3")) == (1, 0)
    open_month(api, month(later))
    assert (marks("worker1"), marks("worker3")) == (1, 1)
    for user, (visit, delivery, _) in made.items():
        step = pull(api, user, cursors[user], device="phone-dddd")
        assert visit in ids(step, "visits", "deleted") and delivery in ids(step, "service_deliveries", "deleted")


def test_an_old_visit_pushed_late_is_stored_but_not_sent_back(
        api: Api, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = own_resident(engine, world)
    # The clock sits where an 80-day-old visit is already outside the window (a phone offline for long).
    old_day = city_today() - timedelta(days=80)
    clock(monkeypatch, first_day(shift(month(old_day), get_settings().sync_visit_months)))
    last = pull(api, "worker1")["timestamp"]
    [(visit, delivery, _)] = push_visits(api, resident, [80], last)
    assert rows(engine, "SELECT count(*) AS n FROM visits WHERE id = :i", i=visit)[0]["n"] == 1
    assert rows(engine, "SELECT count(*) AS n FROM service_deliveries WHERE id = :i", i=delivery)[0]["n"] == 1
    after = pull(api, "worker1", last)
    assert visit in ids(after, "visits", "deleted") and visit not in ids(after, "visits")
    assert delivery in ids(after, "service_deliveries", "deleted")


def test_phones_keep_open_tasks_only(api: Api, world: World, engine: Engine) -> None:
    resident = own_resident(engine, world)
    last = pull(api, "worker1")["timestamp"]
    follow_up = {"id": wid(), "_status": "created", "_changed": "", "resident_id": resident, "kind": "follow_up",
                 "due_date": date_to_ms(city_today()), "reason": "document_check", "note": None, "state": "open"}
    assert push(api, "worker1", changes(tasks={"created": [follow_up]}), last)["applied"] == {"tasks": 1}
    first = pull(api, "worker1", device="phone-tttt")
    assert follow_up["id"] in ids(first, "tasks")
    assert {t["state"] for t in first["changes"]["tasks"]["updated"]} == {"open"}
    path = world.community("c1")["path"]
    open_ids = {r["id"] for r in rows(engine, "SELECT id FROM tasks WHERE state = 'open' AND area_path LIKE :p",
                                   p=path + "%")}
    assert ids(first, "tasks") == open_ids
    # A visit that meets the resident completes the follow-up: done, it leaves the phone at the next pull.
    started = datetime.now(UTC) + timedelta(seconds=1)
    visit = visit_raw(wid(), resident, started_at=to_ms(started), ended_at=to_ms(started + timedelta(minutes=1)))
    push(api, "worker1", changes(visits={"created": [visit]}), first["timestamp"], device="phone-tttt")
    assert rows(engine, "SELECT state FROM tasks WHERE id = :i", i=follow_up["id"])[0]["state"] == "done"
    after = pull(api, "worker1", first["timestamp"], device="phone-tttt")
    assert follow_up["id"] in ids(after, "tasks", "deleted") and follow_up["id"] not in ids(after, "tasks")
