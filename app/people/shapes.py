"""Who sees which fields of a resident: the staff shape and one allow-list per partner kind.

The allow-lists are domain.md's "Partners and what they may see" table, field by field. `shape_for` builds
a partner's dict key by key from its allow-list, so a field can reach a partner only by being named here
(tests/people/test_shapes.py pins every list and fails when one gains a field).

Decisions (the table leaves room):
- police do identity work (residence-permit registration, deregistration), so they get the full ID
  number, the phone and the dwelling address; never reproductive health, visits or services.
- landlords get their own current tenants only: name, masked ID (4101**********123X), move-in and move-out
  dates, plus the tenancy's opaque id so that a move-out report can name the tenancy (it identifies
  nothing by itself: it is not the resident's id).
- outflow cities are the person's own 户籍地 authority, which already holds the full ID (it is their key
  for matching); they see residence at community level (district code and community name, no street
  address: precise location is sensitive and their work does not need it), the monthly verification
  status (None until the monthly cycle exists) and the 婚育证明 status. No phone: not needed for their work.
- opaque record ids (`id`) go to police and outflow cities, who exchange results about a record.

`ShapeExtra` carries what a shape needs beyond the resident row. It has no place for health data at all:
no partner shape can be built from a HealthRecord.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from app.core.actor import Role
from app.people import rules
from app.people.models import Resident
from app.people.register.schemas import ResidentOut


@dataclass(frozen=True)
class ShapeExtra:
    """Context for a partner shape, looked up by the caller (the partner feed) and never health data."""

    dwelling_address: str | None = None
    community_name: str | None = None
    tenancy_id: str | None = None
    move_in: date | None = None
    move_out: date | None = None
    fp_document_status: str | None = None
    verification_status: str | None = None  # the monthly cycle's latest outcome; None until it exists


# Order is the order of keys in the output.
POLICE_FIELDS: tuple[str, ...] = (
    "id", "name", "sex", "birth_date", "id_number", "phone", "hukou_code", "hukou_address",
    "dwelling_address", "arrival_date", "status", "left_on", "residence_permit_no",
)
LANDLORD_FIELDS: tuple[str, ...] = ("tenancy_id", "name", "id_number_masked", "move_in", "move_out")
OUTFLOW_CITY_FIELDS: tuple[str, ...] = (
    "id", "name", "sex", "birth_date", "id_number", "hukou_code", "residence_district_code",
    "residence_community", "arrival_date", "status", "left_on", "verification_status", "fp_document_status",
)

ALLOW_LISTS: Mapping[Role, tuple[str, ...]] = MappingProxyType({
    Role.police: POLICE_FIELDS,
    Role.landlord: LANDLORD_FIELDS,
    Role.outflow_city: OUTFLOW_CITY_FIELDS,
})
PARTNER_KINDS = tuple(ALLOW_LISTS)
STAFF_KINDS = (Role.worker, Role.supervisor, Role.admin)

Source = Callable[[Resident, ShapeExtra], Any]
FIELD_SOURCES: Mapping[str, Source] = MappingProxyType({
    "id": lambda r, e: r.id,
    "name": lambda r, e: r.name,
    "sex": lambda r, e: r.sex,
    "birth_date": lambda r, e: r.birth_date,
    "id_number": lambda r, e: r.id_number,
    "id_number_masked": lambda r, e: rules.mask_id(r.id_number),
    "phone": lambda r, e: r.phone,
    "hukou_code": lambda r, e: r.hukou_code,
    "hukou_address": lambda r, e: r.hukou_address,
    "dwelling_address": lambda r, e: e.dwelling_address,
    "residence_district_code": lambda r, e: r.district_code,
    "residence_community": lambda r, e: e.community_name,
    "arrival_date": lambda r, e: r.arrival_date,
    "status": lambda r, e: r.status,
    "left_on": lambda r, e: r.left_on,
    "residence_permit_no": lambda r, e: r.residence_permit_no,
    "tenancy_id": lambda r, e: e.tenancy_id,
    "move_in": lambda r, e: e.move_in,
    "move_out": lambda r, e: e.move_out,
    "verification_status": lambda r, e: e.verification_status,
    "fp_document_status": lambda r, e: e.fp_document_status,
})


class NoShape(ValueError):
    """The audience has no resident shape at all (auditors read the audit views, not residents)."""


def staff_shape(resident: Resident) -> dict[str, Any]:
    """Workers and supervisors in scope, and admins: the whole record."""
    return ResidentOut.model_validate(resident).model_dump()


def partner_shape(kind: Role, resident: Resident, extra: ShapeExtra | None = None) -> dict[str, Any]:
    allowed = ALLOW_LISTS.get(kind)
    if allowed is None:
        raise NoShape(f"{kind} is not a partner kind")
    context = extra or ShapeExtra()
    return {key: FIELD_SOURCES[key](resident, context) for key in allowed}


def shape_for(kind: Role | str, resident: Resident, extra: ShapeExtra | None = None) -> dict[str, Any]:
    """The dict a caller of `kind` may receive about `resident`: the staff shape or a partner allow-list."""
    try:
        role = Role(kind)
    except ValueError:
        raise NoShape(f"unknown audience {kind!r}") from None
    if role in STAFF_KINDS:
        return staff_shape(resident)
    return partner_shape(role, resident, extra)
