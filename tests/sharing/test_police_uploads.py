"""A police upload reconciled end to end: a dry run, the commit, the same upload again; every outcome (matched,
new, departed, conflicting), rows outside the jurisdiction and bad rows with their codes, in CSV, XLSX and JSON."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import audit_events, count, rows
from tests.factories import dwelling_id, id_number, register_resident
from tests.sharing.police_helpers import police_headers, send, to_csv, to_json, to_xlsx

DAY = "2026-11-20"


def address(engine: Engine, dwelling: str) -> str:
    return str(rows(engine, "SELECT address FROM dwellings WHERE id = :d", d=dwelling)[0]["address"])


def scenario(api: Api, world: World, engine: Engine) -> dict[str, Any]:
    """Residents in c1 (the station's) and c3 (not), and the rows a station sends about them."""
    c1, c3 = world.community("c1"), world.community("c3")
    d = [dwelling_id(world, "c1", i) for i in range(4)]
    matched = register_resident(api, "worker1", d[0], id_number=id_number(seq="202"), name="王芳")
    departed = register_resident(api, "worker1", d[1], id_number=id_number(seq="204"), name="李娜")
    moved = register_resident(api, "worker1", d[2], id_number=id_number(seq="206"), name="赵敏")
    elsewhere = register_resident(api, "worker3", dwelling_id(world, "c3", 0), id_number=id_number(seq="208"),
                                  name="孙丽")
    fresh = id_number(seq="210")

    def row(kind: str, ident: str, name: str, community: dict[str, Any] = c1, place: str = d[0],
            **over: str) -> dict[str, str]:
        return {"kind": kind, "id_number": ident, "name": name, "sex": "女", "community_code": community["code"],
                "address": address(engine, place), "date": DAY, "permit_no": "", "hukou_code": "411602", **over}

    records = [
        row("登记", matched["id_number"], "王芳", place=d[0]),  # row 2: matched
        row("注销", departed["id_number"], "李娜", place=d[1]),  # row 3: departed
        row("登记", moved["id_number"], "赵敏", place=d[3]),  # row 4: conflicting (another dwelling)
        row("登记", elsewhere["id_number"], "孙丽", place=d[0]),  # row 5: new to the station (registered in c3)
        row("登记", fresh, "周婷", place=d[0], permit_no="4101052026000123"),  # row 6: new
        row("登记", id_number(seq="212"), "吴静", community=c3, place=dwelling_id(world, "c3", 1)),  # 7: outside
        row("登记", id_number(seq="214")[:-1] + "0", "郑洁"),  # row 8: bad check character
        row("迁入", id_number(seq="216"), "", date="2026-13-01"),  # row 9: kind, name, date
        row("注销", id_number(seq="218"), "冯雪"),  # row 10: deregistration of someone not registered: matched
    ]
    return {"records": records, "matched": matched, "departed": departed, "moved": moved, "elsewhere": elsewhere,
            "fresh": fresh, "c1": c1, "c3": c3}


def codes(report: dict[str, Any]) -> set[tuple[int, str, str]]:
    return {(e["row"], e["field"], e["code"]) for e in report["errors"]}


def outcomes(report: dict[str, Any]) -> dict[int, str]:
    return {r["row"]: r["outcome"] for r in report["results"]}


EXPECTED_OUTCOMES = {2: "matched", 3: "departed", 4: "conflicting", 5: "new", 6: "new", 10: "matched"}
EXPECTED_ERRORS = {(7, "community_code", "outside_jurisdiction"), (8, "id_number", "id_check_digit"),
                   (9, "kind", "kind_format"), (9, "name", "required"), (9, "date", "date_format")}


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_a_police_upload_is_reconciled_end_to_end(api: Api, world: World, engine: Engine, fmt: str) -> None:
    s = scenario(api, world, engine)
    station = police_headers(api, engine, s["c1"]["path"], world.community("c2")["path"])
    data = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json}[fmt](s["records"])
    offset = 1 if fmt == "json" else 0  # JSON rows count objects from 1; a table's header is row 1
    expected = {n - offset: o for n, o in EXPECTED_OUTCOMES.items()}
    name, kind = {"csv": ("b.csv", "text/csv"), "xlsx": ("b.xlsx", "application/octet-stream"),
                  "json": ("b.json", "application/json")}[fmt]

    dry = ok(send(api, station, data, "2026-11-20-01", dry_run=True, name=name, content_type=kind))
    assert dry["dry_run"] and not dry["replayed"] and dry["format"] == fmt and dry["rows"] == 9
    assert outcomes(dry) == expected
    assert codes(dry) == {(n - offset, f, c) for n, f, c in EXPECTED_ERRORS}
    assert dry["counts"] == {"matched": 2, "new": 2, "departed": 1, "conflicting": 1, "refused": 3}
    assert count(engine, "police_batches") == 0 and count(engine, "police_report_rows") == 0
    assert audit_events(engine, "sharing.police_upload.dry_run")

    done = ok(send(api, station, data, "2026-11-20-01", name=name, content_type=kind), 201)
    assert not done["dry_run"] and outcomes(done) == expected and done["counts"] == dry["counts"]
    stored = {r["row_number"]: r for r in rows(engine, "SELECT * FROM police_report_rows")}
    assert {n: (r["outcome"], r["state"]) for n, r in stored.items()} == {
        2 - offset: ("matched", "done"), 3 - offset: ("departed", "proposed"), 4 - offset: ("conflicting", "pending"),
        5 - offset: ("conflicting", "pending"), 6 - offset: ("new", "pending"), 10 - offset: ("matched", "done")}
    assert stored[4 - offset]["conflict_fields"] == "dwelling" and stored[5 - offset]["reported"] == "new"
    # Departed, with no month opened to propose on: the worker gets a follow-up task to confirm it.
    task = rows(engine, "SELECT * FROM tasks WHERE id = :t", t=stored[3 - offset]["task_id"])[0]
    assert (task["resident_id"], task["kind"], task["reason"], task["state"]) == (
        s["departed"]["id"], "follow_up", "verify_residence", "open")
    # Disclosures: the residents whose registration the answer revealed (matched, departed, conflicting).
    disclosed = {r["resident_id"] for r in rows(engine, "SELECT resident_id FROM disclosures")}
    assert disclosed == {s["matched"]["id"], s["departed"]["id"], s["moved"]["id"]}

    tasks_before = count(engine, "tasks")
    again = ok(send(api, station, data, "2026-11-20-01", name=name, content_type=kind))
    assert again["replayed"] and outcomes(again) == expected and codes(again) == codes(done)
    assert again["counts"] == done["counts"]
    assert count(engine, "police_batches") == 1 and count(engine, "police_report_rows") == 6
    assert count(engine, "tasks") == tasks_before


def test_the_station_is_told_codes_and_counts_only(api: Api, world: World, engine: Engine) -> None:
    s = scenario(api, world, engine)
    station = police_headers(api, engine, s["c1"]["path"])
    body = send(api, station, to_csv(s["records"]), "r-1").text
    for resident in ("matched", "departed", "moved", "elsewhere"):
        assert s[resident]["id"] not in body and s[resident]["id_number"] not in body
    assert "王芳" not in body and "resident_id" not in body
    events = str(audit_events(engine, "sharing.police_upload"))
    assert s["fresh"] not in events and "周婷" not in events


def test_another_file_under_a_used_reference_is_refused(api: Api, world: World, engine: Engine) -> None:
    s = scenario(api, world, engine)
    station = police_headers(api, engine, s["c1"]["path"])
    ok(send(api, station, to_csv(s["records"]), "r-1"), 201)
    assert_error(send(api, station, to_csv(s["records"][:2]), "r-1"), 409, "batch_reference_reused")
    assert_error(send(api, station, to_csv(s["records"][:2]), "r-1", dry_run=True), 409, "batch_reference_reused")
    assert count(engine, "police_batches") == 1


def test_outside_the_jurisdiction_nothing_is_looked_up(api: Api, world: World, engine: Engine) -> None:
    """The same answer whether or not the person is registered there; nothing stored."""
    s = scenario(api, world, engine)
    station = police_headers(api, engine, s["c1"]["path"])
    c3_place = dwelling_id(world, "c3", 0)
    known = {**s["records"][0], "id_number": s["elsewhere"]["id_number"], "name": "孙丽",
             "community_code": s["c3"]["code"], "address": address(engine, c3_place)}
    unknown = {**known, "id_number": id_number(seq="230"), "name": "钱多"}
    report = ok(send(api, station, to_csv([known, unknown]), "r-2"), 201)
    assert codes(report) == {(n, "community_code", "outside_jurisdiction") for n in (2, 3)}
    assert report["results"] == [] and count(engine, "police_report_rows") == 0
    assert count(engine, "disclosures") == 0


def test_staff_cannot_upload_and_a_station_cannot_read_the_queue(api: Api, world: World, engine: Engine) -> None:
    station = police_headers(api, engine, world.community("c1")["path"])
    assert_error(api.as_("worker1", "POST", "/api/v1/partner/police/registrations", params={"reference": "x"},
                         files={"file": ("a.csv", b"a,b\n1,2\n", "text/csv")}), 403, "forbidden")
    assert_error(api.client.get("/api/v1/sharing/police-reports", headers=station), 403, "forbidden")


def test_without_the_residence_group_the_outcomes_are_withheld(api: Api, world: World, engine: Engine) -> None:
    s = scenario(api, world, engine)
    ok(api.as_("admin", "PUT", "/api/v1/sharing/profiles/police", json={
        "version": 1, "field_groups": ["identity"], "legal_basis": "x", "purpose": "y", "approval_required": False,
        "retention_days": 30}))
    station = police_headers(api, engine, s["c1"]["path"])
    for answer in (ok(send(api, station, to_csv(s["records"]), "w-1", dry_run=True)),
                   ok(send(api, station, to_csv(s["records"]), "w-1"), 201),
                   ok(send(api, station, to_csv(s["records"]), "w-1"))):  # the replay too
        assert answer["outcomes_withheld"] is True
        assert answer["counts"] == {"matched": None, "new": None, "departed": None, "conflicting": None, "refused": 3}
        assert outcomes(answer) == dict.fromkeys(EXPECTED_OUTCOMES)
        assert codes(answer) == EXPECTED_ERRORS
    assert count(engine, "disclosures") == 0  # nothing of the register was told
    stored = {r["row_number"]: r["outcome"] for r in rows(engine, "SELECT row_number, outcome FROM police_report_rows")}
    assert stored[2] == "matched" and stored[6] == "new"  # the office reconciles them all the same
