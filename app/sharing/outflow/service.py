"""An outflow city's roster and change feed: the residents here whose 户籍地 code starts with its prefix, with
their monthly verification status and 婚育证明 status, through the outflow-city profile, each page entered in
the disclosure ledger (docs/sharing.md, "Outflow cities")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.cycle.verification.models import Verification
from app.ledger.models import SyncLog, SyncOp
from app.people.models import FpDocument, Resident, ResidentStatus
from app.people.shapes import ShapeExtra
from app.places.models import Division
from app.sharing.ledger import disclose
from app.sharing.outflow.schemas import ChangeItem, ChangesOut, RosterItem, RosterOut
from app.sharing.outflow.shaping import EVENT_GROUPS, shape
from app.sharing.partners.deps import JurisdictionScope, jurisdiction
from app.sharing.partners.rules import (
    after_log_position,
    decode_cursor,
    decode_log_position,
    encode_cursor,
    encode_log_position,
)
from app.sharing.profiles.service import Profile, pull_profile

KIND = Role.outflow_city.value
CURSOR_TAG = "o1"
CHANGES_TAG = "o2"
PENDING = "PENDING"


def _latest_verifications(session: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Resident id → (month, outcome or PENDING) of their latest verification."""
    latest = (select(col(Verification.resident_id), func.max(col(Verification.month)).label("month"))
              .where(col(Verification.resident_id).in_(ids)).group_by(col(Verification.resident_id)).subquery())
    rows = session.execute(
        select(col(Verification.resident_id), col(Verification.month), col(Verification.outcome))
        .join(latest, (latest.c.resident_id == col(Verification.resident_id))
              & (latest.c.month == col(Verification.month)))).all()
    return {rid: (month, outcome or PENDING) for rid, month, outcome in rows}


def _latest_documents(session: Session, ids: Sequence[str]) -> dict[str, str]:
    rows = session.execute(select(col(FpDocument.resident_id), col(FpDocument.status))
                           .where(col(FpDocument.resident_id).in_(ids))
                           .order_by(col(FpDocument.created_at), col(FpDocument.id))).all()
    return {rid: status for rid, status in rows}  # the last one of each resident wins


def _communities(session: Session, residents: Sequence[Resident]) -> dict[str, str]:
    ids = {r.community_id for r in residents}
    if not ids:
        return {}
    return dict(session.execute(select(col(Division.id), col(Division.name)).where(col(Division.id).in_(ids))).all())


def roster(session: Session, actor: Actor, cursor: str | None, limit: int, *, approved: bool = False) -> RosterOut:
    """One page of the city's people here, by record id after the cursor (`approved`: an approved request's
    collection, app/sharing/approvals)."""
    profile = pull_profile(session, KIND, approved=approved)
    after = decode_cursor(CURSOR_TAG, cursor) or ""
    scope = jurisdiction(actor.scope)
    residents = list(session.execute(select(Resident).where(
        scope.hukou_filter(col(Resident.hukou_code)), col(Resident.id) > after,
        col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))
        .order_by(col(Resident.id)).limit(limit)).scalars())
    ids = [r.id for r in residents]
    verifications = _latest_verifications(session, ids) if ids and profile.allows("verification") else {}
    documents = _latest_documents(session, ids) if ids and profile.allows("fp_document") else {}
    communities = _communities(session, residents)
    items = []
    for resident in residents:
        month, outcome = verifications.get(resident.id, (None, None))
        extra = ShapeExtra(community_name=communities.get(resident.community_id), verification_status=outcome,
                           fp_document_status=documents.get(resident.id))
        shown = profile.shape(resident, extra)
        if month is not None and "verification_status" in shown:
            shown["verification_month"] = month
        items.append(RosterItem(**shown))
    disclose(session, partner_kind=KIND, partner_id=actor.user_id,
             residents=[(r.id, r.district_code) for r in residents], field_groups=profile.field_groups,
             legal_basis=profile.legal_basis, action="sharing.outflow_roster")
    return RosterOut(items=items, cursor=encode_cursor(CURSOR_TAG, ids[-1] if ids else after or "-"),
                     has_more=len(ids) == limit, disclosure=profile.basis())


# --- the change feed -------------------------------------------------------------------------------------------


def _theirs(scope: JurisdictionScope) -> ColumnElement[bool]:
    """Change-log entries about the city's people: their records, verifications and 婚育证明."""
    people = select(col(Resident.id)).where(scope.hukou_filter(col(Resident.hukou_code)))
    table, record = col(SyncLog.table_name), col(SyncLog.record_id)
    return or_(
        and_(table == Resident.__tablename__, record.in_(people)),
        and_(table == Verification.__tablename__,
             record.in_(select(col(Verification.id)).where(col(Verification.resident_id).in_(people)))),
        and_(table == FpDocument.__tablename__,
             record.in_(select(col(FpDocument.id)).where(col(FpDocument.resident_id).in_(people)))))


def _by_id(session: Session, model: Any, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.execute(select(model).where(col(model.id).in_(ids))).scalars()}


def _changed(fields: str | None) -> set[str] | None:
    return set(fields.split(",")) if fields else None  # None: the whole record (a new one)


def _event(table: str, row: Any, fields: str | None) -> tuple[str, str, ShapeExtra, str | None] | None:
    """(event, resident id, what the event shows beyond identity, verification month) for one entry, or None."""
    changed = _changed(fields)
    if table == Resident.__tablename__:
        if changed is None:
            return "arrival", row.id, ShapeExtra(), None
        if "status" in changed and row.status == ResidentStatus.left.value:
            return "departure", row.id, ShapeExtra(), None
        return None
    if table == Verification.__tablename__:
        if row.outcome is None or changed is None or "outcome" not in changed:
            return None  # opened (pending), logged again (a month leaving the phones' window), not the result
        return "verification", row.resident_id, ShapeExtra(verification_status=row.outcome), row.month
    if changed is None or "status" in changed:
        return "fp_document", row.resident_id, ShapeExtra(fp_document_status=row.status), None
    return None


def changes(session: Session, actor: Actor, cursor: str | None, limit: int, *,
            approved: bool = False) -> ChangesOut:
    """What changed about the city's people after `cursor`, read from the change log (its sequence numbers
    follow commit order, so nothing is passed over): `limit` entries about them a page, each event shown through
    the profile (identity and the event's own group) and entered in the ledger."""
    profile = pull_profile(session, KIND, approved=approved)
    after = decode_log_position(CHANGES_TAG, cursor)
    scope = jurisdiction(actor.scope)
    entries = session.execute(
        select(col(SyncLog.seq), col(SyncLog.table_name), col(SyncLog.record_id), col(SyncLog.fields),
               col(SyncLog.id))
        .where(after_log_position(col(SyncLog.seq), col(SyncLog.id), *after),
               col(SyncLog.op) == SyncOp.upsert.value, _theirs(scope))
        .order_by(col(SyncLog.seq), col(SyncLog.id)).limit(limit)).all()
    rows = {Verification.__tablename__: _by_id(session, Verification, {
                r for _, t, r, _, _ in entries if t == Verification.__tablename__}),
            FpDocument.__tablename__: _by_id(session, FpDocument, {
                r for _, t, r, _, _ in entries if t == FpDocument.__tablename__})}
    wanted = {r for _, t, r, _, _ in entries if t == Resident.__tablename__}
    wanted |= {row.resident_id for found in rows.values() for row in found.values()}
    residents = {r.id: r for r in session.execute(select(Resident).where(
        col(Resident.id).in_(wanted), scope.hukou_filter(col(Resident.hukou_code)),
        col(Resident.merged_into_id).is_(None), col(Resident.anonymised_at).is_(None))).scalars()} if wanted else {}
    rows[Resident.__tablename__] = residents
    items = _change_items(profile, entries, rows, _communities(session, list(residents.values())))
    for groups, disclosed in items[1].items():
        disclose(session, partner_kind=KIND, partner_id=actor.user_id, residents=disclosed.items(),
                 field_groups=groups, legal_basis=profile.legal_basis, action="sharing.outflow_feed")
    last = (entries[-1][0], entries[-1][4]) if entries else after
    return ChangesOut(items=items[0], cursor=encode_log_position(CHANGES_TAG, *last), has_more=len(entries) == limit,
                      disclosure=profile.basis())


def _change_items(profile: Profile, entries: Sequence[Any], rows: dict[str, dict[str, Any]],
                  communities: dict[str, str]) -> tuple[list[ChangeItem], dict[tuple[str, ...], dict[str, str]]]:
    """The page's items (one per record and event) and who was shown which groups, for the ledger."""
    residents = rows[Resident.__tablename__]
    items: list[ChangeItem] = []
    seen: set[tuple[str, str]] = set()
    shown: dict[tuple[str, ...], dict[str, str]] = {}
    for _, table, record_id, fields, _ in entries:
        row = rows[table].get(record_id)
        event = _event(table, row, fields) if row is not None else None
        if event is None or (record_id, event[0]) in seen:
            continue
        name, resident_id, extra, month = event
        resident = residents.get(resident_id)
        if resident is None:
            continue
        if name in ("arrival", "departure"):
            extra = ShapeExtra(community_name=communities.get(resident.community_id))
        shaped = shape(profile, resident, EVENT_GROUPS[name], extra, month)
        if shaped is None:
            continue
        seen.add((record_id, name))
        groups, person = shaped
        items.append(ChangeItem(event=name, person=RosterItem(**person)))
        shown.setdefault(groups, {})[resident.id] = resident.district_code
    return items, shown
