"""The disclosure ledger: a disclosure enters one row per resident, in the disclosing transaction, and the
resident's dossier shows it; a rolled-back disclosure leaves nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.sharing.ledger import disclose
from tests.conftest import Api, World
from tests.db import audit_events, rows
from tests.factories import dwelling_id, id_number, register_resident

BASIS = "《居住证暂行条例》第十二条"


def test_disclosure_enters_the_ledger_and_the_dossier(api: Api, world: World, engine: Engine) -> None:
    a = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    b = register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="118"), name="王芳",
                          phone=None)
    with unit_of_work(engine=engine) as session:
        # The same resident twice in one answer is one disclosure.
        count = disclose(session, partner_kind="police", partner_id="station-1",
                         residents=[(a["id"], "410102"), (b["id"], "410102"), (a["id"], "410102")],
                         field_groups=["residence", "identity", "identity"], legal_basis=BASIS)
    assert count == 2
    stored = rows(engine, "SELECT resident_id, partner_kind, partner_id, field_groups, legal_basis FROM disclosures")
    assert sorted(tuple(r.values()) for r in stored) == sorted([
        (a["id"], "police", "station-1", "identity,residence", BASIS),
        (b["id"], "police", "station-1", "identity,residence", BASIS)])
    dossier = api.as_("worker1", "GET", f"/api/v1/residents/{a['id']}/dossier").json()
    assert [(d["partner_kind"], d["partner_id"], d["field_groups"], d["legal_basis"])
            for d in dossier["disclosures"]] == [("police", "station-1", ["identity", "residence"], BASIS)]
    event = audit_events(engine, "sharing.disclose")
    assert len(event) == 1 and event[0]["target_id"] == "station-1"
    assert a["id_number"] not in str(event[0]) and a["name"] not in str(event[0])


def test_a_rolled_back_disclosure_leaves_no_entry(api: Api, world: World, engine: Engine) -> None:
    a = register_resident(api, "worker1", dwelling_id(world, "c1", 1))
    with pytest.raises(RuntimeError), unit_of_work(engine=engine) as session:
        disclose(session, partner_kind="landlord", partner_id="l-1", residents=[(a["id"], "410102")],
                 field_groups=["identity"], legal_basis=BASIS)
        raise RuntimeError("the answer failed")
    assert rows(engine, "SELECT id FROM disclosures") == []


def test_nothing_to_disclose_writes_nothing(engine: Engine) -> None:
    with unit_of_work(engine=engine) as session:
        assert disclose(session, partner_kind="police", partner_id="s", residents=[], field_groups=["identity"],
                        legal_basis=BASIS) == 0
    assert rows(engine, "SELECT id FROM disclosures") == []
