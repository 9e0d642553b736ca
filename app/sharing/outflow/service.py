"""An outflow city's roster: the residents here whose 户籍地 code starts with its prefix, with their monthly
verification status and 婚育证明 status, through the outflow-city profile, each page entered in the disclosure
ledger (docs/sharing.md, "Outflow cities")."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core.actor import Actor, Role
from app.cycle.verification.models import Verification
from app.people.models import FpDocument, Resident
from app.people.shapes import ShapeExtra
from app.places.models import Division
from app.sharing.ledger import disclose
from app.sharing.outflow.schemas import RosterItem, RosterOut
from app.sharing.partners.deps import jurisdiction
from app.sharing.partners.rules import decode_cursor, encode_cursor
from app.sharing.profiles.service import pull_profile

KIND = Role.outflow_city.value
CURSOR_TAG = "o1"
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


def roster(session: Session, actor: Actor, cursor: str | None, limit: int) -> RosterOut:
    """One page of the city's people here, by record id after the cursor."""
    profile = pull_profile(session, KIND)
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
