"""A police upload's rows against the places and the register: the jurisdiction, then one of four outcomes.

The station's jurisdiction is its scope (`actor.area_filter` on the community's path): a row naming a community
outside it is refused (`outside_jurisdiction`) before anything about the person is looked up, so the answer never
depends on whether such a resident exists. Within it, the station sees the register as its look-up would: a
record outside its jurisdiction is absent to it (`Classified.reported`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.queries import among, chunks
from app.people import rules as people_rules
from app.people.models import Resident, ResidentStatus
from app.people.register import service as register
from app.places.models import Division, Dwelling, Level
from app.sharing.uploads.models import Outcome, RowKind, RowState
from app.sharing.uploads.rules import Row, norm


@dataclass
class Classified:
    row: Row
    community: Division
    dwelling: Dwelling | None
    outcome: Outcome
    reported: Outcome
    resident: Resident | None = None
    conflict_fields: tuple[str, ...] = ()

    @property
    def state(self) -> RowState:
        return {Outcome.matched: RowState.done, Outcome.departed: RowState.proposed}.get(self.outcome,
                                                                                        RowState.pending)

    @property
    def disclosed(self) -> Resident | None:
        """The resident whose registration the answer reveals to the station (None: nothing revealed)."""
        return self.resident if self.reported is not Outcome.new and self.resident is not None else None


def reconcile(session: Session, actor: Actor, rows: list[Row]) -> list[Classified]:
    """Classify the rows without errors; jurisdiction refusals are added to the rows' errors."""
    valid = [r for r in rows if not r.errors]
    communities = _communities(session, actor, valid)
    placed: list[tuple[Row, Division]] = []
    for row in valid:
        found = communities.get(norm(row.values["community_code"]))
        if isinstance(found, Division):
            placed.append((row, found))
        else:
            row.error("community_code", found or "community_not_found")
    dwellings = _dwellings(session, actor, [c for _, c in placed])
    residents = _residents(session, [r.id_number for r, _ in placed if r.id_number])
    out = []
    for row, community in placed:
        dwelling = dwellings.get((community.id, norm(row.values.get("address", ""))))
        out.append(_classify(actor, row, community, dwelling, residents.get(row.id_number or "")))
    return out


def _communities(session: Session, actor: Actor, rows: list[Row]) -> dict[str, Division | str]:
    """code -> the community within the jurisdiction, or the refusal code for the row."""
    codes = sorted({norm(r.values["community_code"]) for r in rows})
    found: dict[str, Division | str] = {}
    for chunk in chunks(codes):
        stmt = select(Division, actor.area_filter(col(Division.path))).where(
            among(col(Division.code), chunk), col(Division.level) == Level.community.value, col(Division.active))
        for division, inside in session.execute(stmt).all():
            if inside:
                found[division.code] = division
            else:
                found.setdefault(division.code, "outside_jurisdiction")
    return found


def _dwellings(session: Session, actor: Actor, communities: list[Division]) -> dict[tuple[str, str], Dwelling]:
    """(community id, address key) -> the one active dwelling with that address (ambiguous ones are left out)."""
    ids = sorted({c.id for c in communities})
    by_key: dict[tuple[str, str], list[Dwelling]] = {}
    for chunk in chunks(ids):
        stmt = select(Dwelling).where(among(col(Dwelling.community_id), chunk), col(Dwelling.active),
                                      actor.area_filter(col(Dwelling.area_path)))
        for d in session.execute(stmt).scalars():
            by_key.setdefault((d.community_id, norm(d.address)), []).append(d)
    return {k: v[0] for k, v in by_key.items() if len(v) == 1}


def _residents(session: Session, id_numbers: list[str]) -> dict[str, Resident]:
    """ID number -> the record holding it (a merged record's survivor), city-wide: the jurisdiction decides
    what the station is told, not what is looked up."""
    found: dict[str, Resident] = {}
    for chunk in chunks(sorted(set(id_numbers))):
        for resident in session.execute(select(Resident).where(among(col(Resident.id_number), chunk))).scalars():
            if resident.id_number:
                found[resident.id_number] = register.survivor_of(session, resident)
    return found


def _classify(actor: Actor, row: Row, community: Division, dwelling: Dwelling | None,
              resident: Resident | None) -> Classified:
    registered = resident is not None and resident.status == ResidentStatus.registered.value and (
        resident.anonymised_at is None)
    seen = registered and resident is not None and actor.sees_path(resident.area_path)
    name_differs = resident is not None and not people_rules.same_name(resident.name, row.values["name"])
    identity = tuple(f for f, differs in (("name", name_differs),
                                          ("sex", resident is not None and resident.sex != row.sex)) if differs)
    if row.kind is RowKind.deregistration:
        if not seen:  # the register already says they do not live in the jurisdiction
            return Classified(row, community, dwelling, Outcome.matched, Outcome.matched)
        if identity:
            return Classified(row, community, dwelling, Outcome.conflicting, Outcome.conflicting, resident, identity)
        return Classified(row, community, dwelling, Outcome.departed, Outcome.departed, resident)
    if not registered:
        return Classified(row, community, dwelling, Outcome.new, Outcome.new)
    assert resident is not None
    if not seen:  # registered outside the jurisdiction: absent to the station, a dwelling conflict here
        return Classified(row, community, dwelling, Outcome.conflicting, Outcome.new, resident, ("dwelling",))
    place = () if dwelling is not None and resident.dwelling_id == dwelling.id else ("dwelling",)
    fields = (*place, *identity)
    if fields:
        return Classified(row, community, dwelling, Outcome.conflicting, Outcome.conflicting, resident, fields)
    return Classified(row, community, dwelling, Outcome.matched, Outcome.matched, resident)
