"""A police station's look-up and feed, within its jurisdiction, through the police disclosure profile, each
answer entered in the disclosure ledger in its own transaction (docs/sharing.md, "Police")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.core.config import Settings
from app.core.errors import NotFound
from app.ledger import audit
from app.ledger.models import SyncLog, SyncOp
from app.people.models import Resident, ResidentStatus
from app.people.shapes import ShapeExtra
from app.places.models import Dwelling
from app.sharing.ledger import disclose
from app.sharing.partners.deps import JurisdictionScope, jurisdiction
from app.sharing.partners.quotas import record_miss
from app.sharing.partners.rules import decode_log_position, encode_log_position
from app.sharing.police.schemas import FeedItem, FeedOut, LookupOut, PolicePersonOut
from app.sharing.profiles.service import Profile, pull_profile

KIND = Role.police.value
CURSOR_TAG = "p1"
MOVE_FIELDS = {"area_path", "dwelling_id", "community_id"}


class NotInJurisdiction(NotFound):
    keep_changes = True  # the miss still counts towards the enumeration alert


def _addresses(session: Session, residents: Sequence[Resident]) -> dict[str, str]:
    ids = {r.dwelling_id for r in residents if r.dwelling_id}
    if not ids:
        return {}
    rows = session.execute(select(col(Dwelling.id), col(Dwelling.address)).where(col(Dwelling.id).in_(ids)))
    return {i: a for i, a in rows.all()}


def _person(profile: Profile, resident: Resident, address: str | None,
            only: tuple[str, ...] | None = None) -> PolicePersonOut:
    return PolicePersonOut(**profile.shape(resident, ShapeExtra(dwelling_address=address), only))


def lookup(session: Session, settings: Settings, actor: Actor, id_number: str, *, approved: bool = False) -> LookupOut:
    """One person by ID number, inside the jurisdiction (404 otherwise; a miss counts towards the enumeration
    alert). The route's quota was charged before (app/sharing/partners/quotas.py), also when the look-up was held
    for approval (`approved`: the collection of an approved request)."""
    profile = pull_profile(session, KIND, approved=approved)
    scope = jurisdiction(actor.scope)
    resident = session.execute(select(Resident).where(
        col(Resident.id_number) == id_number, col(Resident.merged_into_id).is_(None),
        col(Resident.anonymised_at).is_(None),
        scope.area_filter(col(Resident.area_path), col(Resident.district_code)))).scalar_one_or_none()
    if resident is None:
        record_miss(session, settings, actor.user_id)
        raise NotInJurisdiction()
    person = _person(profile, resident, _addresses(session, [resident]).get(resident.dwelling_id or ""))
    disclose(session, partner_kind=KIND, partner_id=actor.user_id, residents=[(resident.id, resident.district_code)],
             field_groups=profile.field_groups, legal_basis=profile.legal_basis, action="sharing.police_lookup")
    audit.record(session, "sharing.police_lookup.read", target_type="residents", target_id=resident.id,
                 purpose=profile.purpose[:100], area_path=resident.area_path, district_code=resident.district_code)
    return LookupOut(person=person, disclosure=profile.basis())


def feed(session: Session, actor: Actor, cursor: str | None, limit: int, *, approved: bool = False) -> FeedOut:
    """Arrivals and departures in the jurisdiction after `cursor`, read from the change log (its sequence
    numbers follow commit order, so no change is passed over): `limit` entries a page, the people they name
    shaped by the profile and entered in the ledger."""
    profile = pull_profile(session, KIND, approved=approved)
    after, after_row = decode_log_position(CURSOR_TAG, cursor)
    scope = jurisdiction(actor.scope)
    entries = _entries(session, scope, after, after_row, limit)
    ids = {record_id for _, record_id, _, _, _ in entries}
    residents = {r.id: r for r in session.execute(select(Resident).where(
        col(Resident.id).in_(ids), col(Resident.merged_into_id).is_(None),
        col(Resident.anonymised_at).is_(None))).scalars()} if ids else {}
    addresses = _addresses(session, list(residents.values()))
    items: list[FeedItem] = []
    seen: set[tuple[str, str]] = set()
    # Who was shown which groups: a departure out of the jurisdiction shows identity only, and its ledger entry
    # says so.
    shown: dict[tuple[str, ...], dict[str, str]] = {}
    visible: dict[tuple[str, ...], tuple[str, ...]] = {}  # the groups an event shows, within the profile's
    for _, record_id, op, fields, _ in entries:
        resident = residents.get(record_id)
        event = _event(resident, op, fields, scope.sees_path) if resident is not None else None
        if resident is None or event is None or (record_id, event[0]) in seen:
            continue
        seen.add((record_id, event[0]))
        groups = event[1] or profile.field_groups
        if groups not in visible:
            visible[groups] = tuple(g for g in groups if g in profile.field_groups)
        shown.setdefault(visible[groups], {})[resident.id] = resident.district_code
        items.append(FeedItem(event=event[0], person=_person(profile, resident, addresses.get(
            resident.dwelling_id or ""), event[1])))
    for groups, disclosed in shown.items():
        disclose(session, partner_kind=KIND, partner_id=actor.user_id, residents=disclosed.items(),
                 field_groups=groups, legal_basis=profile.legal_basis, action="sharing.police_feed")
    last = (entries[-1][0], entries[-1][4]) if entries else (after, after_row)
    return FeedOut(items=items, cursor=encode_log_position(CURSOR_TAG, *last), has_more=len(entries) == limit,
                   disclosure=profile.basis())


def _entries(session: Session, scope: JurisdictionScope, after: int, after_row: int | None,
             limit: int) -> list[Any]:
    """The next `limit` change-log entries of residents in the jurisdiction, by (sequence number, row id).

    One transaction's entries share a sequence number, so a page may end inside one: the cursor holds the row
    id too, and the next page first goes on within that transaction by row id (the primary key's order, so a
    transaction of a whole city's import is not sorted again for every page), then reads the later ones."""
    def page(*where: Any, order: tuple[Any, ...], size: int) -> list[Any]:
        return list(session.execute(
            select(col(SyncLog.seq), col(SyncLog.record_id), col(SyncLog.op), col(SyncLog.fields), col(SyncLog.id))
            .where(col(SyncLog.table_name) == Resident.__tablename__, *where,
                   scope.area_filter(col(SyncLog.area_path), col(SyncLog.district_code)))
            .order_by(*order).limit(size)).all())

    rest = [] if after_row is None else page(col(SyncLog.seq) == after, col(SyncLog.id) > after_row,
                                             order=(col(SyncLog.id),), size=limit)
    if len(rest) == limit:
        return rest
    return rest + page(col(SyncLog.seq) > after, order=(col(SyncLog.seq), col(SyncLog.id)), size=limit - len(rest))


def _event(resident: Resident, op: str, fields: str | None,
           inside: Callable[[str], bool]) -> tuple[str, tuple[str, ...] | None] | None:
    """(event, the groups to show; None: the whole profile) for one change-log entry, or None to skip it.

    An entry that took a person out of the jurisdiction is a departure showing identity only (where they went is
    outside it); a new record or a move in is an arrival; marking someone as left is a departure."""
    here = inside(resident.area_path)
    if op == SyncOp.exit.value:
        return None if here else ("departure", ("identity",))
    if op != SyncOp.upsert.value or not here:
        return None
    changed = set(fields.split(",")) if fields else None
    if changed is None or changed & MOVE_FIELDS:
        return ("arrival", None)  # shown as the person is now (a replay shows a later departure's state too)
    if "status" in changed and resident.status == ResidentStatus.left.value:
        return ("departure", None)
    return None
