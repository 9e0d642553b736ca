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
