"""Retention (PIPL storage limitation): anonymise residents who left long ago; never touch the audit log."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli import cli
from app.core.db import unit_of_work
from app.core.types import city_today
from app.ledger.audit import verify_chain
from app.people.models import CorrectionRequest
from app.people.retention import ANONYMISED_NAME, RetentionYearsInvalid, anonymise, cutoff_for
from tests.conftest import Api, World
from tests.db import audit_events, execute, rows
from tests.factories import dwelling_id, register_resident
from tests.people.rec_helpers import RESIDENTS, put_health, resident_fields, valid_doc, years_ago

runner = CliRunner()


def left_person(api: Api, world: World, engine: Engine, left_on: date, **over: Any) -> dict[str, Any]:
    """A woman with a health record, a 婚育证明 and a correction request, who left on `left_on`."""
    r = register_resident(api, "worker1", dwelling_id(world), **resident_fields(**over))
    assert api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/fp-documents", json=valid_doc()).status_code == 201
    assert put_health(api, r["id"], children=[{"birth_date": "2016-01-01", "sex": "F"}]).status_code == 200
    with unit_of_work(engine=engine) as session:
        session.add(CorrectionRequest(resident_id=r["id"], area_path="/x/", district_code="410102",
                                      changes=json.dumps({"name": "李娜娜"}), note="本人要求",
                                      requested_by="w" * 32))
    version = rows(engine, "SELECT version FROM residents WHERE id = :r", r=r["id"])[0]["version"]
    left = api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/leave",
                   json={"version": version, "left_on": city_today().isoformat(), "reason": "returned_home"})
    assert left.status_code == 200, left.text
    # Backdate: the record has been kept since `left_on`.
    execute(engine, "UPDATE residents SET left_on = :d WHERE id = :r", d=left_on, r=r["id"])
    return r


def resident_row(engine: Engine, rid: str) -> dict[str, Any]:
    return rows(engine, "SELECT * FROM residents WHERE id = :r", r=rid)[0]


def audit_snapshot(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM audit_events ORDER BY id")


def test_retention_run_anonymises_old_leavers_only(api: Api, world: World, engine: Engine) -> None:
    old = left_person(api, world, engine, years_ago(3, days=1), birth="19880612")
    recent = left_person(api, world, engine, years_ago(3), birth="19890612")  # exactly 3 years: not more
    active = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19870612"))
    before = audit_snapshot(engine)

    result = runner.invoke(cli, ["retention-run", "--years", "3"])
    assert result.exit_code == 0, result.output
    assert "anonymised" in result.output

    row = resident_row(engine, old["id"])
    assert row["name"] == ANONYMISED_NAME
    assert [row[k] for k in ("id_number", "phone", "hukou_address", "employer", "occupation",
                             "residence_permit_no", "ethnicity")] == [None] * 7
    assert str(row["birth_date"])[:10] == "1988-01-01"
    assert row["anonymised_at"] is not None and row["key_person"] in (False, 0)
    assert row["version"] == old["version"] + 2  # leave, then anonymise
    assert row["sex"] == "F" and row["hukou_code"] == "411602" and row["status"] == "LEFT"
    assert rows(engine, "SELECT * FROM health_records WHERE resident_id = :r", r=old["id"]) == []
    docs = rows(engine, "SELECT number, status FROM fp_documents WHERE resident_id = :r", r=old["id"])
    assert docs == [{"number": None, "status": "valid"}]
    corrections = rows(engine, "SELECT changes, note FROM correction_requests WHERE resident_id = :r", r=old["id"])
    assert corrections == [{"changes": "{}", "note": None}]
    assert rows(engine, "SELECT count(*) AS n FROM tenancies WHERE resident_id = :r", r=old["id"])[0]["n"] == 1

    for kept in (recent, active):
        row = resident_row(engine, kept["id"])
        assert row["name"] == kept["name"] and row["id_number"] == kept["id_number"] and row["anonymised_at"] is None
    assert rows(engine, "SELECT count(*) AS n FROM health_records WHERE resident_id = :r", r=recent["id"])[0]["n"] == 1

    # The audit log: every earlier row untouched, one new event with counts and no personal values.
    after = audit_snapshot(engine)
    assert after[:len(before)] == before
    new = after[len(before):]
    assert [e["action"] for e in new] == ["retention.anonymise"]
    detail = json.loads(new[0]["detail"])
    assert detail["residents"] >= 1 and detail["health_records"] >= 1 and detail["older_than_years"] == 3
    assert detail["cutoff"] == cutoff_for(3, city_today()).isoformat()
    assert new[0]["actor_role"] == "system" and new[0]["purpose"] == "retention"
    stamped = rows(engine, "SELECT id FROM residents WHERE anonymised_at IS NOT NULL")
    assert len(stamped) == detail["residents"] and old["id"] in {s["id"] for s in stamped}
    assert old["id_number"] not in new[0]["detail"] and old["id"] not in new[0]["detail"]
    with unit_of_work(engine=engine, write=False) as session:
        assert verify_chain(session).first_broken_id is None


def test_anonymised_record_is_not_findable(api: Api, world: World, engine: Engine) -> None:
    old = left_person(api, world, engine, years_ago(5), birth="19860101", name="欧阳娟")
    assert api.as_("worker1", "GET", RESIDENTS, params={"q": "欧阳娟"}).json()["total"] == 1
    assert runner.invoke(cli, ["retention-run"]).exit_code == 0  # default RETENTION_YEARS (3)
    assert api.as_("worker1", "GET", RESIDENTS, params={"q": "欧阳"}).json()["total"] == 0
    assert api.as_("worker1", "GET", RESIDENTS, params={"id_number": old["id_number"]}).json()["total"] == 0
    assert api.as_("worker1", "GET", RESIDENTS, params={"phone": old["phone"], "q": "欧阳"}).json()["total"] == 0
    # What is left reads as anonymised; health is gone.
    record = api.as_("worker1", "GET", f"{RESIDENTS}/{old['id']}").json()
    assert record["name"] == ANONYMISED_NAME and record["id_number"] is None
    health = api.as_("worker1", "GET", f"{RESIDENTS}/{old['id']}/health", params={"purpose": "resident_request"})
    assert health.json()["recorded"] is False
    # The same person coming back is a new registration: nothing links them to the old record.
    back = api.as_("worker1", "POST", RESIDENTS, json={
        "name": "欧阳娟", "id_number": old["id_number"], "hukou_code": "411602",
        "arrival_date": city_today().isoformat(), "dwelling_id": old["dwelling_id"]})
    assert back.status_code == 201, back.text
    assert back.json()["id"] != old["id"]


def test_merged_duplicate_follows_its_survivor(api: Api, world: World, engine: Engine) -> None:
    survivor = left_person(api, world, engine, years_ago(4), birth="19900909")
    duplicate = register_resident(api, "worker1", dwelling_id(world), **resident_fields(birth="19900910"))
    execute(engine, "UPDATE residents SET status = 'ARCHIVED', merged_into_id = :s WHERE id = :d",
            s=survivor["id"], d=duplicate["id"])
    with unit_of_work(engine=engine) as session:
        result = anonymise(session, 3)
    assert result.residents >= 2
    for rid in (survivor["id"], duplicate["id"]):
        assert resident_row(engine, rid)["name"] == ANONYMISED_NAME


def test_second_run_changes_nothing_more(api: Api, world: World, engine: Engine) -> None:
    old = left_person(api, world, engine, years_ago(10))
    assert runner.invoke(cli, ["retention-run", "--years", "3"]).exit_code == 0
    stamp = resident_row(engine, old["id"])["anonymised_at"]
    with unit_of_work(engine=engine) as session:
        again = anonymise(session, 3)
    assert again.residents == 0 and again.health_records == 0
    assert resident_row(engine, old["id"])["anonymised_at"] == stamp
    assert len(audit_events(engine, "retention.anonymise")) == 2


def test_dry_run_changes_nothing(api: Api, world: World, engine: Engine) -> None:
    old = left_person(api, world, engine, years_ago(6))
    before = audit_snapshot(engine)
    result = runner.invoke(cli, ["retention-run", "--years", "5", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert resident_row(engine, old["id"])["id_number"] == old["id_number"]
    assert audit_snapshot(engine) == before


@pytest.mark.parametrize("years", ["0", "-2"])
def test_years_below_one_is_refused(years: str, engine: Engine) -> None:
    result = runner.invoke(cli, ["retention-run", "--years", years])
    assert result.exit_code == 2
    assert "at least 1" in result.output
    with unit_of_work(engine=engine) as session, pytest.raises(RetentionYearsInvalid):
        anonymise(session, int(years))


def test_cutoff_handles_leap_day() -> None:
    assert cutoff_for(3, date(2028, 2, 29)) == date(2025, 2, 28)
    assert cutoff_for(4, date(2028, 2, 29)) == date(2024, 2, 29)
    assert cutoff_for(1, date(2026, 11, 29)) == date(2025, 11, 29) == date(2026, 11, 29) - timedelta(days=365)
