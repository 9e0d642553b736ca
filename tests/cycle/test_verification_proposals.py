"""Partner-proposed outcomes (issue 13, domain.md: partner evidence still needs a worker's confirmation): an admin
records a partner's proposal (the sharing domain will call the same service), the phone receives it, a worker
confirms it with the evidence `partner`, and partner evidence without a pending proposal of that outcome is
refused. Every refusal has its code."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from app.cycle.periods import month_of
from app.cycle.verification.opening import shift
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.report_helpers import REPORTS, P, freeze_clock
from tests.cycle.verify_helpers import PERIODS, VERIFICATIONS, open_month, record, set_today, verifications
from tests.db import audit_events, rows
from tests.sync.helpers import pull
from tests.sync.push_helpers import push

PROPOSALS = "/api/v1/cycle/proposals"
# This month on the real clock, which the sync pull's window reads (a fixed month leaves that window as the calendar
# moves on); the cycle's own today is frozen early in it.
MONTH = month_of(city_today())
EARLIER = shift(MONTH, -1)
DAY = min(city_today(), date.fromisoformat(f"{MONTH}-05"))
MOVED = f"{MONTH}-01"  # never after the real today


@pytest.fixture()
def early_in_month(monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, DAY)


def propose(api: Api, resident_id: str, outcome: str = "LEFT_CITY", status: int = 200, user: str = "admin",
            **extra: Any) -> Any:
    response = api.as_(user, "POST", PROPOSALS, json={"resident_id": resident_id, "outcome": outcome,
                                                      "source": "police", **extra})
    assert response.status_code == status, response.text
    return response


@pytest.mark.usefixtures("early_in_month")
def test_a_worker_confirms_a_partners_proposal(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    first, second = verifications(api, "worker1", month=MONTH)[:2]
    # Partner evidence without a proposal is no evidence.
    refused = api.as_("worker1", "PUT", f"{VERIFICATIONS}/{first['id']}", json={
        "version": first["version"], "outcome": "LEFT_CITY", "evidence": "partner"})
    assert_error(refused, 422, "evidence_missing")
    assert refused.json()["details"] == {"evidence": "partner", "proposal": "none"}

    proposed = propose(api, first["resident_id"], proposed_on=MOVED).json()
    assert (proposed["id"], proposed["proposed_outcome"], proposed["proposed_source"]) == (
        first["id"], "LEFT_CITY", "police")
    assert (proposed["proposed_on"], proposed["proposal_pending"], proposed["outcome"]) == (MOVED, True, None)
    assert proposed["version"] == first["version"] + 1
    # The same proposal again changes nothing; another one replaces a pending proposal.
    assert propose(api, first["resident_id"], proposed_on=MOVED).json()["version"] == proposed["version"]
    replaced = propose(api, first["resident_id"], "RETURNED_HOME", proposed_on=MOVED).json()
    assert (replaced["proposed_outcome"], replaced["version"]) == ("RETURNED_HOME", proposed["version"] + 1)
    events = audit_events(engine, "cycle.verification.propose")
    assert len(events) == 2 and json.loads(events[0]["detail"]) == {
        "month": MONTH, "source": "police", "period_id": first["period_id"]}
    assert events[0]["area_path"] == rows(engine, "SELECT area_path FROM verifications WHERE id = :i",
                                          i=first["id"])[0]["area_path"]

    # Confirming another outcome than the one proposed is refused; the proposed one is recorded.
    other = api.as_("worker1", "PUT", f"{VERIFICATIONS}/{first['id']}", json={
        "version": replaced["version"], "outcome": "LEFT_CITY", "evidence": "partner"})
    assert_error(other, 422, "evidence_missing")
    assert other.json()["details"] == {"evidence": "partner", "proposal": "other_outcome"}
    done = record(api, "worker1", replaced, "RETURNED_HOME", evidence="partner", moved_on=MOVED)
    assert (done["outcome"], done["evidence"], done["proposal_pending"]) == ("RETURNED_HOME", "partner", False)
    assert (done["proposed_outcome"], done["proposed_source"]) == ("RETURNED_HOME", "police")  # kept as history
    assert rows(engine, "SELECT status, left_reason FROM residents WHERE id = :i", i=first["resident_id"]) == [
        {"status": "LEFT", "left_reason": "returned_home"}]
    # A recorded verification takes no proposal.
    assert_error(propose(api, first["resident_id"], status=409), 409, "verification_recorded")
    # A worker may still find otherwise, with evidence of their own: the proposal stays as what the partner said.
    propose(api, second["resident_id"], "DECEASED")
    fresh = ok(api.as_("worker1", "GET", f"{VERIFICATIONS}/{second['id']}"))
    found = record(api, "worker1", fresh, "PRESENT")
    assert (found["outcome"], found["proposed_outcome"], found["proposal_pending"]) == ("PRESENT", "DECEASED", False)


@pytest.mark.usefixtures("early_in_month")
def test_the_phone_confirms_offline(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    first, second = verifications(api, "worker1", month=MONTH)[:2]
    propose(api, first["resident_id"], "SETTLED")
    body = pull(api, "worker1", schema_version=3)
    held = {v["id"]: v for v in body["changes"]["verifications"]["updated"]}
    assert (held[first["id"]]["proposed_outcome"], held[first["id"]]["proposed_source"]) == ("SETTLED", "police")
    assert held[second["id"]]["proposed_outcome"] is None

    def confirmed(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "outcome": "SETTLED", "evidence": "partner", "_status": "updated",
                "_changed": "outcome,evidence"}

    result = push(api, "worker1", {"verifications": {"created": [], "deleted": [], "updated": [
        confirmed(held[first["id"]]), confirmed(held[second["id"]])]}}, body["timestamp"])
    assert result["applied"] == {"verifications": 1}
    assert [(r["id"], r["code"]) for r in result["rejected"]] == [(second["id"], "evidence_missing")]
    stored = {r["id"]: r for r in rows(engine, "SELECT id, outcome, evidence, proposed_outcome FROM verifications "
                                               "WHERE id IN (:a, :b)", a=first["id"], b=second["id"])}
    assert (stored[first["id"]]["outcome"], stored[first["id"]]["evidence"]) == ("SETTLED", "partner")
    assert stored[second["id"]]["outcome"] is None


@pytest.mark.usefixtures("early_in_month")
def test_refusals(api: Api, world: World, engine: Engine) -> None:
    open_month(api, MONTH)
    mine = verifications(api, "worker1", month=MONTH)[0]
    for user in ("worker1", "sup_street", "auditor"):
        assert_error(propose(api, mine["resident_id"], user=user, status=403), 403)
    assert_error(propose(api, "0" * 32, status=404), 404)
    assert_error(propose(api, mine["resident_id"], month=EARLIER, status=404), 404)  # no verification that month
    later = (city_today() + timedelta(days=2)).isoformat()  # the register's real today: not the month's frozen one
    assert_error(propose(api, mine["resident_id"], proposed_on=later, status=422), 422, "date_out_of_range")
    for bad in ({"source": "neighbour"}, {"outcome": "SOMEWHERE"}, {"month": "2026-13"}, {"note": "x"}):
        response = api.as_("admin", "POST", PROPOSALS, json={"resident_id": mine["resident_id"],
                                                             "outcome": "LEFT_CITY", "source": "police", **bad})
        assert_error(response, 422)
    period = ok(api.as_("sup_street", "GET", f"{PERIODS}/{mine['period_id']}"))
    ok(api.as_("sup_street", "POST", f"{PERIODS}/{mine['period_id']}/close", json={"version": period["version"]}))
    assert_error(propose(api, mine["resident_id"], status=409), 409, "period_closed")
    assert audit_events(engine, "cycle.verification.propose") == []


def test_a_locked_month_takes_no_proposal(api: Api, world: World, engine: Engine,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Last month, opened, its report submitted and approved (locked): a proposal for it is 409 report_locked."""
    freeze_clock(monkeypatch)
    open_month(api, P)
    c1 = world.community("c1")
    mine = verifications(api, "worker1", month=P)[0]
    ok(api.as_("worker1", "POST", f"{REPORTS}/{c1['id']}/{P}/submit", json={"version": 0}))
    ok(api.as_("sup_street", "POST", f"{REPORTS}/{c1['id']}/{P}/approve", json={"version": 1}))
    assert_error(propose(api, mine["resident_id"], month=P, status=409), 409, "report_locked")
    assert audit_events(engine, "cycle.verification.propose") == []
