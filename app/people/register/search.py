"""The register's search (`GET /residents`): by name prefix, ID number, phone, dwelling, community, status or key
person, within the caller's area; a look-up by identifier is audited (`audit_search`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlmodel import Session

from app.core.actor import Actor
from app.core.bulk import table_of
from app.core.pagination import Pageable
from app.core.queries import Statements, prefix_pattern
from app.ledger import audit
from app.people import rules
from app.people.models import Resident
from app.people.register.service import normalise_phone

SEARCH_IDS_KEPT = 20  # the records a lookup found, named in its audit record (the access review checks them)


def search(actor: Actor, *, q: str | None = None, id_number: str | None = None, phone: str | None = None,
           dwelling_id: str | None = None, community_id: str | None = None, status: str | None = None,
           key_person: bool | None = None) -> tuple[Pageable, dict[str, Any]]:
    """The search's statement and its values. Built once per scope and set of filters given, every value bound
    (a phone looks a person up by ID number on every doorstep: docs/CONVENTIONS.md, hot paths)."""
    values: dict[str, Any] = {}
    if id_number:
        values["id_number"] = _normalised_id_for_search(id_number)
    if phone:
        values["phone"] = normalise_phone(phone)
    if q:
        values["name_prefix"] = prefix_pattern(q)
    if dwelling_id:
        values["dwelling_id"] = dwelling_id
    if community_id:
        values["community_id"] = community_id
    if status:
        values["status"] = status
    if key_person is not None:
        values["key_person"] = key_person
    names = tuple(values)
    return _searches.get((actor.scope, names), lambda: Pageable(_search_statement(actor, names), lean=True)), values


_searches = Statements()


def _search_statement(actor: Actor, names: tuple[str, ...]) -> Select[Any]:
    """The residents' columns, not entities (a lean page: the list's items are built from the columns)."""
    residents = table_of(Resident)
    stmt = select(*residents.c).where(actor.area_filter(residents.c.area_path, residents.c.district_code))
    for name in names:
        if name == "name_prefix":  # as `starts_with`: one bound pattern, which the index serves
            stmt = stmt.where(residents.c.name.like(bindparam(name), escape="/"))
        else:
            stmt = stmt.where(residents.c[name] == bindparam(name))
    return stmt.order_by(residents.c.name, residents.c.id)


def _normalised_id_for_search(raw: str) -> str:
    value = rules.normalise_digits(raw).upper()
    return rules.upgrade_15(value) if rules.ID15.match(value) else value


def audit_search(session: Session, resident_ids: list[str], criterion: str) -> None:
    audit.record(session, "resident.search", target_type="residents", fields=[criterion],
                 detail={"results": len(resident_ids), "ids": resident_ids[:SEARCH_IDS_KEPT]}, purpose="lookup")
