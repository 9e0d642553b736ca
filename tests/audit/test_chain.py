"""The hash chain: it verifies clean after real activity, names a tampered or missing row, and the
database itself refuses to change or delete audit rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.cli import cli
from app.core.db import unit_of_work
from app.ledger.audit import GENESIS, verify_chain
from tests.audit.conftest import VERIFY, attacker, events, raw_rows
from tests.conftest import BACKEND, Api

runner = CliRunner()


def verify(api: Api) -> dict[str, Any]:
    response = api.as_("auditor", "GET", VERIFY)
    assert response.status_code == 200, response.text
    return dict(response.json())


def cli_verify() -> tuple[int, str]:
    result = runner.invoke(cli, ["audit-verify"])
    return result.exit_code, result.output


def test_chain_verifies_clean_after_activity(api: Api, engine: Engine, activity: dict[str, Any]) -> None:
    events(api, action="auth.*")  # reads are appended in their own short transaction
    rows = raw_rows(engine)
    assert rows[0]["id"] == 1 and rows[0]["prev_hash"] == GENESIS
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))

    report = verify(api)
    assert report == {"intact": True, "checked": len(rows), "first_broken_id": None, "reason": None,
                      "last_id": rows[-1]["id"], "last_hash": rows[-1]["hash"]}

    code, output = cli_verify()
    assert code == 0, output
    # The endpoint's own audit.verify row has been added since.
    assert f"audit chain intact: {len(rows) + 1} rows" in output


def test_verify_inside_a_unit_of_work_leaves_the_session_usable(engine: Engine, api: Api) -> None:
    with unit_of_work(write=False) as session:
        report = verify_chain(session, batch=7)  # several batches
        assert report.intact and report.checked == len(raw_rows(engine))


def test_tampered_row_is_named(api: Api, engine: Engine, world: Any, activity: dict[str, Any]) -> None:
    rows = raw_rows(engine)
    victim = next(r for r in rows if r["action"] == "auth.login" and r["outcome"] == "failure")
    with attacker(engine) as conn:
        # Cover a failed sign-in: make it look like a success.
        conn.execute(text("UPDATE audit_events SET outcome = 'success', status_code = NULL WHERE id = :id"),
                     {"id": victim["id"]})

    report = verify(api)
    assert report["intact"] is False
    assert report["first_broken_id"] == victim["id"]
    assert report["reason"] == "content does not match its hash"
    assert report["checked"] == victim["id"] - 1

    code, output = cli_verify()
    assert code == 1
    assert f"audit chain broken at row {victim['id']}: content does not match its hash" in output
    # The failed verification is itself on record.
    assert events(api, action="audit.verify")[0]["outcome"] == "failure"


def test_rehashed_row_breaks_the_next_link(api: Api, engine: Engine, activity: dict[str, Any]) -> None:
    rows = raw_rows(engine)
    victim = rows[len(rows) // 2]
    with attacker(engine) as conn:
        conn.execute(text("UPDATE audit_events SET hash = :h WHERE id = :id"), {"h": "f" * 64, "id": victim["id"]})
    report = verify(api)
    assert report["first_broken_id"] == victim["id"]


def test_deleted_middle_row_is_named(api: Api, engine: Engine, activity: dict[str, Any]) -> None:
    rows = raw_rows(engine)
    victim = next(r for r in rows if r["action"] == "auth.refresh_reuse")  # hide a stolen token
    assert rows[0]["id"] < victim["id"] < rows[-1]["id"]
    with attacker(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": victim["id"]})

    report = verify(api)
    assert (report["intact"], report["first_broken_id"], report["reason"]) == (False, victim["id"], "missing row")
    code, output = cli_verify()
    assert code == 1 and f"broken at row {victim['id']}: missing row" in output


def test_deleted_oldest_rows_are_named(api: Api, engine: Engine) -> None:
    """Removing the start of the chain outside a purge is found too: no purge record vouches for the
    new first row."""
    with attacker(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id <= 3"))
    report = verify(api)
    assert (report["intact"], report["first_broken_id"]) == (False, 1)
    assert report["reason"].startswith("missing row")


def test_forged_first_row_is_named(api: Api, engine: Engine) -> None:
    with attacker(engine) as conn:
        conn.execute(text("UPDATE audit_events SET prev_hash = :h WHERE id = 1"), {"h": "a" * 64})
    report = verify(api)
    assert (report["intact"], report["first_broken_id"]) == (False, 1)


def test_reordered_rows_are_named(api: Api, engine: Engine, activity: dict[str, Any]) -> None:
    rows = raw_rows(engine)
    a, b = rows[5], rows[6]
    with attacker(engine) as conn:
        conn.execute(text("UPDATE audit_events SET id = -1 WHERE id = :id"), {"id": a["id"]})
        conn.execute(text("UPDATE audit_events SET id = :new WHERE id = :id"), {"new": a["id"], "id": b["id"]})
        conn.execute(text("UPDATE audit_events SET id = :new WHERE id = -1"), {"new": b["id"]})
    assert verify(api)["first_broken_id"] == a["id"]


# --- the database guard -----------------------------------------------------------------------------

def _latest_id(engine: Engine) -> int:
    return int(raw_rows(engine)[-1]["id"])


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET outcome = 'success' WHERE id = :id",
    "UPDATE audit_events SET detail = NULL WHERE id = :id",
    "DELETE FROM audit_events WHERE id = :id",
    "DELETE FROM audit_events",
])
def test_database_refuses_update_and_delete(api: Api, engine: Engine, statement: str) -> None:
    api.login("worker1")  # a fresh row
    latest = _latest_id(engine)
    before = raw_rows(engine)
    with pytest.raises(DBAPIError) as failure, engine.begin() as conn:
        conn.execute(text(statement), {"id": latest})
    message = str(failure.value.orig)
    assert "append-only" in message or "cannot be deleted" in message, message
    assert raw_rows(engine) == before


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL guard")
def test_postgres_purge_flag_does_not_unlock_young_rows_or_updates(api: Api, engine: Engine) -> None:
    latest = _latest_id(engine)
    for statement in ("DELETE FROM audit_events WHERE id = :id",
                      "UPDATE audit_events SET outcome = 'x' WHERE id = :id",
                      "TRUNCATE audit_events"):
        with pytest.raises(DBAPIError) as failure, engine.begin() as conn:
            conn.execute(text("SET LOCAL app.audit_purge = 'on'"))
            conn.execute(text(statement), {"id": latest})
        assert "append-only" in str(failure.value.orig)
    assert _latest_id(engine) == latest


def test_unflushed_orm_write_is_still_recorded(api: Api, engine: Engine, world: Any) -> None:
    """A change left for the commit to flush is recorded too (sealing used to return early when nothing
    was queued yet, and the commit's own flush then queued the event too late to be written)."""
    from app.auth.models import User

    uid = world.users["worker2"]
    with unit_of_work() as session:
        user = session.get(User, uid)
        assert user is not None
        user.display_name = "Changed Without Flush"
        session.add(user)
    writes = [r for r in raw_rows(engine) if r["action"] == "users.update" and r["target_id"] == uid]
    assert len(writes) == 1 and writes[0]["fields"] == "display_name"
    assert verify(api)["intact"] is True


def test_row_slipped_in_below_the_chain_is_named(api: Api, engine: Engine) -> None:
    first = raw_rows(engine)[0]
    with attacker(engine) as conn:
        conn.execute(text(
            "INSERT INTO audit_events (id, at, action, outcome, prev_hash, hash) "
            "SELECT 0, at, 'auth.login', 'success', prev_hash, hash FROM audit_events WHERE id = :id"),
            {"id": first["id"]})
    report = verify(api)
    assert (report["intact"], report["first_broken_id"]) == (False, 0)
