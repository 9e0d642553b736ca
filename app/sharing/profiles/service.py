"""Disclosure profiles: the current one per partner kind (`current_profile`, for every partner route), their
history, and an admin's edit (a new version; the old rows stay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.core.errors import Conflict, Forbidden, NotFound, StaleVersion, Unprocessable
from app.ledger import audit
from app.people.models import Resident
from app.people.shapes import FIELD_SOURCES, ShapeExtra
from app.sharing.profiles import rules
from app.sharing.profiles.models import DisclosureProfile
from app.sharing.profiles.schemas import DisclosureBasis, ProfileIn, ProfileOut


class GroupNotAllowed(Unprocessable):
    code = "field_group_not_allowed"
    en = "A field group is outside what this kind of partner may ever receive."
    zh = "所选字段组超出该类合作方可获取的范围。"


class ApprovalRequired(Forbidden):
    code = "disclosure_needs_approval"
    en = "The disclosure profile requires a supervisor's approval of each disclosure; this route cannot wait for one."
    zh = "披露规则要求每次披露须经督导审批，此接口不能等待审批。"


class ProfileMissing(Conflict):
    code = "profile_missing"
    en = "No disclosure profile exists for this kind of partner: nothing can be disclosed."
    zh = "该类合作方没有披露规则，不能披露任何信息。"


@dataclass(frozen=True)
class Profile:
    """The current profile of a partner kind, as the partner routes use it."""

    kind: str
    version: int
    field_groups: tuple[str, ...]
    fields: tuple[str, ...]
    legal_basis: str
    purpose: str
    approval_required: bool
    retention_days: int

    def shape(self, resident: Resident, extra: ShapeExtra | None = None,
              only: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The resident as this profile lets them out (`only`: further limited to these groups' fields)."""
        context = extra or ShapeExtra()
        allowed = self.fields if only is None else rules.fields_of(self.kind, only)
        return {key: FIELD_SOURCES[key](resident, context) for key in allowed if key in self.fields}

    def allows(self, group: str) -> bool:
        return group in self.field_groups

    def basis(self) -> DisclosureBasis:
        return DisclosureBasis(profile_version=self.version, legal_basis=self.legal_basis, purpose=self.purpose,
                               retention_days=self.retention_days)


def _kind(kind: str) -> str:
    if kind not in rules.KINDS:
        raise NotFound()
    return kind


def _latest(session: Session, kind: str) -> DisclosureProfile | None:
    return session.execute(select(DisclosureProfile).where(col(DisclosureProfile.kind) == kind)
                           .order_by(col(DisclosureProfile.version).desc()).limit(1)).scalar_one_or_none()


def current_profile(session: Session, kind: str) -> Profile:
    """The profile in force for a partner kind; 409 `profile_missing` when there is none (nothing leaves)."""
    row = _latest(session, _kind(kind))
    if row is None:
        raise ProfileMissing()
    groups = tuple(rules.split(row.field_groups))
    return Profile(row.kind, row.version, groups, rules.fields_of(row.kind, groups), row.legal_basis, row.purpose,
                   row.approval_required, row.retention_days)


def pull_profile(session: Session, kind: str, *, approved: bool = False) -> Profile:
    """The profile for a partner's pull: 403 `disclosure_needs_approval` while it requires a supervisor's
    approval of each disclosure, unless this pull is the collection of an approved request (`approved`,
    app/sharing/approvals). Routes that can wait hold the request before they get here; the others fail closed."""
    profile = current_profile(session, kind)
    if profile.approval_required and not approved:
        raise ApprovalRequired()
    return profile


def profile_out(row: DisclosureProfile) -> ProfileOut:
    groups = rules.split(row.field_groups)
    return ProfileOut.model_validate({**row.model_dump(), "field_groups": groups,
                                      "fields": list(rules.fields_of(row.kind, groups))})


def current_all(session: Session) -> list[ProfileOut]:
    return [profile_out(row) for kind in rules.KINDS if (row := _latest(session, kind)) is not None]


def current_out(session: Session, kind: str) -> ProfileOut:
    row = _latest(session, _kind(kind))
    if row is None:
        raise NotFound()
    return profile_out(row)


def versions(session: Session, kind: str) -> list[ProfileOut]:
    rows = session.execute(select(DisclosureProfile).where(col(DisclosureProfile.kind) == _kind(kind))
                           .order_by(col(DisclosureProfile.version).desc())).scalars()
    return [profile_out(row) for row in rows]


def update(session: Session, kind: str, body: ProfileIn, actor_id: str) -> ProfileOut:
    """A new version from the current one; two edits from the same version: one wins, the other is 409."""
    latest = _latest(session, _kind(kind))
    current = latest.version if latest is not None else 0
    if body.version != current:
        raise StaleVersion({"current_version": current})
    outside = sorted(set(body.field_groups) - rules.CEILING[kind])
    if outside:
        raise GroupNotAllowed({"field_groups": outside})
    row = DisclosureProfile(kind=kind, version=current + 1, field_groups=",".join(sorted(set(body.field_groups))),
                            legal_basis=body.legal_basis, purpose=body.purpose,
                            approval_required=body.approval_required, retention_days=body.retention_days,
                            created_by=actor_id)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise StaleVersion({"current_version": current + 1}) from None
    audit.record(session, "sharing.profile_change", target_type="disclosure_profiles", target_id=row.id,
                 fields=sorted(set(body.field_groups)), detail={"kind": kind, "version": row.version})
    return profile_out(row)
