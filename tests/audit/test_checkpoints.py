"""Signed checkpoints: the two attacks a bare chain walk cannot see — cutting off the newest rows, and
editing a row and recomputing every later hash — fail against a checkpoint, on both databases. So do a
tampered, a deleted and a reordered row. Keyed rows (format 3) cannot be recomputed without the HMAC key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from app.cli import cli
from app.ledger import audit
from app.ledger.models import AuditEvent
from tests.audit.conftest import VERIFY, attacker, raw_rows
from tests.conftest import Api

runner = CliRunner()
CHECKPOINTS = "/api/v1/audit/checkpoints"


def checkpoint_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "checkpoint.json"
    result = runner.invoke(cli, ["audit-checkpoint", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads(out.read_text())


def verify_with(path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["audit-verify", "--checkpoint", str(path), *extra])
    return result.exit_code, result.output


def bare_walk(api: Api) -> dict[str, Any]:
    return dict(api.as_("auditor", "GET", VERIFY).json())


def rewrite(engine: Engine, edit: dict[str, Any], *, keyed: bool, from_id: int = 1) -> None:
    """The attacker's rewrite: change one row, then recompute every later row's hash and link. With
    `keyed` the attacker holds the HMAC key (an insider, or a chain of unkeyed rows); without it they
    downgrade the rows from `from_id` on to the unkeyed format 2 to be able to recompute them at all."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:  # typed values, as the verifier reads them
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
    prev = audit.GENESIS
    with attacker(engine) as conn:
        for row in rows:
            if row["id"] == edit["id"]:
                row.update(edit)
            if row["id"] >= from_id:
                if not keyed:
                    row["chain_version"], row["hmac_kid"] = 2, None
                row["prev_hash"], row["hash"] = prev, audit.row_hash(row, prev)
                conn.execute(text("UPDATE audit_events SET outcome = :outcome, chain_version = :chain_version, "
                                  "hmac_kid = :hmac_kid, prev_hash = :prev_hash, hash = :hash WHERE id = :id"), row)
            prev = row["hash"]


def test_checkpoint_round_trip(api: Api, engine: Engine, tmp_path: Path, activity: dict[str, Any]) -> None:
    path, doc = checkpoint_file(tmp_path)
    rows = raw_rows(engine)
    assert rows[-1]["action"] == "audit.checkpoint" and rows[-2]["id"] == doc["last_id"]
    assert rows[-2]["hash"] == doc["last_hash"] and doc["keyed_from"] == 1 and doc["chain_version"] == 3
    assert {r["chain_version"] for r in rows} == {3} and all(r["hmac_kid"] == "dev-1" for r in rows)
    code, output = verify_with(path)
    assert code == 0, output
    assert f"checkpoint {doc['checkpoint_id']} (row {doc['last_id']}" in output

    # The same checkpoint over the API (auditors only), and its public key for an outside party.
    listed = api.as_("auditor", "GET", CHECKPOINTS).json()["items"]
    assert listed[0]["checkpoint_id"] == doc["checkpoint_id"]
    assert api.as_("auditor", "GET", f"{CHECKPOINTS}/{doc['checkpoint_id']}").json() == doc
    keys = runner.invoke(cli, ["audit-public-keys"]).output
    assert keys.strip() == f"dev-1\t{doc['public_key']}"
    assert verify_with(path, "--public-key", doc["public_key"])[0] == 0


def test_cut_off_newest_rows(api: Api, engine: Engine, tmp_path: Path, activity: dict[str, Any]) -> None:
    path, doc = checkpoint_file(tmp_path)
    cut = doc["last_id"] - 3
    with attacker(engine) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": cut})
    walk = bare_walk(api)  # the walk alone sees nothing wrong
    assert walk["intact"] is True and walk["last_id"] == cut + 1  # (+ its own audit.verify row… of the read)
    code, output = verify_with(path)
    assert code == 1
    assert f"row {doc['last_id']} named by the checkpoint is missing" in output and "cut off" in output


def test_edit_and_recompute_with_the_key(api: Api, engine: Engine, tmp_path: Path,
                                         activity: dict[str, Any]) -> None:
    """The strongest attacker (holding the HMAC key, or facing an unkeyed chain): the walk is clean, the
    checkpoint is not."""
    path, doc = checkpoint_file(tmp_path)
    victim = next(r for r in raw_rows(engine) if r["action"] == "auth.login" and r["outcome"] == "failure")
    rewrite(engine, {"id": victim["id"], "outcome": "success"}, keyed=True)
    assert bare_walk(api)["intact"] is True
    code, output = verify_with(path)
    assert code == 1 and f"row {doc['last_id']} does not match the checkpoint" in output


def test_edit_and_recompute_without_the_key(api: Api, engine: Engine, tmp_path: Path,
                                            activity: dict[str, Any]) -> None:
    """Without the key the rows cannot be recomputed as keyed: the attacker downgrades them to the unkeyed
    format. From the edited row on, the walk names the downgrade; from the first row on, only the checkpoint
    (which says where keyed rows start) catches it."""
    path, _ = checkpoint_file(tmp_path)
    victim = next(r for r in raw_rows(engine) if r["action"] == "auth.login" and r["outcome"] == "failure")
    rewrite(engine, {"id": victim["id"], "outcome": "success"}, keyed=False, from_id=victim["id"])
    walk = bare_walk(api)
    assert (walk["intact"], walk["first_broken_id"]) == (False, victim["id"])
    assert "downgraded" in walk["reason"]

    rewrite(engine, {"id": victim["id"], "outcome": "success"}, keyed=False, from_id=1)
    assert bare_walk(api)["intact"] is True
    code, output = verify_with(path)
    assert code == 1 and "chain broken at row 1: chain format downgraded" in output


def test_recomputed_with_plain_sha256_is_named(api: Api, engine: Engine, activity: dict[str, Any]) -> None:
    """Keeping the keyed format but recomputing with SHA-256 (no key) fails at the edited row."""
    rows = raw_rows(engine)
    victim = rows[len(rows) // 2]
    with attacker(engine) as conn:
        prev = victim["prev_hash"]
        for row in rows[victim["id"] - 1:]:
            payload = json.dumps([str(row[c]) for c in audit.HASHED[3]])
            digest = hashlib.sha256((prev + payload).encode()).hexdigest()
            conn.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
                         {"p": prev, "h": digest, "id": row["id"]})
            prev = digest
    walk = bare_walk(api)
    assert (walk["first_broken_id"], walk["reason"]) == (victim["id"], "content does not match its hash")


@pytest.mark.parametrize("attack", ["tampered", "deleted", "reordered"])
def test_checkpoint_check_fails_after(api: Api, engine: Engine, tmp_path: Path, activity: dict[str, Any],
                                      attack: str) -> None:
    path, _ = checkpoint_file(tmp_path)
    rows = raw_rows(engine)
    a, b = rows[5], rows[6]
    with attacker(engine) as conn:
        if attack == "tampered":
            conn.execute(text("UPDATE audit_events SET outcome = 'altered' WHERE id = :id"), {"id": a["id"]})
        elif attack == "deleted":
            conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": a["id"]})
        else:
            conn.execute(text("UPDATE audit_events SET id = -1 WHERE id = :id"), {"id": a["id"]})
            conn.execute(text("UPDATE audit_events SET id = :new WHERE id = :id"), {"new": a["id"], "id": b["id"]})
            conn.execute(text("UPDATE audit_events SET id = :new WHERE id = -1"), {"new": b["id"]})
    code, output = verify_with(path)
    assert code == 1 and f"chain broken at row {a['id']}" in output


def test_forged_or_foreign_checkpoint_is_refused(engine: Engine, tmp_path: Path, api: Api) -> None:
    path, doc = checkpoint_file(tmp_path)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**doc, "last_id": doc["last_id"] - 1}))
    code, output = verify_with(forged)
    assert code == 1 and "signature does not verify" in output
    _, other_public = runner.invoke(cli, ["audit-keygen", "--kid", "x"]).output.strip().rsplit(": ", 1)
    code, output = verify_with(path, "--public-key", other_public)
    assert code == 1 and "another public key" in output
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert verify_with(junk)[0] == 2
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "something"}))
    code, output = verify_with(wrong)
    assert code == 1 and "not a checkpoint file" in output


def test_checkpoints_are_append_only(engine: Engine, tmp_path: Path, api: Api) -> None:
    from sqlalchemy.exc import DBAPIError

    checkpoint_file(tmp_path)
    for statement in ("UPDATE audit_checkpoints SET last_id = 1", "DELETE FROM audit_checkpoints"):
        with pytest.raises(DBAPIError) as failure, engine.begin() as conn:
            conn.execute(text(statement))
        assert "append-only" in str(failure.value.orig)


def test_checkpoint_routes_are_for_auditors(api: Api, engine: Engine) -> None:
    made = api.as_("auditor", "POST", CHECKPOINTS)
    assert made.status_code == 201, made.text
    for user in ("admin", "sup_district", "worker1"):
        assert api.as_(user, "POST", CHECKPOINTS).status_code == 403
        assert api.as_(user, "GET", CHECKPOINTS).status_code == 403
    assert api.as_("auditor", "GET", f"{CHECKPOINTS}/999999").status_code == 404
    assert api.as_("auditor", "GET", f"{CHECKPOINTS}/0").status_code == 422
    actions = [r["action"] for r in raw_rows(engine)]
    assert "audit.checkpoint" in actions and "audit.checkpoint.export" not in actions
