"""Field groups: the unit a disclosure profile allows, and the fields each one names.

A profile lists groups; what leaves is the profile's fields *within* the code's allow-list for the partner kind
(`app.people.shapes.ALLOW_LISTS`, domain.md's table field by field). An admin can narrow a profile, never widen
it past that list: a group outside a kind's ceiling is refused, and no group can name a health field (none
exists in `ShapeExtra` or the allow-lists).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from app.core.actor import Role
from app.people.shapes import ALLOW_LISTS

GROUP_FIELDS = MappingProxyType({
    "identity": ("id", "name", "sex", "birth_date", "id_number", "hukou_code", "hukou_address"),
    "masked_identity": ("name", "id_number_masked"),
    "contact": ("phone",),
    "residence": ("dwelling_address", "residence_district_code", "residence_community", "arrival_date", "status",
                  "left_on", "residence_permit_no"),
    "tenancy": ("tenancy_id", "move_in", "move_out"),
    "verification": ("verification_status",),
    "fp_document": ("fp_document_status",),
})
KINDS = (Role.police.value, Role.landlord.value, Role.outflow_city.value)
# The groups each kind may ever be given.
CEILING = MappingProxyType({
    Role.police.value: frozenset({"identity", "contact", "residence"}),
    Role.landlord.value: frozenset({"masked_identity", "tenancy"}),
    Role.outflow_city.value: frozenset({"identity", "residence", "verification", "fp_document"}),
})


def fields_of(kind: str, groups: Iterable[str]) -> tuple[str, ...]:
    """The fields a profile of `kind` with `groups` lets out, in the allow-list's order."""
    named = {f for g in groups if g in CEILING[kind] for f in GROUP_FIELDS[g]}
    return tuple(f for f in ALLOW_LISTS[Role(kind)] if f in named)


def split(groups: str) -> list[str]:
    return [g for g in groups.split(",") if g]
