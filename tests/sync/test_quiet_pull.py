"""A phone polling an unchanged server: the pull is answered from a read, without a durable write, and the
device list still shows the last pull to the minute."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select, update

from app.core.types import utcnow
from app.ledger.models import AuditEvent
from app.sync.models import SyncDevice
from tests.conftest import Api
from tests.sync.helpers import pull, rows


def pulls(engine: Engine) -> tuple[int, int]:
    device = rows(engine, select(SyncDevice.pulls).where(SyncDevice.device_id == "phone-0001"))[0][0]
    events = rows(engine, select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sync.pull"))[0][0]
    return device, events


def test_quiet_pulls_are_recorded_once_a_minute(api: Api, engine: Engine) -> None:
    first = pull(api, "worker1")
    settle = pull(api, "worker1", first["timestamp"])  # acknowledges the scope the first pull sent
    cursor = settle["timestamp"]
    recorded = pull(api, "worker1", cursor)
    assert recorded["timestamp"] == cursor
    before = pulls(engine)
    again = pull(api, "worker1", cursor)
    assert again == recorded and all(not c["updated"] and not c["deleted"] for c in again["changes"].values())
    assert pulls(engine) == before  # nothing written

    with engine.begin() as conn:  # a minute later
        conn.execute(update(SyncDevice).where(SyncDevice.device_id == "phone-0001")  # type: ignore[arg-type]
                     .values(last_pull_at=utcnow() - timedelta(seconds=61)))
    pull(api, "worker1", cursor)
    assert pulls(engine) == (before[0] + 1, before[1] + 1)


def test_a_pull_with_changes_is_always_recorded(api: Api, engine: Engine) -> None:
    first = pull(api, "worker1")
    cursor = pull(api, "worker1", first["timestamp"])["timestamp"]
    pull(api, "worker1", cursor)
    before = pulls(engine)
    changed = api.as_("worker1", "GET", "/api/v1/residents", params={"limit": 1}).json()["items"][0]
    response = api.as_("worker1", "PATCH", f"/api/v1/residents/{changed['id']}",
                       json={"version": changed["version"], "occupation": "保安"})
    assert response.status_code == 200, response.text
    step = pull(api, "worker1", cursor)
    assert step["timestamp"] > cursor
    assert pulls(engine) == (before[0] + 1, before[1] + 1)


def test_a_quiet_poll_reads_the_device_and_the_cursor_only(api: Api, engine: Engine) -> None:
    """The usual poll reads two statements (the caller, then the device with the cursor) and opens no snapshot;
    a pull behind the cursor reads them again in its snapshot, then the changes, and sends the change."""
    from sqlalchemy import event

    first = pull(api, "worker1")
    cursor = pull(api, "worker1", first["timestamp"])["timestamp"]
    pull(api, "worker1", cursor)  # recorded: the next ones within the minute are quiet
    seen: list[str] = []

    def statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(engine, "before_cursor_execute", statement)
    try:
        quiet = pull(api, "worker1", cursor)
        quiet_statements = list(seen)
        changed = api.as_("worker1", "GET", "/api/v1/residents", params={"limit": 1}).json()["items"][0]
        assert api.as_("worker1", "PATCH", f"/api/v1/residents/{changed['id']}",
                       json={"version": changed["version"], "occupation": "保安"}).status_code == 200
        seen.clear()
        step = pull(api, "worker1", cursor)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert quiet["timestamp"] == cursor
    assert len(quiet_statements) == 2, quiet_statements
    assert "FROM users" in quiet_statements[0] and "sync_counter.seq AS cursor" in quiet_statements[1]
    assert step["timestamp"] > cursor
    assert [r["id"] for r in step["changes"]["residents"]["updated"]] == [changed["id"]]
    assert sum("sync_counter.seq AS cursor" in s for s in seen) == 2  # again, in the snapshot of the changes
