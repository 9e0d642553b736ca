"""The approval queue: a partner's pull held while its kind's profile requires a supervisor's approval of each
disclosure, the supervisor's decision, and the expiry of what was not decided or collected in time
(docs/sharing.md, "Approval queue"). The answer itself is made at collection (app/sharing/approvals/collect.py),
by the route's own service functions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import Select, and_, or_, select, update
from sqlmodel import Session, col

from app.auth.models import User
from app.core.actor import Actor, Role
from app.core.config import get_settings
from app.core.db import UnitOfWork
from app.core.errors import Conflict, NotFound, StaleVersion
from app.core.types import utcnow
from app.ledger import audit
from app.places.models import Division
from app.sharing.approvals.models import OPEN_STATES, DisclosureRequest, RequestRoute, RequestState
from app.sharing.approvals.schemas import DecisionIn, DenyIn, DisclosureRequestOut, HeldOut
from app.sharing.partners.deps import jurisdiction
from app.sharing.profiles.service import Profile, current_profile


class InvalidTransition(Conflict):
    code = "invalid_transition"
    en = "The disclosure request was already decided, collected or has expired."
    zh = "该披露申请已审批、已领取或已过期。"


class RequestExpired(Conflict):
    code = "request_expired"
    en = "The disclosure request expired before it was decided or collected; ask again."
    zh = "该披露申请已过期，请重新申请。"
    keep_changes = True  # the request is marked expired and what it asked is blanked


class AlreadyCollected(Conflict):
    code = "already_collected"
    en = "The answer to this request was already collected."
    zh = "该申请的结果已领取。"


class NotApproved(Conflict):
    code = "not_approved"
    en = "The disclosure request is not approved (pending or denied)."
    zh = "该披露申请尚未获批或已被拒绝。"


class ProfileChanged(Conflict):
    code = "profile_changed"
    en = "The disclosure profile changed since the request was approved; ask again."
    zh = "审批后披露规则已变更，请重新申请。"
    keep_changes = True  # the request is closed (expired) so it cannot be collected under another profile


# --- holding a partner's pull ----------------------------------------------------------------------------------


def gate(session: Session, kind: str) -> Profile | None:
    """The profile in force when it requires approval (the pull is then held), else None (answer directly).
    409 `profile_missing` without a profile, as every partner route."""
    profile = current_profile(session, kind)
    return profile if profile.approval_required else None


def jurisdiction_area(session: Session, actor: Actor) -> tuple[str, str]:
    """(area path, district code) of a machine client's requests: the deepest division holding its whole
    jurisdiction (a station over one street: that street), else the city (an outflow city has no area)."""
    paths = [[p for p in path.split("/") if p] for path in jurisdiction(actor.scope).area_paths]
    common: list[str] = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if not paths or not common:
        root = session.execute(select(col(Division.path)).where(col(Division.parent_id).is_(None))
                               .order_by(col(Division.path)).limit(1)).scalar_one_or_none() or "/"
        common = [p for p in root.split("/") if p]
    path = "/" + "".join(p + "/" for p in common) if common else "/"
    return path, (common[1] if len(common) > 1 else common[0] if common else "")[:6]


def hold(session: Session, actor: Actor, profile: Profile, route: RequestRoute, params: dict[str, Any],
         area: tuple[str, str]) -> DisclosureRequest:
    """Store the request instead of disclosing (in a short write after a read route's read transaction)."""
    now = utcnow()
    row = DisclosureRequest(partner_id=actor.user_id, partner_kind=profile.kind, route=route.value,
                            params=json.dumps(params, separators=(",", ":")), area_path=area[0],
                            district_code=area[1], profile_version=profile.version, created_at=now, updated_at=now,
                            expires_at=now + timedelta(hours=get_settings().disclosure_approval_ttl_hours))

    def write(s: Session) -> None:
        expire_due(s)
        s.add(row)
        audit.record(s, "sharing.disclosure_request.held", target_type="disclosure_requests", target_id=row.id,
                     area_path=row.area_path, district_code=row.district_code,
                     detail={"route": row.route, "partner_kind": row.partner_kind,
                             "profile_version": row.profile_version})

    uow = UnitOfWork.of(session)
    assert uow is not None
    uow.side_write(write)
    return row


def held_out(row: DisclosureRequest) -> HeldOut:
    return HeldOut(request_id=row.id, state=RequestState(effective_state(row)), route=RequestRoute(row.route),
                   created_at=row.created_at, expires_at=row.expires_at, decided_at=row.decided_at,
                   collected_at=row.collected_at)


def accepted(row: DisclosureRequest) -> JSONResponse:
    """The 202 a held pull answers: the request's id and state, nothing disclosed."""
    return JSONResponse(status_code=202, content=held_out(row).model_dump(mode="json"))


def held_for_client(session: Session, actor: Actor, kind: str, route: RequestRoute,
                    params: dict[str, Any]) -> JSONResponse | None:
    """A machine client's pull: held (the 202 to answer) while `kind`'s profile requires approval, else None."""
    profile = gate(session, kind)
    if profile is None:
        return None
    return accepted(hold(session, actor, profile, route, params, jurisdiction_area(session, actor)))


# --- expiry ----------------------------------------------------------------------------------------------------


def effective_state(row: DisclosureRequest) -> str:
    if row.state in OPEN_STATES and row.expires_at <= utcnow():
        return RequestState.expired.value
    return row.state


def expire_due(session: Session) -> int:
    """Every open request past its time: expired, what it asked blanked (run by every write of the queue)."""
    now = utcnow()
    table = DisclosureRequest.__table__  # type: ignore[attr-defined]
    result: Any = session.execute(update(table).where(table.c.state.in_(OPEN_STATES), table.c.expires_at <= now)
                                  .values(state=RequestState.expired.value, params="{}", version=table.c.version + 1,
                                          updated_at=now))
    count = int(result.rowcount or 0)
    if count:
        audit.record(session, "sharing.disclosure_request.expired", target_type="disclosure_requests",
                     detail={"requests": count})
    return count


def expire(session: Session, row: DisclosureRequest) -> None:
    """This request is past its time: close it and blank what it asked, then refuse (409 `request_expired`)."""
    _close(row, RequestState.expired)
    session.flush()
    raise RequestExpired()


def _close(row: DisclosureRequest, state: RequestState) -> None:
    row.state, row.params, row.updated_at, row.version = state.value, "{}", utcnow(), row.version + 1


# --- the supervisor's queue ------------------------------------------------------------------------------------


def scoped(actor: Actor) -> Select[Any]:
    return select(DisclosureRequest).where(
        actor.area_filter(col(DisclosureRequest.area_path), col(DisclosureRequest.district_code)))


def listing(actor: Actor, state: RequestState | None, route: RequestRoute | None) -> Select[Any]:
    stmt, now = scoped(actor), utcnow()
    stored, expires = col(DisclosureRequest.state), col(DisclosureRequest.expires_at)
    if state is RequestState.expired:
        stmt = stmt.where(or_(stored == state.value, and_(stored.in_(OPEN_STATES), expires <= now)))
    elif state is not None and state.value in OPEN_STATES:
        stmt = stmt.where(stored == state.value, expires > now)
    elif state is not None:
        stmt = stmt.where(stored == state.value)
    if route is not None:
        stmt = stmt.where(col(DisclosureRequest.route) == route.value)
    return stmt.order_by(col(DisclosureRequest.created_at).desc(), col(DisclosureRequest.id))


def get(session: Session, actor: Actor, request_id: str, *, for_update: bool = False) -> DisclosureRequest:
    stmt = scoped(actor).where(col(DisclosureRequest.id) == request_id)
    row = session.execute(stmt.with_for_update() if for_update else stmt).scalar_one_or_none()
    if row is None:
        raise NotFound()
    return row


def rows_out(session: Session, rows: list[DisclosureRequest]) -> list[DisclosureRequestOut]:
    names = dict(session.execute(select(col(User.id), col(User.display_name)).where(
        col(User.id).in_({r.partner_id for r in rows}))).all()) if rows else {}
    return [DisclosureRequestOut(
        id=r.id, partner_id=r.partner_id, partner_kind=r.partner_kind, partner_name=names.get(r.partner_id),
        route=RequestRoute(r.route), asked=json.loads(r.params or "{}"), area_path=r.area_path,
        state=RequestState(effective_state(r)), profile_version=r.profile_version, reason=r.reason,
        decided_by=r.decided_by, decided_at=r.decided_at, collected_at=r.collected_at, expires_at=r.expires_at,
        created_at=r.created_at, version=r.version) for r in rows]


def audit_read(session: Session, rows: list[DisclosureRequest]) -> None:
    """What was asked may be an ID number: reading the queue is a sensitive read, audited per area."""
    for area in sorted({r.area_path for r in rows}):
        ids = [r.id for r in rows if r.area_path == area]
        audit.record(session, "sharing.disclosure_requests.read", target_type="disclosure_requests",
                     fields=["asked"], area_path=area, detail={"requests": len(ids), "ids": ids[:20]},
                     purpose="disclosure_approval")


def decide(session: Session, actor: Actor, request_id: str, body: DecisionIn | DenyIn) -> DisclosureRequest:
    """Approve or deny (a `DenyIn`) a pending request: 409 `invalid_transition` once decided, `request_expired`
    past its time, `stale_version`; out of the caller's area 404."""
    approve = not isinstance(body, DenyIn)
    expire_due(session)
    row = get(session, actor, request_id, for_update=True)
    if row.state == RequestState.expired.value:
        raise RequestExpired()
    if row.state != RequestState.pending.value:
        raise InvalidTransition({"state": row.state})
    if effective_state(row) == RequestState.expired.value:
        expire(session, row)
    if body.version != row.version:
        raise StaleVersion({"current_version": row.version})
    now = utcnow()
    if approve:
        row.state, row.version, row.updated_at = RequestState.approved.value, row.version + 1, now
    else:
        _close(row, RequestState.denied)
        row.reason = body.reason  # type: ignore[union-attr]
    row.decided_by, row.decided_at = actor.user_id, now
    audit.record(session, f"sharing.disclosure_request.{'approved' if approve else 'denied'}",
                 target_type="disclosure_requests", target_id=row.id, area_path=row.area_path,
                 district_code=row.district_code, detail={"route": row.route, "partner_kind": row.partner_kind,
                                                          "partner_id": row.partner_id})
    session.flush()
    return row


# --- the partner's side ----------------------------------------------------------------------------------------


def own(session: Session, actor: Actor, request_id: str, *, for_update: bool = False) -> DisclosureRequest:
    """The caller's own request; anyone else's is 404."""
    stmt = select(DisclosureRequest).where(col(DisclosureRequest.id) == request_id,
                                           col(DisclosureRequest.partner_id) == actor.user_id)
    row = session.execute(stmt.with_for_update() if for_update else stmt).scalar_one_or_none()
    if row is None:
        raise NotFound()
    return row


def collectable(session: Session, actor: Actor, request_id: str) -> DisclosureRequest:
    """The caller's approved request, ready to answer; 409 `already_collected`, `not_approved`,
    `request_expired`, `profile_changed` otherwise."""
    expire_due(session)
    row = own(session, actor, request_id, for_update=True)
    if row.state == RequestState.collected.value:
        raise AlreadyCollected()
    if row.state == RequestState.expired.value:
        raise RequestExpired()
    if row.state != RequestState.approved.value:
        raise NotApproved({"state": row.state})
    if effective_state(row) == RequestState.expired.value:
        expire(session, row)
    if current_profile(session, row.partner_kind).version != row.profile_version:
        _close(row, RequestState.expired)
        session.flush()
        raise ProfileChanged()
    return row


def collected(session: Session, row: DisclosureRequest) -> None:
    """The answer left: the request is closed and what it asked blanked, in the disclosure's own transaction."""
    _close(row, RequestState.collected)
    row.collected_at = row.updated_at
    audit.record(session, "sharing.disclosure_request.collected", target_type="disclosure_requests",
                 target_id=row.id, area_path=row.area_path, district_code=row.district_code,
                 detail={"route": row.route, "partner_kind": row.partner_kind})


PARTNER_ROLES = (Role.police, Role.outflow_city, Role.landlord)
