"""A ledger savepoint takes back the rows, the change-log entries and the audit events of what it rolls back,
and a push's refused record leaves none of them (issue 10): neither it, nor the neighbours re-applied after its
group was rolled back, leave anything twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, update

from app.core.db import unit_of_work
from app.ledger import audit, changes
from app.ledger.models import AuditEvent, SyncLog
from app.ledger.service import savepoint
from app.ledger.state import ledger_of
from app.places.models import Dwelling
from app.sync.models import SyncConflict
from tests.conftest import Api, World
from tests.sync.helpers import pull, rows
from tests.sync.push_helpers import changes as push_changes
from tests.sync.push_helpers import cursor, push

V1 = "/api/v1"


def _count(engine: Engine, model: Any, *where: Any) -> int:
    return int(rows(engine, select(func.count()).select_from(model).where(*where))[0][0])


def _traces(engine: Engine, record_id: str) -> tuple[int, int]:
    """(change-log rows, audit events) naming the record."""
    return (_count(engine, SyncLog, SyncLog.record_id == record_id),
            _count(engine, AuditEvent, AuditEvent.target_id == record_id))


def test_savepoint_rolls_back_rows_log_and_audit_together(engine: Engine, world: World) -> None:
    dwelling_id = world.dwellings[world.community("c1")["id"]][0]
    table = Dwelling.__table__  # type: ignore[attr-defined]
    logged, events = _count(engine, SyncLog), _count(engine, AuditEvent)
    with unit_of_work(engine=engine) as session:
        audit.record(session, "test.kept", target_type="dwellings", target_id=dwelling_id)
        try:
            with savepoint(session):
                session.execute(update(table).where(table.c.id == dwelling_id).values(kind="other"))
                changes.mark_rows(session, table, table.c.id == dwelling_id, fields=["kind"])
                changes.mark_rows(session, table, table.c.id == dwelling_id, op="exit")
                audit.record(session, "test.dropped", target_type="dwellings", target_id=dwelling_id)
                assert len(ledger_of(session).events) == 2 and ledger_of(session).selects
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        ledger = ledger_of(session)
        assert [e["action"] for e in ledger.events] == ["test.kept"] and ledger.selects == []
    assert rows(engine, select(Dwelling.kind).where(Dwelling.id == dwelling_id))[0][0] != "other"
    assert _count(engine, SyncLog) == logged
    assert _count(engine, AuditEvent) == events + 1
    assert [r[0] for r in rows(engine, select(AuditEvent.action).where(AuditEvent.action.like("test.%")))] == [
        "test.kept"]


def test_refused_pushed_record_leaves_no_log_row_no_audit_event(api: Api, world: World, engine: Engine) -> None:
    """Two dwellings in one savepoint group: the second is refused after it wrote a conflict record (the server had
    changed its address since the phone's pull, and the phone's address is taken): the group is rolled back and
    split, the first dwelling is applied once, the second leaves nothing."""
    c1 = world.community("c1")
    first, second, third = world.dwellings[c1["id"]][:3]
    last = cursor(api, "worker1")
    pulled = {d["id"]: d for d in pull(api, "worker1")["changes"]["dwellings"]["updated"]}
    taken = pulled[third]["address"]
    # The server changes the second dwelling's address after the phone's pull.
    version = rows(engine, select(Dwelling.version).where(Dwelling.id == second))[0][0]
    edited = api.as_("sup_street", "PATCH", f"{V1}/dwellings/{second}", json={"version": version,
                                                                                 "address": "新华路9号"})
    assert edited.status_code == 200, edited.text
    before = {d: _traces(engine, d) for d in (first, second)}
    conflicts = _count(engine, SyncConflict)
    kind = "dormitory" if pulled[first]["kind"] != "dormitory" else "own"
    body = push(api, "worker1", push_changes(dwellings={"updated": [
        {**pulled[first], "_status": "updated", "_changed": "kind", "kind": kind},
        {**pulled[second], "_status": "updated", "_changed": "address", "address": taken},
    ]}), last)
    assert body["applied"] == {"dwellings": 1}
    assert [(r["id"], r["code"]) for r in body["rejected"]] == [(second, "dwelling_address_taken")]
    after = {d: _traces(engine, d) for d in (first, second)}
    assert after[first] == (before[first][0] + 1, before[first][1] + 1)  # applied once, not once per attempt
    assert after[second] == before[second]  # the refused record: no change-log row, no audit event
    assert _count(engine, SyncConflict) == conflicts  # its conflict record went with it
    assert _count(engine, AuditEvent, AuditEvent.action == "sync_conflicts.create") == 0
