"""Identity input is checked as documented (issue 11, items 2 and 11a): ID numbers must name a province of
GB/T 2260 (a supervisor may still accept one as "ID unverified", as with a bad check digit), and numbers
are written with ASCII digits (full-width input is normalised; other scripts' digits are refused)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.people.models import Resident
from app.people.rules import check_char, provinces
from app.sync.wire import date_to_ms
from tests.conftest import Api, World
from tests.db import rows
from tests.factories import dwelling_id, register_resident
from tests.people.import_helpers import csv_file, errors, person, upload
from tests.people.rec_helpers import LANDLORDS, RESIDENTS, free_dwelling, landlord_body, resident_fields, valid_doc
from tests.sync.helpers import rows as orm_rows
from tests.sync.push_helpers import changes, codes, cursor, push, resident_raw, wid

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def with_check(first17: str) -> str:
    return first17 + check_char(first17)


def nowhere_id(area: str = "000000", seq: str = "024") -> str:
    """A well-formed ID whose check digit is right but whose address code names no province."""
    return with_check(f"{area}19900315{seq}")


def body(world: World, **over: Any) -> dict[str, Any]:
    data = {"name": "张丽", "id_number": nowhere_id(), "hukou_code": "411602", "arrival_date": "2026-10-01",
            "dwelling_id": dwelling_id(world)}
    data.update(over)
    return data


def count(engine: Engine) -> int:
    return int(rows(engine, "SELECT count(*) AS n FROM residents")[0]["n"])


# --- provinces -----------------------------------------------------------------------------------------------


def test_the_province_list_is_gbt_2260() -> None:
    assert sorted(provinces()) == sorted(
        [str(c) for c in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                          50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82)])
    assert provinces()["41"] == "河南省"


@pytest.mark.parametrize("area", ["000000", "100000", "990101", "200101", "470000", "910000"])
def test_unknown_province_is_refused_like_a_bad_check_digit(api: Api, world: World, engine: Engine,
                                                             area: str) -> None:
    before = count(engine)
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=nowhere_id(area)))
    assert (response.status_code, response.json()["code"]) == (422, "id_province_unknown")
    # A worker may not accept it as unverified; nothing is stored either way.
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=nowhere_id(area),
                                                                accept_unverified_id=True))
    assert response.status_code == 403
    assert count(engine) == before


def test_a_supervisor_registers_it_as_id_unverified(api: Api, world: World, engine: Engine) -> None:
    number = nowhere_id()
    created = api.as_("sup_street", "POST", RESIDENTS, json=body(world, id_number=number, accept_unverified_id=True))
    assert created.status_code == 201, created.text
    assert created.json()["id_verified"] is False
    [row] = rows(engine, "SELECT id_verified, id_accepted_by FROM residents WHERE id_number = :n", n=number)
    assert not row["id_verified"] and row["id_accepted_by"] == world.users["sup_street"]


def test_a_bad_check_digit_is_named_first(api: Api, world: World) -> None:
    good = nowhere_id()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=bad))
    assert (response.status_code, response.json()["code"]) == (422, "id_check_digit")


@pytest.mark.parametrize("area", ["410100", "412701", "419001", "110000", "820000", "711234", "659999"])
def test_old_or_unusual_codes_below_province_level_are_accepted(api: Api, world: World, area: str) -> None:
    """412701 (周口地区, before 2000) and invented county codes of a known province: only the province is checked."""
    created = register_resident(api, "worker1", dwelling_id(world),
                                **resident_fields(id_number=nowhere_id(area, seq="022")))
    assert created["id_verified"] is True


def test_landlord_with_an_unknown_province_is_refused(api: Api, engine: Engine) -> None:
    before = rows(engine, "SELECT count(*) AS n FROM landlords")[0]["n"]
    response = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(id_number=nowhere_id(seq="031")))
    assert (response.status_code, response.json()["code"]) == (422, "id_province_unknown")
    assert rows(engine, "SELECT count(*) AS n FROM landlords")[0]["n"] == before


def test_import_reports_the_province_and_lets_a_supervisor_accept(api: Api, world: World, engine: Engine) -> None:
    number = nowhere_id(seq="042")
    assert errors(upload(api, "worker1", csv_file([person(world, 公民身份号码=number)]))) == {
        (2, "公民身份号码", "id_province_unknown")}
    records = [person(world, 公民身份号码=number, 身份号码未核验="是")]
    assert errors(upload(api, "worker1", csv_file(records))) == {(2, "身份号码未核验", "supervisor_only")}
    assert upload(api, "sup_street", csv_file(records), dry_run=False).status_code == 201
    [row] = rows(engine, "SELECT id_verified FROM residents WHERE id_number = :n", n=number)
    assert not row["id_verified"]


def test_sync_push_refuses_the_record_with_the_code(api: Api, world: World, engine: Engine) -> None:
    last = cursor(api, "worker1")
    rid = wid()
    raw = resident_raw(rid, dwelling_id(world), "000", id_number=nowhere_id(seq="052"))
    assert codes(push(api, "worker1", changes(residents={"created": [raw]}), last)) == {rid: "id_province_unknown"}
    assert not orm_rows(engine, select(Resident.id).where(Resident.id == rid))


@pytest.mark.parametrize("code", ["000000", "990000", "100000"])
def test_division_codes_must_name_a_province(api: Api, world: World, engine: Engine, code: str) -> None:
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=with_check("41160219900315026"),
                                                                hukou_code=code))
    assert (response.status_code, response.json()["code"]) == (422, "division_province_unknown")
    resident = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    response = api.as_("worker1", "POST", f"{RESIDENTS}/{resident['id']}/fp-documents",
                       json=valid_doc(issuing_division=code))
    assert (response.status_code, response.json()["code"]) == (422, "division_province_unknown")
    errs = errors(upload(api, "worker1", csv_file([person(world, 户籍地代码=code)])))
    assert errs == {(2, "户籍地代码", "hukou_code_province")}


# --- ASCII digits ----------------------------------------------------------------------------------------------


def test_id_number_in_other_scripts_digits_is_refused(api: Api, world: World, engine: Engine) -> None:
    """Before: accepted, and stored in Arabic-Indic digits (so never matched by a search or a duplicate check)."""
    number = with_check("41160219900315028")
    before = count(engine)
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=number.translate(ARABIC_INDIC)))
    assert (response.status_code, response.json()["code"]) == (422, "id_format")
    assert count(engine) == before


def test_full_width_id_and_phone_are_stored_in_ascii(api: Api, world: World, engine: Engine) -> None:
    number = with_check("41160219900315030")
    created = api.as_("worker1", "POST", RESIDENTS, json=body(
        world, id_number=number.translate(FULL_WIDTH), phone="１３８００１３８０００"))
    assert created.status_code == 201, created.text
    assert (created.json()["id_number"], created.json()["phone"]) == (number, "13800138000")
    found = api.as_("worker1", "GET", RESIDENTS, params={"id_number": number.translate(FULL_WIDTH)}).json()
    assert found["total"] == 1


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("phone", "١٣٨٠٠١٣٨٠٠٠", "phone_format"),
    ("phone", "13８00138000".translate(ARABIC_INDIC), "phone_format"),
    ("hukou_code", "٤١١٦٠٢", "validation_error"),
])
def test_other_scripts_digits_are_refused_in_fields(api: Api, world: World, field: str, value: str,
                                                    expected: str) -> None:
    response = api.as_("worker1", "POST", RESIDENTS, json=body(world, id_number=with_check("41160219900315032"),
                                                                **{field: value}))
    assert (response.status_code, response.json()["code"]) == (422, expected)


def test_fp_document_division_in_other_digits_is_refused(api: Api, world: World) -> None:
    resident = register_resident(api, "worker1", dwelling_id(world), **resident_fields())
    response = api.as_("worker1", "POST", f"{RESIDENTS}/{resident['id']}/fp-documents",
                       json=valid_doc(issuing_division="٤١١٦٠٢"))
    assert response.status_code == 422


def test_task_month_in_other_digits_is_refused(api: Api) -> None:
    response = api.as_("sup_street", "POST", "/api/v1/tasks/generate", json={"month": "20٢٦-12"})
    assert response.status_code == 422
    assert not rows_of_period(api)


def rows_of_period(api: Api) -> list[Any]:
    listed = api.as_("sup_street", "GET", "/api/v1/tasks", params={"limit": 200}).json()["items"]
    return [t for t in listed if not t["period"].isascii()]


def test_import_date_in_other_digits_is_refused(api: Api, world: World) -> None:
    for text in ("٢٠٢٦-09-01", "٢٠٢٦٠٩٠١"):
        assert errors(upload(api, "worker1", csv_file([person(world, 到达日期=text)]))) == {
            (2, "到达日期", "date_format")}
    # Full-width digits (an IME in full-width mode) are read as ASCII.
    assert not errors(upload(api, "worker1", csv_file([person(world, 到达日期="２０２６０９０１")])))


def test_landlord_search_normalises_full_width(api: Api, engine: Engine, world: World) -> None:
    created = api.as_("worker1", "POST", LANDLORDS, json=landlord_body(dwelling_id=free_dwelling(engine, world)))
    assert created.status_code == 201, created.text
    number = created.json()["id_number"]
    found = api.as_("worker1", "GET", LANDLORDS, params={"id_number": number.translate(FULL_WIDTH)}).json()
    assert [i["id"] for i in found["items"]] == [created.json()["id"]]


def test_sync_arrival_date_still_takes_epoch_ms(api: Api, world: World) -> None:
    """Dates on the sync wire are epoch milliseconds (docs/sync.md); only the REST API takes ISO text."""
    last = cursor(api, "worker1")
    rid = wid()
    raw = resident_raw(rid, dwelling_id(world), "062", arrival_date=date_to_ms(date(2026, 9, 2)))
    assert codes(push(api, "worker1", changes(residents={"created": [raw]}), last)) == {}
