"""Retention: nothing younger than 180 days (or AUDIT_RETENTION_DAYS) can be purged; a purge removes
the oldest part of the chain only, records itself, and the kept chain verifies from the new anchor.

Old rows are made honestly: the application records and seals them through the real audit code while
its clock (the `utcnow` the audit service stamps events with) is set back; the chain is then exactly
what a deployment would hold after running for more than a year.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.accounts import service as users_service
from app.cli import alembic_config, cli
from app.core.actor import Role
from app.core.config import Settings
from app.core.db import create_db_engine, unit_of_work, use_engine
from app.ledger import audit
from tests.audit.conftest import attacker, raw_rows
from tests.conftest import BACKEND, PASSWORD, Databases

runner = CliRunner()


class Clock:
    """The audit service's clock, `days_back` days behind the real one."""

    def __init__(self) -> None:
        self.days_back = 0

    def __call__(self) -> datetime:
        return datetime.now(UTC) - timedelta(days=self.days_back)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(audit, "utcnow", c)
    return c


@pytest.fixture()
def fresh(databases: Databases) -> Iterator[Engine]:
    """An empty, migrated database (guards on) whose chain this test writes from its first row."""
    name = f"{databases.run}_purge_{uuid.uuid4().hex[:8]}"
    url = databases.create_empty(name)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    use_engine(engine)
    try:
        yield engine
    finally:
        use_engine(None)
        engine.dispose()
        databases.drop(name)


def work(n: int, tag: str) -> None:
    """Some ordinary activity: accounts created (audited writes) and sign-ins recorded."""
    with unit_of_work() as session:
        for i in range(n):
            user = users_service.create_user(session, username=f"{tag}{i}", display_name=f"{tag}{i}",
                                             role=Role.auditor, password=PASSWORD, division_ids=[])
            audit.record(session, "auth.login", target_type="user", target_id=user.id, actor_id=user.id,
                         actor_role="auditor")


def history(engine: Engine, clock: Clock, *, old: int = 3, young: int = 2,
            old_again: int = 0) -> dict[str, list[int]]:
    """Ids of rows recorded 400 days ago, then today, then (a late-sealed straggler) 400 days ago."""
    spans: dict[str, list[int]] = {}
    for label, days_back, n in (("old", 400, old), ("young", 0, young), ("old_again", 400, old_again)):
        if not n:
            continue
        start = len(raw_rows(engine))
        clock.days_back = days_back
        work(n, label.replace("_", ""))
        spans[label] = [r["id"] for r in raw_rows(engine)[start:]]
    clock.days_back = 0
    return spans


def purge_cli(days: int) -> tuple[int, str]:
    result = runner.invoke(cli, ["audit-purge", "--older-than-days", str(days)])
    return result.exit_code, result.output


# --- refusals ---------------------------------------------------------------------------------------

def test_cli_refuses_inside_retention(fresh: Engine, clock: Clock) -> None:
    history(fresh, clock)
    before = raw_rows(fresh)
    for days in (0, 1, 30, 179):
        code, output = purge_cli(days)
        assert code == 2, days
        assert "audit_retention" in output
    assert raw_rows(fresh) == before  # nothing deleted, and the refused purges left no record


def test_service_refuses_inside_retention(fresh: Engine, clock: Clock) -> None:
    history(fresh, clock)
    with pytest.raises(audit.RetentionNotReached) as refused, unit_of_work() as session:
        audit.purge(session, datetime.now(UTC) - timedelta(days=179, hours=23))
    assert refused.value.status == 422 and refused.value.code == "audit_retention"
    assert refused.value.details == {"retention_days": 180}
    # A longer configured retention is honoured.
    with pytest.raises(audit.RetentionNotReached), unit_of_work() as session:
        audit.purge(session, datetime.now(UTC) - timedelta(days=200), settings=Settings(audit_retention_days=365))
    with pytest.raises(ValueError), unit_of_work() as session:
        audit.purge(session, datetime(2020, 1, 1))  # a naive time is the point
    assert all(r["action"] != audit.PURGE_ACTION for r in raw_rows(fresh))


def test_cli_rejects_nonsense_days(fresh: Engine) -> None:
    for value in ("-1", "abc", "99999999"):
        assert runner.invoke(cli, ["audit-purge", "--older-than-days", value]).exit_code == 2
    assert runner.invoke(cli, ["audit-purge"]).exit_code == 2  # the age is never implied


# --- purging ----------------------------------------------------------------------------------------

def test_purge_removes_only_the_old_prefix_and_the_chain_still_verifies(fresh: Engine, clock: Clock) -> None:
    spans = history(fresh, clock, old=3, young=2, old_again=1)
    rows = {r["id"]: r for r in raw_rows(fresh)}
    last_old = spans["old"][-1]

    code, output = purge_cli(180)
    assert code == 0, output
    assert f"purged {len(spans['old'])} audit rows" in output

    kept = raw_rows(fresh)
    kept_ids = [r["id"] for r in kept]
    assert kept_ids[0] == last_old + 1
    assert not set(spans["old"]) & set(kept_ids)
    # The young rows stay, and so does the old straggler sealed after them (the chain is cut as a prefix).
    assert set(spans["young"]) | set(spans["old_again"]) <= set(kept_ids)

    purge_row = kept[-1]
    assert purge_row["action"] == "audit.purge" and purge_row["purpose"] == "retention"
    detail = json.loads(purge_row["detail"])
    assert detail["count"] == len(spans["old"])
    assert (detail["anchor_id"], detail["anchor_hash"]) == (last_old, rows[last_old]["hash"])
    assert detail["via"] == "cli" and detail["retention_days"] == 180

    report = audit.verify_snapshot()
    assert (report.intact, report.checked, report.last_id) == (True, len(kept), purge_row["id"])
    verified = runner.invoke(cli, ["audit-verify"])
    assert verified.exit_code == 0 and f"intact: {len(kept)} rows" in verified.output

    # And through the API, as an auditor sees it.
    from app.main import app

    with TestClient(app) as client:
        login = client.post("/api/v1/auth/login", json={"username": "young0", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        body = client.get("/api/v1/audit/verify", headers=headers).json()
        assert body["intact"] is True and body["first_broken_id"] is None
        purges = client.get("/api/v1/audit/events", params={"action": "audit.purge"}, headers=headers).json()
        assert [p["detail"]["count"] for p in purges["items"]] == [len(spans["old"])]


def test_purge_when_every_row_is_old_keeps_the_chain_going(fresh: Engine, clock: Clock) -> None:
    spans = history(fresh, clock, old=2, young=0)
    last = raw_rows(fresh)[-1]
    with unit_of_work() as session:
        result = audit.purge(session, datetime.now(UTC) - timedelta(days=180))
    assert (result.deleted, result.anchor_id, result.anchor_hash) == (len(spans["old"]), last["id"], last["hash"])
    kept = raw_rows(fresh)
    # Only the purge record is left, and it continues the numbering and the chain.
    assert [(r["id"], r["action"], r["prev_hash"]) for r in kept] == [(last["id"] + 1, "audit.purge", last["hash"])]
    assert audit.verify_snapshot().intact
    # New events carry on from it.
    work(1, "after")
    assert audit.verify_snapshot().checked == len(raw_rows(fresh))


def test_nothing_to_purge_is_still_recorded(fresh: Engine, clock: Clock) -> None:
    history(fresh, clock, old=0, young=2)
    count = len(raw_rows(fresh))
    code, output = purge_cli(365)
    assert code == 0 and "nothing to purge" in output
    rows = raw_rows(fresh)
    assert len(rows) == count + 1 and json.loads(rows[-1]["detail"])["count"] == 0
    assert audit.verify_snapshot().intact


def test_deleting_past_the_anchor_is_named(fresh: Engine, clock: Clock) -> None:
    spans = history(fresh, clock, old=3, young=3)
    assert purge_cli(180)[0] == 0
    first_kept = spans["old"][-1] + 1
    with attacker(fresh) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id <= :id"), {"id": first_kept + 1})
    report = audit.verify_snapshot()
    assert (report.intact, report.first_broken_id) == (False, first_kept)


def test_old_rows_need_the_purge_path(fresh: Engine, clock: Clock) -> None:
    """PostgreSQL refuses even an old row's deletion unless the transaction set app.audit_purge (which
    the purge does); SQLite has no roles and its trigger only judges age."""
    spans = history(fresh, clock, old=2, young=1)
    oldest = spans["old"][0]
    if BACKEND == "postgresql":
        with pytest.raises(DBAPIError) as refused, fresh.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": oldest})
        assert "append-only" in str(refused.value.orig)
    with pytest.raises(DBAPIError), fresh.begin() as conn:
        conn.execute(text("UPDATE audit_events SET outcome = 'x' WHERE id = :id"), {"id": oldest})
    young = spans["young"][0]
    with pytest.raises(DBAPIError), fresh.begin() as conn:
        if BACKEND == "postgresql":
            conn.execute(text("SET LOCAL app.audit_purge = 'on'"))
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": young})
