from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.people.models import FpDocument, HealthRecord
from tests.conftest import Api, World
from tests.db import all_audit_text, audit_events, execute, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.people.wf_helpers import ID_A, ID_B, RESIDENTS, flags_of, listed, listed_ids, merge, pair

DUPES = "/api/v1/duplicates"
def open_flag(api: Api, *residents: dict[str, Any], user: str = "sup_street") -> dict[str, Any]:
    """The one open flag listed for `user` that concerns these residents."""
    ids = {r["id"] for r in residents}
    mine = [f for f in listed(api, user, DUPES, status="open") if {f["resident_a"], f["resident_b"]} & ids]
    assert len(mine) == 1, mine
    return mine[0]


def add_health_and_doc(engine: Engine, resident_id: str, district_code: str) -> None:
    with unit_of_work(engine=engine) as session:
        session.add(
            HealthRecord(
                resident_id=resident_id, district_code=district_code, pregnancy="not_pregnant", contraception="iud"
            )
        )
        session.add(FpDocument(resident_id=resident_id, district_code=district_code, status="valid", number="FP-1"))


def test_flag_for_same_name_birth_date_and_phone(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    flag = open_flag(api, a, b)
    assert (flag["resident_a"], flag["resident_b"]) == tuple(sorted((a["id"], b["id"])))
    assert set(flag) == {"id", "resident_a", "resident_b", "other_area", "status", "decided_by", "decided_at",
                         "created_at"}
    assert flag["other_area"] is False
    assert open_flag(api, a, user="sup_district")["id"] == flag["id"]
    assert open_flag(api, b, user="admin")["id"] == flag["id"]
    assert flag["id"] not in listed_ids(api, "sup_other", DUPES)
    assert api.as_("worker1", "GET", DUPES).status_code == 403
    assert api.as_("auditor", "GET", DUPES).status_code == 403
    assert flag["id"] not in listed_ids(api, "sup_street", DUPES, status="merged")
    assert api.as_("sup_street", "GET", DUPES, params={"status": "closed"}).status_code == 422

    # A different phone, or a different birth date, is not a likely duplicate.
    c = register_resident(api, "worker1", dwelling_id(world, "c1", 2), id_number=id_number(seq="006"),
                          phone="13900001111")
    d = register_resident(api, "worker1", dwelling_id(world, "c1", 3), id_number=id_number(birth="19900316", seq="008"))
    assert flags_of(engine, c["id"], d["id"]) == []


def test_a_pair_across_two_areas_shows_each_side_only_its_own_record(api: Api, world: World,
                                                                     engine: Engine) -> None:
    here = register_resident(api, "worker1", dwelling_id(world), id_number=ID_A)
    there = register_resident(api, "worker3", dwelling_id(world, "c3"), id_number=ID_B)
    [stored] = flags_of(engine, here["id"], there["id"])
    for user, mine, other in (("sup_other", there, here), ("sup_district", here, there), ("sup_street", here, there)):
        response = api.as_(user, "GET", DUPES, params={"status": "open"})
        assert response.status_code == 200
        assert other["id"] not in response.text, user
        [flag] = [f for f in response.json()["items"] if f["id"] == stored["id"]]
        assert {flag["resident_a"], flag["resident_b"]} == {mine["id"], None}, user
        assert flag["other_area"] is True
    whole = next(f for f in listed(api, "admin", DUPES) if f["id"] == stored["id"])
    assert ({whole["resident_a"], whole["resident_b"]}, whole["other_area"]) == ({here["id"], there["id"]}, False)
    # Nor does the dossier name the other record.
    dossier = api.as_("worker3", "GET", f"{RESIDENTS}/{there['id']}/dossier")
    assert dossier.status_code == 200 and here["id"] not in dossier.text
    assert [f["other_resident_id"] for f in dossier.json()["duplicate_flags"]] == [None]
    own = api.as_("admin", "GET", f"{RESIDENTS}/{there['id']}/dossier").json()
    assert [f["other_resident_id"] for f in own["duplicate_flags"]] == [here["id"]]
    # Merging needs both records in scope; either side may dismiss the flag.
    merged = merge(api, there, here, user="sup_other")
    assert merged.status_code == 404
    dismissed = api.as_("sup_district", "POST", f"{DUPES}/{stored['id']}/dismiss", json={"reason": "different_people"})
    assert dismissed.status_code == 200, dismissed.text
    assert (dismissed.json()["status"], dismissed.json()["resident_b" if here["id"] == stored["resident_b"] else
                                                         "resident_a"]) == ("dismissed", here["id"])
    assert there["id"] not in dismissed.text


def test_dismiss(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    flag = open_flag(api, a, b)
    url = f"{DUPES}/{flag['id']}/dismiss"
    assert api.as_("worker1", "POST", url, json={"reason": "different_people"}).status_code == 403
    assert api.as_("sup_other", "POST", url, json={"reason": "different_people"}).status_code == 404
    assert api.as_("sup_street", "POST", f"{DUPES}/nope/dismiss", json={"reason": "other"}).status_code == 404
    for payload in ({}, {"reason": "他们是双胞胎"}, {"reason": "other", "note": "x"}):
        assert api.as_("sup_street", "POST", url, json=payload).status_code == 422, payload

    done = api.as_("sup_street", "POST", url, json={"reason": "different_people"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["decided_by"]) == ("dismissed", world.users["sup_street"])
    again = api.as_("sup_street", "POST", url, json={"reason": "other"})
    assert (again.status_code, again.json()["code"]) == (409, "duplicate_not_open")
    assert flag["id"] not in listed_ids(api, "sup_street", DUPES, status="open")
    assert flag["id"] in listed_ids(api, "sup_street", DUPES, status="dismissed")
    event = audit_events(engine, "duplicate.dismiss")[0]
    assert event["target_id"] == flag["id"] and json.loads(event["detail"])["reason"] == "different_people"


def test_merge_keeps_lineage(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    flag = open_flag(api, a, b)
    add_health_and_doc(engine, b["id"], world.community("c1")["district_code"])

    merged = merge(api, a, b)
    assert merged.status_code == 200, merged.text
    out = merged.json()
    assert out["survivor"]["id"] == a["id"] and out["merged_id"] == b["id"]
    assert out["survivor"]["id_number"] == ID_A and out["survivor"]["version"] == 2
    assert (out["tenancies_moved"], out["fp_documents_moved"], out["health_record"]) == (1, 1, "moved")
    assert (out["duplicate_flags_closed"], out["duplicate_flags_repointed"]) == (1, 0)
    # Health now on file with a valid 婚育证明 and an IUD: no longer a key person.
    assert out["survivor"]["key_person"] is False

    old = rows(engine, "SELECT * FROM residents WHERE id = :i", i=b["id"])[0]
    assert (old["status"], old["merged_into_id"], old["id_number"], old["version"]) == ("ARCHIVED", a["id"], ID_B, 2)
    assert old["key_person"] in (False, 0)
    tenancies = rows(engine, "SELECT * FROM tenancies WHERE resident_id = :i", i=a["id"])
    assert len(tenancies) == 2 and sum(t["move_out"] is None for t in tenancies) == 1
    assert next(t for t in tenancies if t["move_out"] is None)["dwelling_id"] == a["dwelling_id"]
    assert rows(engine, "SELECT count(*) AS n FROM tenancies WHERE resident_id = :i", i=b["id"])[0]["n"] == 0
    assert rows(engine, "SELECT resident_id FROM fp_documents WHERE number = 'FP-1'") == [{"resident_id": a["id"]}]
    assert rows(
        engine, "SELECT resident_id FROM health_records WHERE resident_id IN (:a, :b)", a=a["id"], b=b["id"]
    ) == [{"resident_id": a["id"]}]
    assert rows(engine, "SELECT status FROM duplicate_flags WHERE id = :i", i=flag["id"])[0]["status"] == "merged"

    event = audit_events(engine, "resident.merge")[0]
    detail = json.loads(event["detail"])
    assert event["target_id"] == a["id"] and (detail["kept_id"], detail["merged_id"]) == (a["id"], b["id"])
    assert detail["reason"] == "duplicate_registration"
    assert "张丽" not in all_audit_text(engine) and ID_B not in all_audit_text(engine)

    # The archived record stays readable as lineage.
    lineage = api.as_("worker1", "GET", f"{RESIDENTS}/{b['id']}").json()
    assert (lineage["status"], lineage["merged_into_id"]) == ("ARCHIVED", a["id"])

    # Registering the merged record's ID number again finds the survivor.
    again = api.as_(
        "worker1",
        "POST",
        RESIDENTS,
        json={
            "name": "张丽",
            "id_number": ID_B,
            "hukou_code": "411602",
            "arrival_date": "2026-01-05",
            "dwelling_id": world.dwellings[world.community("c1")["id"]][0],
        },
    )
    assert (again.status_code, again.json()["code"], again.json()["details"]) == (
        409,
        "resident_exists",
        {"resident_id": a["id"]},
    )
    elsewhere = api.as_(
        "worker3",
        "POST",
        RESIDENTS,
        json={
            "name": "张丽",
            "id_number": ID_B,
            "hukou_code": "411602",
            "arrival_date": "2026-01-05",
            "dwelling_id": world.dwellings[world.community("c3")["id"]][0],
        },
    )
    assert elsewhere.json()["code"] == "resident_registered_elsewhere"
    assert a["id"] not in elsewhere.text and b["id"] not in elsewhere.text
    tid = elsewhere.json()["details"]["transfer_request_id"]
    assert rows(engine, "SELECT resident_id FROM transfer_requests WHERE id = :i", i=tid)[0]["resident_id"] == a["id"]

    # A merged record cannot be merged again, nor be merged into.
    survivor = api.as_("worker1", "GET", f"{RESIDENTS}/{a['id']}").json()
    twice = merge(api, survivor, lineage)
    assert (twice.status_code, twice.json()["code"]) == (409, "resident_already_merged")
    into = merge(api, lineage, survivor)
    assert (into.status_code, into.json()["code"]) == (409, "resident_already_merged")
    # Corrections go to the surviving record.
    archived = api.as_("worker1", "POST", f"{RESIDENTS}/{b['id']}/corrections", json={"changes": {"name": "张莉"}})
    assert (archived.status_code, archived.json()["code"]) == (409, "resident_archived")


def test_merge_keeps_a_second_health_record_on_the_merged_one(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    district = world.community("c1")["district_code"]
    add_health_and_doc(engine, a["id"], district)
    add_health_and_doc(engine, b["id"], district)
    out = merge(api, a, b).json()
    assert (out["health_record"], out["fp_documents_moved"]) == ("kept_on_merged", 1)
    owners = sorted(
        r["resident_id"]
        for r in rows(
            engine, "SELECT resident_id FROM health_records WHERE resident_id IN (:a, :b)", a=a["id"], b=b["id"]
        )
    )
    assert owners == sorted((a["id"], b["id"]))
    assert rows(engine, "SELECT count(*) AS n FROM fp_documents WHERE resident_id = :i", i=a["id"])[0]["n"] == 2


def test_merge_refusals(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    c = register_resident(api, "worker3", dwelling_id(world, "c3"), id_number=id_number(seq="010"))
    assert merge(api, a, b, user="worker1").status_code == 403
    assert merge(api, a, b, user="auditor").status_code == 403
    same = merge(api, a, a)
    assert (same.status_code, same.json()["code"]) == (409, "merge_same_record")
    assert merge(api, c, c).status_code == 404  # out of scope before anything else
    assert merge(api, a, b, user="sup_other").status_code == 404
    assert merge(api, a, c).status_code == 404  # one of the two outside the supervisor's scope
    assert merge(api, c, a).status_code == 404
    stale = merge(api, a, b, version_merged=7)
    assert (stale.status_code, stale.json()["code"]) == (409, "stale_version")
    assert stale.json()["details"] == {"resident_id": b["id"], "current_version": 1}
    for over in ({"reason": "因为"}, {"version_keep": 0}, {"merged_id": "x" * 33}, {"extra": True}):
        assert merge(api, a, b, **over).status_code == 422, over

    # Keep the registered record, not the one that left.
    left = api.as_(
        "worker1",
        "POST",
        f"{RESIDENTS}/{a['id']}/leave",
        json={"version": 1, "left_on": "2026-02-01", "reason": "left_city"},
    ).json()
    wrong_way = merge(api, left, b)
    assert (wrong_way.status_code, wrong_way.json()["code"]) == (409, "merge_keep_not_registered")
    assert rows(engine, "SELECT merged_into_id FROM residents WHERE id = :b", b=b["id"]) == [{"merged_into_id": None}]
    assert merge(api, b, left).status_code == 200

    # An admin sees the whole city, so can merge across districts.
    b_now = api.as_("admin", "GET", f"{RESIDENTS}/{b['id']}").json()
    assert merge(api, b_now, c, user="admin").status_code == 200


def test_merge_settles_open_requests_and_third_party_flags(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    # A third record that looks like b: registered in c2 with the same name, birth date and phone.
    third = register_resident(api, "worker2", dwelling_id(world, "c2"), id_number=id_number(seq="012"))
    assert len(flags_of(engine, a["id"], b["id"], third["id"])) == 3  # a-b, a-third, b-third
    # worker3 asks for b's record; a correction is pending on b.
    transfer = api.as_(
        "worker3",
        "POST",
        RESIDENTS,
        json={
            "name": "张丽",
            "id_number": ID_B,
            "hukou_code": "411602",
            "arrival_date": "2026-01-05",
            "dwelling_id": world.dwellings[world.community("c3")["id"]][0],
        },
    ).json()["details"]["transfer_request_id"]
    correction = api.as_(
        "worker1", "POST", f"{RESIDENTS}/{b['id']}/corrections", json={"changes": {"employer": "郑州富士康"}}
    )
    assert correction.status_code == 201, correction.text

    out = merge(api, a, b).json()
    assert (out["transfers_cancelled"], out["corrections_moved"]) == (1, 1)
    assert out["duplicate_flags_closed"] == 2  # a-b by the merge; b-third is the same as a-third
    assert out["duplicate_flags_repointed"] == 0
    t = rows(engine, "SELECT status, reason FROM transfer_requests WHERE id = :i", i=transfer)[0]
    assert (t["status"], t["reason"]) == ("cancelled", "resident_merged")
    moved = rows(engine, "SELECT resident_id FROM correction_requests WHERE id = :i", i=correction.json()["id"])
    assert moved[0]["resident_id"] == a["id"]
    flags = [f for f in flags_of(engine, a["id"], b["id"], third["id"]) if f["status"] == "open"]
    assert [{f["resident_a"], f["resident_b"]} for f in flags] == [{a["id"], third["id"]}]
    # The moved correction is decided on the survivor.
    decided = api.as_(
        "worker1",
        "POST",
        f"/api/v1/corrections/{correction.json()['id']}/decide",
        json={"accept": True, "reason": "核实无误"},
    )
    assert decided.status_code == 200, decided.text
    assert api.as_("worker1", "GET", f"{RESIDENTS}/{a['id']}").json()["employer"] == "郑州富士康"


def test_merge_repoints_flags_with_a_third_record(api: Api, world: World, engine: Engine) -> None:
    a = register_resident(api, "worker1", dwelling_id(world), id_number=ID_A, phone="13700137000")
    b = register_resident(api, "worker1", dwelling_id(world, "c1", 1), id_number=ID_B)
    third = register_resident(api, "worker2", dwelling_id(world, "c2"), id_number=id_number(seq="012"))
    # Only b and the third record share a phone: one flag, b-third.
    assert len(flags_of(engine, a["id"], b["id"], third["id"])) == 1
    out = merge(api, a, b).json()
    assert (out["duplicate_flags_closed"], out["duplicate_flags_repointed"]) == (0, 1)
    [flag] = flags_of(engine, a["id"], b["id"], third["id"])
    assert ({flag["resident_a"], flag["resident_b"]}, flag["status"]) == ({a["id"], third["id"]}, "open")
    assert flag["resident_a"] < flag["resident_b"]
    assert open_flag(api, a, third)["id"] == flag["id"]


def test_anonymised_records_are_not_merged(api: Api, world: World, engine: Engine) -> None:
    a, b = pair(api, world)
    execute(engine, "UPDATE residents SET anonymised_at = :t WHERE id = :i", t=datetime.now(UTC), i=b["id"])
    refused = merge(api, a, b)
    assert (refused.status_code, refused.json()["code"]) == (409, "resident_anonymised")
    assert refused.json()["details"] == {"resident_id": b["id"]}
