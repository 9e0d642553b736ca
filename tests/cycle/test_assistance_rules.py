"""Assistance requests: the deadline rules (urgent and normal delays, the send and feedback cut-offs), their
settings, and bad input answered 4xx with a stable code."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.core.config import Settings
from app.core.types import city_today
from app.cycle.assistance.rules import TRANSITIONS, deadline
from tests.conftest import Api, World
from tests.cycle.assist_helpers import URL, act, draft, incoming, set_today, woman
from tests.factories import id_number

DEFAULTS = Settings()


@pytest.mark.parametrize(("sent", "urgent", "counted", "due"), [
    (date(2026, 11, 5), True, date(2026, 11, 5), date(2026, 11, 20)),
    (date(2026, 11, 13), True, date(2026, 11, 13), date(2026, 11, 27)),  # 28 Nov moves back to the 27th
    (date(2026, 11, 21), True, date(2026, 11, 21), date(2026, 12, 6)),  # urgent: no send cut-off
    (date(2026, 11, 5), False, date(2026, 11, 5), date(2026, 12, 5)),
    (date(2026, 11, 20), False, date(2026, 11, 20), date(2026, 12, 20)),  # on the cut-off day: counts at once
    (date(2026, 11, 21), False, date(2026, 12, 1), date(2026, 12, 27)),  # next month's exchange; 31 Dec → 27th
    (date(2026, 12, 25), False, date(2027, 1, 1), date(2027, 1, 27)),  # across the year; 31 Jan → 27th
    (date(2027, 1, 31), True, date(2027, 1, 31), date(2027, 2, 15)),
])
def test_deadline_rules(sent: date, urgent: bool, counted: date, due: date) -> None:
    term = deadline(sent, urgent, DEFAULTS)
    assert (term.counted_from, term.due_on) == (counted, due)


def test_deadline_settings_are_honoured() -> None:
    custom = Settings(assistance_urgent_days=10, assistance_normal_days=20, assistance_send_cutoff_day=10,
                      assistance_feedback_cutoff_day=25)
    assert deadline(date(2026, 11, 11), False, custom).counted_from == date(2026, 12, 1)
    assert deadline(date(2026, 11, 11), False, custom).due_on == date(2026, 12, 21)
    assert deadline(date(2026, 11, 12), True, custom).due_on == date(2026, 11, 22)
    assert deadline(date(2026, 11, 16), True, custom).due_on == date(2026, 11, 25)  # 26 Nov moves back
    with pytest.raises(ValueError, match="ASSISTANCE_PARTNER_CITIES"):
        Settings(assistance_partner_cities="411601")


def test_answered_and_unmatched_are_final() -> None:
    final = [state for state, targets in TRANSITIONS.items() if not targets]
    assert sorted(final) == ["answered", "unmatched"]


def test_sending_sets_the_deadline_by_the_cut_offs(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the API: the day a request is sent decides when it is due."""
    cases = [("120", False, date(2026, 11, 20), "2026-11-20", "2026-12-20"),
             ("122", False, date(2026, 11, 21), "2026-12-01", "2026-12-27"),
             ("124", True, date(2026, 11, 21), "2026-11-21", "2026-12-06"),
             ("126", True, date(2026, 11, 13), "2026-11-13", "2026-11-27")]
    for seq, urgent, sent_on, counted, due in cases:
        resident = woman(api, world, seq)
        request = draft(api, resident["id"], urgent=urgent)
        set_today(monkeypatch, sent_on)
        sent = act(api, "worker1", request, "send")
        monkeypatch.undo()
        assert (sent["counted_from"], sent["due_on"], sent["urgent"]) == (counted, due, urgent), seq


def test_incoming_deadline_counts_from_the_day_received(api: Api, world: World) -> None:
    resident = woman(api, world, "128")
    received = city_today() - timedelta(days=3)
    urgent = incoming(api, resident["id_number"], "ZK-9001", received, urgent=True, topic="family_planning")
    normal = incoming(api, resident["id_number"], "ZK-9002", received)
    assert urgent["due_on"] == deadline(received, True, DEFAULTS).due_on.isoformat()
    assert normal["due_on"] == deadline(received, False, DEFAULTS).due_on.isoformat()
    assert (urgent["state"], normal["state"]) == ("matched", "matched")


def test_bad_input_is_refused_with_a_code(api: Api, world: World) -> None:
    resident = woman(api, world, "130")
    local = woman(api, world, "132", hukou="410102")  # 户籍 in this city: no partner to ask
    today = city_today()
    subject = resident["id_number"]
    checks = [
        ("worker1", URL, {"resident_id": resident["id"], "topic": "residence", "extra": 1}, 422, None),
        ("worker1", URL, {"resident_id": resident["id"], "topic": "gossip"}, 422, None),
        ("worker1", URL, {"resident_id": "0" * 32, "topic": "residence"}, 404, "not_found"),
        ("worker1", URL, {"resident_id": local["id"], "topic": "residence"}, 409, "no_partner_agreement"),
        ("admin", f"{URL}/incoming", incoming_body(subject, partner="440100"), 422, "partner_city_unknown"),
        ("admin", f"{URL}/incoming", incoming_body(subject[:17] + ("0" if subject[17] != "0" else "1")), 422,
         "id_check_digit"),
        ("admin", f"{URL}/incoming", incoming_body(subject, received_on=today + timedelta(days=1)), 422,
         "date_out_of_range"),
        ("admin", f"{URL}/incoming", incoming_body(subject, received_on=today - timedelta(days=400)), 422,
         "date_out_of_range"),
        ("admin", f"{URL}/incoming", {**incoming_body(subject), "received_on": 0}, 422, "date_format"),
        ("admin", f"{URL}/incoming", {**incoming_body(subject), "partner_reference": "编号 1"}, 422, None),
    ]
    for user, url, body, status, code in checks:
        response = api.as_(user, "POST", url, json=body)
        assert response.status_code == status, (body, response.text)
        if code:
            assert response.json()["code"] == code, (body, response.text)
    first = draft(api, resident["id"], topic="residence")
    again = api.as_("worker1", "POST", URL, json={"resident_id": resident["id"], "topic": "residence"})
    assert (again.status_code, again.json()["code"]) == (409, "assistance_request_open")
    assert api.as_("worker1", "POST", f"{URL}/{first['id']}/send", json={"version": 0}).status_code == 422
    assert api.as_("worker1", "POST", f"{URL}/{first['id']}/progress",
                   json={"state": "answered", "version": 1}).status_code == 422
    incoming(api, subject, "ZK-1", today)
    twice = api.as_("admin", "POST", f"{URL}/incoming", json=incoming_body(subject, reference="ZK-1"))
    assert (twice.status_code, twice.json()["code"]) == (409, "duplicate_partner_reference")
    left = api.as_("worker1", "POST", f"/api/v1/residents/{local['id']}/leave",
                   json={"version": 1, "left_on": today.isoformat(), "reason": "left_city"})
    assert left.status_code == 200, left.text
    gone = api.as_("worker1", "POST", URL, json={"resident_id": local["id"], "topic": "residence"})
    assert (gone.status_code, gone.json()["code"]) == (409, "resident_not_registered")


def test_an_answer_is_checked(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = woman(api, world, "134")
    residence = incoming(api, resident["id_number"], "ZK-2", city_today(), topic="residence")
    wrong = act(api, "worker1", residence, "answer", {"finding": "confirmed", "fp_certificate_status": "valid"},
                status=422)
    assert wrong["code"] == "answer_fields"  # only a 婚育证明 request carries its status
    future = (city_today() + timedelta(days=1)).isoformat()
    assert act(api, "worker1", residence, "answer", {"finding": "confirmed", "answered_on": future},
               status=422)["code"] == "answer_date"
    assert act(api, "worker1", residence, "answer", {"finding": "unsure"}, status=422)["code"] != "answer_date"
    assert act(api, "worker1", residence, "answer", {"finding": "confirmed", "note": "x" * 201}, status=422)


def incoming_body(subject: str, *, partner: str = "411600", reference: str = "ZK-100",
                  received_on: date | None = None) -> dict[str, object]:
    return {"partner_city": partner, "partner_reference": reference, "id_number": subject, "name": "刘梅",
            "topic": "residence", "urgent": False, "received_on": (received_on or city_today()).isoformat()}


def test_unknown_person_id_format(api: Api) -> None:
    bad = api.as_("admin", "POST", f"{URL}/incoming", json=incoming_body("12345"))
    assert bad.status_code == 422
    ok_number = id_number(birth="19800101", seq="301")
    assert api.as_("admin", "POST", f"{URL}/incoming", json=incoming_body(ok_number)).json()["state"] == "unmatched"
