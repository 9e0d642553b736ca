"""Account administration: create, edit (role, scope, active), reset passwords."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.auth.models import User, UserScope
from app.auth.service import (
    check_password_policy,
    clear_lock,
    normalise_username,
    revoke_all_sessions,
    set_password,
)
from app.core.actor import AREA_ROLES, STAFF_ROLES, Role
from app.core.config import get_settings
from app.core.errors import Conflict, Forbidden, NotFound, StaleVersion, Unprocessable
from app.core.security import hash_password
from app.core.types import utcnow
from app.ledger import audit
from app.places.models import Division, Level

# Which division levels each area role may be assigned to.
SCOPE_LEVELS = {
    Role.worker: {Level.community.value, Level.grid.value},
    Role.supervisor: {Level.city.value, Level.district.value, Level.street.value},
}


class UsernameTaken(Conflict):
    code = "username_taken"
    en = "That username is already in use."
    zh = "该用户名已被使用。"


class ScopeInvalid(Unprocessable):
    code = "scope_invalid"
    en = ("Workers are assigned communities or grids, supervisors a district, street or the city; "
          "admins and auditors have no assignment.")
    zh = "专干只能分配社区或网格，督导只能分配区、街道或全市；管理员和审计员不分配区域。"


class RoleNotAssignable(Unprocessable):
    code = "role_not_assignable"
    en = "Accounts can be workers, supervisors, admins or auditors; partner accounts come later."
    zh = "账号角色只能是专干、督导、管理员或审计员；合作方账号暂不支持。"


class OwnAccountChange(Conflict):
    code = "own_account_change_refused"
    en = "You cannot disable your own account or change your own role."
    zh = "不能停用自己的账号或修改自己的角色。"


class DivisionUnknown(Unprocessable):
    code = "division_unknown"
    en = "A division in the assignment does not exist or is inactive."
    zh = "分配的区划不存在或已停用。"


def resolve_divisions(session: Session, refs: Sequence[str]) -> list[str]:
    """Division ids from ids, paths or (non-grid) codes, for the CLI."""
    ids = []
    for ref in refs:
        row = session.execute(
            select(col(Division.id)).where(or_(col(Division.id) == ref, col(Division.path) == ref,
                                               (col(Division.code) == ref) & (col(Division.level) != Level.grid.value)))
        ).first()
        if row is None:
            raise DivisionUnknown({"division": ref})
        ids.append(row[0])
    return ids


def _check_role(role: Role) -> None:
    if role not in STAFF_ROLES:
        raise RoleNotAssignable()


def _check_scope(session: Session, role: Role, division_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The assignment as (division id, its path), checked against the role."""
    unique = list(dict.fromkeys(division_ids))
    if role not in AREA_ROLES:
        if unique:
            raise ScopeInvalid()
        return []
    if not unique:
        raise ScopeInvalid({"reason": "an area role needs at least one division"})
    rows = session.execute(
        select(col(Division.id), col(Division.level), col(Division.path))
        .where(col(Division.id).in_(unique), col(Division.active))
    ).all()
    if len(rows) != len(unique):
        raise DivisionUnknown()
    if any(level not in SCOPE_LEVELS[role] for _, level, _ in rows):
        raise ScopeInvalid()
    paths = {division_id: path for division_id, _, path in rows}
    return [(d, paths[d]) for d in unique]


def _assign(user_id: str, scope: list[tuple[str, str]]) -> list[UserScope]:
    return [UserScope(user_id=user_id, division_id=d, area_path=path) for d, path in scope]


class AuditorManagedByOperator(Forbidden):
    code = "auditor_managed_by_operator"
    en = ("Auditor accounts are created and reset only by the server operator (CLI), so that an admin "
          "cannot act as an auditor.")
    zh = "审计员账号只能由服务器运维人员通过命令行创建或重置，管理员不能代行审计员职责。"


class PartnerAccountManagedElsewhere(Forbidden):
    code = "partner_account"
    en = ("Partner accounts (police stations, outflow cities, landlords) are managed under /sharing/clients and "
          "/landlord-accounts, never as staff accounts.")
    zh = "合作方账号（派出所、流出地、房东）在合作方管理中维护，不能作为工作人员账号修改。"


def guard_auditor(role: Role | str, *others: Role | str | None) -> None:
    """Separation of duties (MLPS): nothing done through the admin API may create, become, take over
    or change an auditor account. Nor may it change a partner's account: a machine client turned into a worker
    and given a password would be a staff sign-in made from a partner's credentials."""
    roles = [Role(r) for r in (role, *others) if r is not None]
    if Role.auditor in roles:
        raise AuditorManagedByOperator()
    if any(r not in STAFF_ROLES for r in roles):
        raise PartnerAccountManagedElsewhere()


def create_user(session: Session, *, username: str, display_name: str, role: Role, password: str,
                division_ids: Sequence[str], must_change: bool = False) -> User:
    name = normalise_username(username)
    _check_role(role)
    if session.execute(select(col(User.id)).where(col(User.username) == name)).first():
        raise UsernameTaken()
    check_password_policy(password, name)
    scope = _check_scope(session, role, division_ids)
    user = User(username=name, display_name=display_name, role=role.value,
                password_hash=hash_password(password), must_change_password=must_change)
    try:
        with session.begin_nested():  # a concurrent create of the same name loses here, not with a 500
            session.add(user)
            session.flush()
    except IntegrityError:
        raise UsernameTaken() from None
    session.add_all(_assign(user.id, scope))
    session.flush()
    return user


def division_ids(session: Session, user_id: str) -> list[str]:
    return list(session.execute(
        select(col(UserScope.division_id)).where(col(UserScope.user_id) == user_id)
        .order_by(col(UserScope.division_id))
    ).scalars())


def get_user(session: Session, user_id: str, *, for_update: bool = False) -> User:
    """One account; `for_update` locks it so a version check and the write cannot be overtaken."""
    user = session.get(User, user_id, with_for_update=for_update or None, populate_existing=for_update)
    if user is None:
        raise NotFound()
    return user


def update_user(session: Session, user: User, *, version: int, display_name: str | None, role: Role | None,
                active: bool | None, new_division_ids: Sequence[str] | None, acting_user_id: str) -> User:
    if user.version != version:
        raise StaleVersion({"current_version": user.version})
    if user.id == acting_user_id and (active is False or (role is not None and role != Role(user.role))):
        raise OwnAccountChange()
    target_role = role or Role(user.role)
    _check_role(target_role)
    if new_division_ids is not None or target_role != Role(user.role):
        if new_division_ids is None:
            # Keep the assignment when it still fits; a city-wide role simply drops it.
            new_division_ids = division_ids(session, user.id) if target_role in AREA_ROLES else []
        scope = _check_scope(session, target_role, new_division_ids)
        session.execute(delete(UserScope).where(col(UserScope.user_id) == user.id))
        session.add_all(_assign(user.id, scope))
        audit.record(session, "user_scopes.replace", target_type="users", target_id=user.id,
                     fields=["division_id"])
    if display_name is not None:
        user.display_name = display_name
    if role is not None:
        user.role = role.value
    if active is not None:
        user.active = active
        if not active:
            revoke_all_sessions(session, user.id, "disabled")
    user.version += 1
    user.updated_at = utcnow()
    session.add(user)
    session.flush()
    return user


def reset_password(session: Session, user: User, temporary_password: str) -> None:
    """Set a temporary password: every session of the user ends, the name is unlocked, and the user
    must choose a new password at the next sign-in."""
    check_password_policy(temporary_password, user.username)
    set_password(user, temporary_password, must_change=True)
    session.add(user)
    revoke_all_sessions(session, user.id, "password_reset")
    clear_lock(session, get_settings(), user.username)
    audit.record(session, "auth.password_reset", target_type="users", target_id=user.id)
