"""Assistance requests (协查) through the outflow city's own API, both directions, on the cycle's rules: the
requests the office sent to the city (it moves and answers them) and the city's own requests (matched by ID
number among its registered people anywhere in the city, idempotent on its reference). Never a staff shape;
anything not theirs is 404; every request about a resident that leaves is in the disclosure ledger."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.cycle.assist_helpers import URL, act, draft, incoming, set_today, woman
from tests.db import audit_events, rows
from tests.factories import id_number
from tests.sharing.partner_helpers import V1, bearer, make_client

PARTNER = V1 + "/partner/outflow/assistance-requests"
PARTNER_FIELDS = {"id", "direction", "state", "topic", "urgent", "partner_reference", "subject_name",
                  "subject_id_number", "sent_on", "due_on", "answered_on", "finding", "fp_certificate_status",
                  "version"}


def step(api: Api, headers: dict[str, str], request: dict[str, Any], name: str, body: dict[str, Any],
         status: int = 200) -> dict[str, Any]:
    response = api.client.post(f"{PARTNER}/{request['id']}/{name}", json={"version": request["version"], **body},
                               headers=headers)
    assert response.status_code == status, response.text
    return dict(response.json())


def zhoukou(api: Api, prefix: str = "4116", client_id: str = "zhoukou", **form: str) -> dict[str, str]:
    return bearer(api, make_client(api, "outflow_city", client_id, hukou_prefix=prefix), **form)


def test_the_city_answers_what_the_office_sent(api: Api, world: World, engine: Engine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 5))
    city = zhoukou(api)
    resident = woman(api, world, "102")
    created = draft(api, resident["id"], topic="fp_certificate", urgent=True)
    assert_error(api.client.get(f"{PARTNER}/{created['id']}", headers=city), 404, "not_found")  # a draft
    sent = act(api, "worker1", created, "send")
    [listed] = ok(api.client.get(PARTNER, params={"direction": "outgoing"}, headers=city))["items"]
    assert set(listed) == PARTNER_FIELDS and listed["id"] == sent["id"]
    assert (listed["state"], listed["due_on"], listed["subject_id_number"]) == ("sent", "2026-11-20",
                                                                                 resident["id_number"])
    for other in (zhoukou(api, "4115", "xinyang"), zhoukou(api, "411603", "county")):  # not theirs
        assert_error(api.client.get(f"{PARTNER}/{sent['id']}", headers=other), 404, "not_found")
        assert step(api, other, sent, "progress", {"state": "matched"}, 404)["code"] == "not_found"
        assert ok(api.client.get(PARTNER, headers=other))["items"] == []

    matched = step(api, city, listed, "progress", {"state": "matched"})
    verifying = step(api, city, matched, "progress", {"state": "verifying"})
    assert step(api, city, matched, "progress", {"state": "verifying"}, 409)["code"] == "stale_version"
    assert step(api, city, verifying, "answer", {"finding": "confirmed"}, 422)["code"] == "answer_fields"
    assert step(api, city, verifying, "answer", {"finding": "confirmed", "fp_certificate_status": "valid",
                                                 "answered_on": "2026-11-04"}, 422)["code"] == "answer_date"
    answered = step(api, city, verifying, "answer", {"finding": "differs", "fp_certificate_status": "expired",
                                                     "note": "证明已过期"})
    assert set(answered) == PARTNER_FIELDS and (answered["state"], answered["finding"]) == ("answered", "differs")
    assert step(api, city, answered, "answer", {"finding": "confirmed", "fp_certificate_status": "valid"},
                409)["code"] == "invalid_transition"

    staff = ok(api.as_("worker1", "GET", f"{URL}/{sent['id']}"))
    assert (staff["state"], staff["fp_certificate_status"], staff["answer_note"]) == ("answered", "expired",
                                                                                     "证明已过期")
    client_user = rows(engine, "SELECT id FROM users WHERE username = 'zhoukou'")[0]["id"]
    assert staff["answered_by"] == client_user
    writes = audit_events(engine, "assistance_requests.update", sent["id"])
    assert [w["actor_id"] for w in writes][-3:] == [client_user] * 3
    ledger = rows(engine, "SELECT resident_id, partner_kind, partner_id, field_groups FROM disclosures")
    assert {(r["resident_id"], r["partner_kind"], r["partner_id"], r["field_groups"]) for r in ledger} == {
        (resident["id"], "outflow_city", client_user, "assistance,identity")}
    assert len(ledger) == 4  # the list, two steps and the answer (refusals disclose nothing)


def test_the_city_sends_its_own_requests(api: Api, world: World, engine: Engine,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    set_today(monkeypatch, date(2026, 11, 21))
    city = zhoukou(api)
    here = woman(api, world, "104")
    elsewhere = woman(api, world, "106", hukou="411502")  # 信阳's: not 周口's to ask about
    body = {"reference": "ZK-2026-7", "id_number": here["id_number"], "name": "刘梅", "topic": "residence"}
    response = api.client.post(PARTNER, json=body, headers=city)
    assert response.status_code == 201, response.text
    sent = response.json()
    assert set(sent) == PARTNER_FIELDS and "resident_id" not in sent
    assert (sent["direction"], sent["state"], sent["sent_on"], sent["due_on"]) == (
        "incoming", "matched", "2026-11-21", "2026-12-27")  # after the send cut-off: counted from 1 Dec
    again = api.client.post(PARTNER, json=body, headers=city)
    assert (again.status_code, again.json()["id"]) == (200, sent["id"])
    assert_error(api.client.post(PARTNER, json={**body, "urgent": True}, headers=city), 409,
                 "duplicate_partner_reference")
    for seq, subject in (("2", elsewhere["id_number"]), ("3", id_number(seq="998"))):
        unmatched = ok(api.client.post(PARTNER, json={**body, "reference": "ZK-" + seq, "id_number": subject},
                                       headers=city), 201)
        assert unmatched["state"] == "unmatched"
    broken = here["id_number"][:-1] + ("0" if here["id_number"][-1] != "0" else "1")
    assert_error(api.client.post(PARTNER, json={**body, "reference": "ZK-4", "id_number": broken}, headers=city),
                 422, "id_check_digit")

    # The city cannot move its own request; the worker of the resident's community answers it.
    assert step(api, city, sent, "progress", {"state": "verifying"}, 403)["code"] == "office_side_only"
    [mine] = ok(api.as_("worker1", "GET", URL, params={"direction": "incoming"}))["items"]
    assert mine["resident_id"] == here["id"]
    act(api, "worker1", mine, "answer", {"finding": "confirmed"})
    shown = ok(api.client.get(f"{PARTNER}/{sent['id']}", headers=city))
    assert (shown["state"], shown["finding"], shown["answered_on"]) == ("answered", "confirmed", "2026-11-21")
    assert len(ok(api.client.get(PARTNER, params={"direction": "incoming"}, headers=city))["items"]) == 3
    assert ok(api.client.get(PARTNER, params={"state": "unmatched"}, headers=city))["total"] == 2
    assert_error(api.client.get(f"{PARTNER}/{sent['id']}", headers=zhoukou(api, "4117", "zhumadian")), 404,
                 "not_found")
    # Only the matched resident is ever in the ledger; unmatched requests disclose nobody.
    assert {r["resident_id"] for r in rows(engine, "SELECT resident_id FROM disclosures")} == {here["id"]}


def test_a_request_the_admin_registered_is_the_same_request(api: Api, world: World) -> None:
    here = woman(api, world, "108")
    city = zhoukou(api)
    registered = incoming(api, here["id_number"], "ZK-9", date.today(), topic="residence")
    replay = api.client.post(PARTNER, json={"reference": "ZK-9", "id_number": here["id_number"], "name": "刘梅",
                                            "topic": "residence"}, headers=city)
    assert (replay.status_code, replay.json()["id"]) == (200, registered["id"])


def test_refusals(api: Api, world: World) -> None:
    body = {"reference": "X-1", "id_number": id_number(seq="998"), "name": "刘梅", "topic": "residence"}
    for prefix, client_id in (("1301", "shijiazhuang"), ("41", "henan")):  # no agreement; a province
        headers = zhoukou(api, prefix, client_id)
        assert_error(api.client.post(PARTNER, json=body, headers=headers), 403, "no_cooperation_agreement")
        assert ok(api.client.get(PARTNER, headers=headers))["items"] == []
    feed_only = zhoukou(api, scope="outflow:feed outflow:changes")
    assert_error(api.client.get(PARTNER, headers=feed_only), 403, "insufficient_scope")
    assert_error(api.client.post(PARTNER, json=body, headers=feed_only), 403, "insufficient_scope")
    assert_error(api.as_("admin", "GET", PARTNER), 403, "forbidden")
    assert_error(api.as_("worker1", "POST", PARTNER, json=body), 403, "forbidden")
    city = zhoukou(api, client_id="zhoukou-2")
    assert_error(api.client.post(PARTNER, json={**body, "extra": 1}, headers=city), 422, "validation_error")
    assert_error(api.client.get(f"{PARTNER}/{'0' * 32}", headers=city), 404, "not_found")
    ok(api.as_("admin", "PUT", V1 + "/sharing/profiles/outflow_city", json={
        "version": 1, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": True,
        "retention_days": 30}))
    assert_error(api.client.post(PARTNER, json=body, headers=city), 403, "disclosure_needs_approval")
    assert_error(api.client.get(PARTNER, headers=city), 403, "disclosure_needs_approval")
