"""Per-audience response shapes: the partner allow-lists are domain.md's table, and nothing more.

These tests pin each allow-list literally: widening one means editing this file too, in review.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.actor import Role
from app.people import rules
from app.people.models import HealthRecord, Resident
from app.people.register.schemas import ResidentOut
from app.people.shapes import (
    ALLOW_LISTS,
    FIELD_SOURCES,
    PARTNER_KINDS,
    NoShape,
    ShapeExtra,
    shape_for,
)
from tests.factories import id_number

# domain.md, "Partners and what they may see". Changing one of these is a privacy decision.
EXPECTED = {
    # identity and residence fields only; never reproductive health, visits or services
    Role.police: {"id", "name", "sex", "birth_date", "id_number", "phone", "hukou_code", "hukou_address",
                  "dwelling_address", "arrival_date", "status", "left_on", "residence_permit_no"},
    # their own current tenants: name, masked ID, move-in/out dates; nothing else (plus the tenancy handle)
    Role.landlord: {"tenancy_id", "name", "id_number_masked", "move_in", "move_out"},
    # identity, residence, monthly verification status, 婚育证明 status
    Role.outflow_city: {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "residence_district_code",
                        "residence_community", "arrival_date", "status", "left_on", "verification_status",
                        "fp_document_status"},
}
HEALTH_COLUMNS = {c.name for c in HealthRecord.__table__.columns}  # type: ignore[attr-defined]
# Words that would betray reproductive-health, visit or service data, or something derived from it.
FORBIDDEN_WORDS = ("health", "pregnan", "contracep", "child", "iud", "key_person", "visit", "service",
                   "employer", "occupation", "marital")


def full_resident(**over: Any) -> Resident:
    values: dict[str, Any] = {
        "id": "a" * 32, "community_id": "b" * 32, "dwelling_id": "c" * 32, "area_path": "/410100/410102/",
        "district_code": "410102", "name": "李娜", "sex": "F", "birth_date": date(1990, 3, 15),
        "id_number": "411602199003150025", "id_verified": True, "phone": "13912345678", "ethnicity": "汉族",
        "hukou_code": "411602", "hukou_address": "周口市川汇区人民路1号", "arrival_date": date(2026, 1, 5),
        "marital_status": "married", "employer": "某制衣厂", "occupation": "缝纫工", "residence_permit_no": "豫A12345",
        "status": "REGISTERED", "key_person": True, "version": 3,
    }
    values.update(over)
    return Resident(**values)


FULL_EXTRA = ShapeExtra(dwelling_address="纬五路3号", community_name="纬五路社区", tenancy_id="d" * 32,
                        move_in=date(2026, 1, 5), move_out=None, fp_document_status="valid",
                        verification_status="PRESENT")


def test_allow_lists_are_pinned() -> None:
    assert set(ALLOW_LISTS) == set(EXPECTED) == set(PARTNER_KINDS)
    for kind, fields in ALLOW_LISTS.items():
        assert set(fields) == EXPECTED[kind], f"{kind} shape changed: decide it in domain.md first"
        assert len(fields) == len(set(fields))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_partner_shape_has_only_allowed_keys(kind: Role) -> None:
    for extra in (FULL_EXTRA, ShapeExtra(), None):
        shape = shape_for(kind, full_resident(), extra)
        assert set(shape) <= EXPECTED[kind]
        assert set(shape) == EXPECTED[kind]


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_partner_shape_never_holds_health_data(kind: Role) -> None:
    shape = shape_for(kind, full_resident(), FULL_EXTRA)
    assert not set(shape) & HEALTH_COLUMNS
    assert not [k for k in shape if any(w in k for w in FORBIDDEN_WORDS)]
    # and no way in: the extra context has no field that could carry it
    extra_fields = {f.name for f in dataclasses.fields(ShapeExtra)}
    assert not extra_fields & HEALTH_COLUMNS
    assert not [k for k in extra_fields if any(w in k for w in FORBIDDEN_WORDS)]


def test_every_allowed_key_has_a_source() -> None:
    for fields in ALLOW_LISTS.values():
        assert set(fields) <= set(FIELD_SOURCES)
    assert not set(FIELD_SOURCES) & HEALTH_COLUMNS


def test_landlord_sees_masked_id_and_no_contact() -> None:
    shape = shape_for(Role.landlord, full_resident(), FULL_EXTRA)
    assert shape == {"tenancy_id": "d" * 32, "name": "李娜", "id_number_masked": "4116**********0025",
                     "move_in": date(2026, 1, 5), "move_out": None}


def test_police_get_identity_and_residence() -> None:
    shape = shape_for("police", full_resident(), FULL_EXTRA)
    assert shape["id_number"] == "411602199003150025" and shape["dwelling_address"] == "纬五路3号"
    assert shape["residence_permit_no"] == "豫A12345"


def test_outflow_city_gets_community_not_address() -> None:
    shape = shape_for(Role.outflow_city, full_resident(), FULL_EXTRA)
    assert shape["residence_community"] == "纬五路社区" and shape["residence_district_code"] == "410102"
    assert "纬五路3号" not in shape.values() and "phone" not in shape
    assert shape["fp_document_status"] == "valid" and shape["verification_status"] == "PRESENT"
    assert shape_for(Role.outflow_city, full_resident())["verification_status"] is None


@pytest.mark.parametrize("kind", [Role.worker, Role.supervisor, Role.admin])
def test_staff_shape_is_the_whole_record(kind: Role) -> None:
    shape = shape_for(kind, full_resident())
    assert set(shape) == set(ResidentOut.model_fields)
    assert shape["id_number"] == "411602199003150025" and shape["employer"] == "某制衣厂"


@pytest.mark.parametrize("kind", ["auditor", "hacker", ""])
def test_no_shape_for_others(kind: str) -> None:
    with pytest.raises(NoShape):
        shape_for(kind, full_resident())


text = st.text(min_size=1, max_size=30)
maybe_text = st.none() | text


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(list(EXPECTED)),
    name=text, phone=st.from_regex(r"1[3-9]\d{9}", fullmatch=True), employer=maybe_text,
    born=st.dates(date(1940, 1, 1), date(2010, 12, 31)), male=st.booleans(),
    address=maybe_text, community=maybe_text, fp=st.sampled_from([None, "valid", "missing", "expired"]),
)
def test_shapes_hold_nothing_outside_their_list(kind: Role, name: str, phone: str, employer: str | None, born: date,
                                                male: bool, address: str | None, community: str | None,
                                                fp: str | None) -> None:
    number = id_number(born, male=male, n=7)
    resident = full_resident(name=name, phone=phone, employer=employer, birth_date=born, id_number=number,
                             sex="M" if male else "F")
    extra = ShapeExtra(dwelling_address=address, community_name=community, tenancy_id="e" * 32,
                       move_in=born + timedelta(days=7000), fp_document_status=fp)
    shape = shape_for(kind, resident, extra)
    assert set(shape) == EXPECTED[kind]
    values = [v for v in shape.values() if v is not None]
    if kind is Role.landlord:
        assert number not in values and phone not in values and rules.mask_id(number) in values
    if kind is not Role.police:
        assert phone not in values or phone == name
    if employer is not None:
        # Unless another field of the shape holds the same text (an employer called "F" and sex "F").
        without = shape_for(kind, full_resident(name=name, phone=phone, employer=None, birth_date=born,
                                                id_number=number, sex="M" if male else "F"), extra)
        assert employer not in values or employer in without.values()
