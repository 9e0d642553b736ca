from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from app.core.types import city_today
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.people.wf_helpers import RESIDENTS, flags_of, listed, listed_ids

CORRECTIONS = "/api/v1/corrections"


def ask(api: Api, resident_id: str, changes: dict[str, Any], user: str = "worker1", **extra: Any) -> Any:
    return api.as_(user, "POST", f"{RESIDENTS}/{resident_id}/corrections", json={"changes": changes, **extra})


def decide(api: Api, correction_id: str, accept: bool, user: str = "worker1", reason: str = "已核实") -> Any:
    return api.as_(user, "POST", f"{CORRECTIONS}/{correction_id}/decide", json={"accept": accept, "reason": reason})


def test_accept_applies_the_correction(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    created = ask(
        api,
        r["id"],
        {"phone": "+86 139-0000-1111", "employer": "郑州富士康", "marital_status": "married"},
        note="本人来电要求更正",
    )
    assert created.status_code == 201, created.text
    c = created.json()
    assert c["changes"] == {"phone": "13900001111", "employer": "郑州富士康", "marital_status": "married"}
    assert (c["status"], c["note"], c["requested_by"]) == ("pending", "本人来电要求更正", world.users["worker1"])

    history = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}/corrections")
    assert history.status_code == 200 and [x["id"] for x in history.json()["items"]] == [c["id"]]
    [item] = [x for x in listed(api, "worker1", CORRECTIONS, status="pending") if x["id"] == c["id"]]
    assert item["fields"] == ["employer", "marital_status", "phone"]
    assert "changes" not in item  # the inbox holds no values
    assert c["id"] in listed_ids(api, "sup_street", CORRECTIONS)

    accepted = decide(api, c["id"], True)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["status"], accepted.json()["decision_reason"]) == ("accepted", "已核实")
    assert accepted.json()["decided_by"] == world.users["worker1"]
    now = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}").json()
    assert (now["phone"], now["employer"], now["marital_status"], now["version"]) == (
        "13900001111",
        "郑州富士康",
        "married",
        2,
    )
    assert (now["name"], now["hukou_code"]) == (r["name"], r["hukou_code"])  # untouched fields stay

    again = decide(api, c["id"], False)
    assert (again.status_code, again.json()["code"]) == (409, "correction_not_pending")
    assert c["id"] not in listed_ids(api, "worker1", CORRECTIONS, status="pending")
    assert c["id"] in listed_ids(api, "worker1", CORRECTIONS, status="accepted")

    created_ev = audit_events(engine, "correction.create")
    accepted_ev = audit_events(engine, "correction.accept")
    assert [e["target_id"] for e in created_ev] == [c["id"]] == [e["target_id"] for e in accepted_ev]
    assert created_ev[0]["fields"] == accepted_ev[0]["fields"] == "employer,marital_status,phone"
    assert json.loads(accepted_ev[0]["detail"]) == {"resident_id": r["id"]}
    assert audit_events(engine, "resident.read.corrections")[0]["target_id"] == r["id"]
    log = all_audit_text(engine)
    for value in ("13900001111", "郑州富士康", "本人来电要求更正", "已核实", "married"):
        assert value not in log, value


def test_reject_leaves_the_record(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    c = ask(api, r["id"], {"name": "张莉"}).json()
    for payload in (
        {"accept": False},
        {"accept": False, "reason": ""},
        {"reason": "x"},
        {"accept": False, "reason": "x" * 501},
        {"accept": "maybe", "reason": "x"},
    ):
        bad = api.as_("worker1", "POST", f"{CORRECTIONS}/{c['id']}/decide", json=payload)
        assert bad.status_code == 422, payload
    rejected = decide(api, c["id"], False, reason="户籍证明上的姓名为张丽")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["decision_reason"]) == ("rejected", "户籍证明上的姓名为张丽")
    now = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}").json()
    assert (now["name"], now["version"]) == ("张丽", 1)
    assert decide(api, c["id"], True).json()["code"] == "correction_not_pending"
    event = audit_events(engine, "correction.reject")[0]
    assert (event["target_id"], event["fields"]) == (c["id"], "name")
    assert "张莉" not in all_audit_text(engine)


def test_values_are_checked_when_asked(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    tomorrow_plus = (city_today() + timedelta(days=5)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"phone": "12345"}, "phone_format"),
        ({"phone": "+86 120 0000 0000"}, "phone_format"),
        ({"arrival_date": tomorrow_plus}, "date_out_of_range"),
        ({"arrival_date": "1899-12-31"}, "date_out_of_range"),
        ({}, "no_changes"),
        ({"name": None}, "cannot_be_cleared"),
        ({"hukou_code": None}, "cannot_be_cleared"),
        ({"name": "张\x00丽"}, "nul_byte"),
        ({"name": ""}, "validation_error"),
        ({"hukou_code": "4116"}, "validation_error"),
        ({"marital_status": "complicated"}, "validation_error"),
        ({"id_number": id_number(seq="004")}, "validation_error"),  # not a correctable field here
        ({"sex": "M"}, "validation_error"),
        ({"employer": "x" * 101}, "validation_error"),
    ]
    for changes, code in cases:
        response = ask(api, r["id"], changes)
        assert (response.status_code, response.json()["code"]) == (422, code), (changes, response.text)
    assert ask(api, r["id"], {"name": "张莉"}, note="x" * 501).status_code == 422
    assert api.as_("worker1", "POST", f"{RESIDENTS}/{r['id']}/corrections", json={"name": "张莉"}).status_code == 422
    assert rows(engine, "SELECT id FROM correction_requests WHERE resident_id = :r", r=r["id"]) == []

    # Clearing an optional field is a correction too.
    cleared = ask(api, r["id"], {"phone": None, "ethnicity": ""})
    assert cleared.status_code == 201, cleared.text
    assert decide(api, cleared.json()["id"], True).status_code == 200
    now = api.as_("worker1", "GET", f"{RESIDENTS}/{r['id']}").json()
    assert now["phone"] is None


def test_scope_and_roles(api: Api, world: World) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    c = ask(api, r["id"], {"occupation": "快递员"}).json()
    assert ask(api, r["id"], {"occupation": "厨师"}, user="worker2").status_code == 404
    assert ask(api, r["id"], {"occupation": "厨师"}, user="sup_other").status_code == 404
    assert ask(api, r["id"], {"occupation": "厨师"}, user="auditor").status_code == 403
    assert ask(api, "nope", {"occupation": "厨师"}).status_code == 404
    assert api.as_("worker2", "GET", f"{RESIDENTS}/{r['id']}/corrections").status_code == 404
    assert api.as_("auditor", "GET", CORRECTIONS).status_code == 403
    assert c["id"] not in listed_ids(api, "worker2", CORRECTIONS)
    assert decide(api, c["id"], True, user="worker2").status_code == 404
    assert decide(api, c["id"], True, user="auditor").status_code == 403
    assert decide(api, "nope", True).status_code == 404
    assert decide(api, c["id"], True, user="sup_district").status_code == 200


def test_requests_follow_the_person(api: Api, world: World) -> None:
    """Scope is the resident's current area: after a transfer the new community decides."""
    r = register_resident(api, "worker1", dwelling_id(world))
    c = ask(api, r["id"], {"occupation": "快递员"}).json()
    response = api.as_(
        "worker3",
        "POST",
        RESIDENTS,
        json={
            "name": "张丽",
            "id_number": r["id_number"],
            "hukou_code": "411602",
            "arrival_date": "2026-01-05",
            "dwelling_id": world.dwellings[world.community("c3")["id"]][0],
        },
    )
    tid = response.json()["details"]["transfer_request_id"]
    assert api.as_("worker1", "POST", f"/api/v1/transfers/{tid}/accept").status_code == 200
    assert decide(api, c["id"], True).status_code == 404
    assert decide(api, c["id"], True, user="worker3").status_code == 200
    assert api.as_("worker3", "GET", f"{RESIDENTS}/{r['id']}").json()["occupation"] == "快递员"


def test_accepted_name_change_is_checked_for_duplicates(api: Api, world: World, engine: Engine) -> None:
    first = register_resident(api, "worker1", dwelling_id(world))
    other = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=id_number(seq="004"), name="张莉")
    assert flags_of(engine, first["id"], other["id"]) == []
    c = ask(api, other["id"], {"name": "张丽"}).json()
    assert decide(api, c["id"], True).status_code == 200
    [flag] = flags_of(engine, first["id"], other["id"])
    assert {flag["resident_a"], flag["resident_b"]} == {first["id"], other["id"]}


def test_values_that_no_longer_pass_are_not_applied(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    c = ask(api, r["id"], {"hukou_code": "411602"}).json()
    # Say the rules tightened after the request was recorded.
    execute(engine, "UPDATE correction_requests SET changes = :c WHERE id = :i", c='{"hukou_code": "41"}', i=c["id"])
    refused = decide(api, c["id"], True)
    assert (refused.status_code, refused.json()["code"]) == (409, "correction_invalid")
    assert decide(api, c["id"], False, reason="规则已变更").status_code == 200


def test_anonymised_or_archived_records_take_no_corrections(api: Api, world: World, engine: Engine) -> None:
    r = register_resident(api, "worker1", dwelling_id(world))
    c = ask(api, r["id"], {"occupation": "快递员"}).json()
    execute(engine, "UPDATE residents SET anonymised_at = :t WHERE id = :i", t=datetime.now(UTC), i=r["id"])
    assert ask(api, r["id"], {"occupation": "厨师"}).json()["code"] == "resident_anonymised"
    accepted = decide(api, c["id"], True)
    assert (accepted.status_code, accepted.json()["code"]) == (409, "resident_anonymised")
    # A rejection needs nothing from the record and still closes the request.
    assert decide(api, c["id"], False, reason="记录已匿名化").json()["status"] == "rejected"
