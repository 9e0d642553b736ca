"""Account administration (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from app.accounts import service
from app.accounts.schemas import MeOut, PasswordResetIn, ScopeDivision, UserCreate, UserOut, UserUpdate
from app.auth.deps import ALL_USERS, AdminActor, Hop, hop
from app.auth.models import User
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.lean import run
from app.core.pagination import Page, PageDep, paginate
from app.core.queries import ByKey
from app.places.models import Division

router = APIRouter(prefix="/users", tags=["users"])
me_router = APIRouter(prefix="/auth", tags=["auth"])
# Works while a password change is pending (the app shows who must change it).
MeHop = Annotated[Hop, hop(*ALL_USERS, password_expired_ok=True)]
UserId = Annotated[str, Path(max_length=32, description="Account id")]


def _out(session: SessionDep, user: User) -> UserOut:
    return UserOut.model_validate({**user.model_dump(), "division_ids": service.division_ids(session, user.id)})


@router.post("", response_model=UserOut, status_code=201, summary="Create an account")
def create_user(body: UserCreate, session: SessionDep, actor: AdminActor) -> UserOut:
    service.guard_auditor(body.role)
    user = service.create_user(session, username=body.username, display_name=body.display_name, role=body.role,
                               password=body.password, division_ids=body.division_ids, must_change=True)
    return _out(session, user)


@router.get("", response_model=Page[UserOut], summary="List accounts")
def list_users(
    session: SessionDep,
    actor: AdminActor,
    page: PageDep,
    role: Role | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=64, description="Username or display name contains")] = None,
) -> Page[UserOut]:
    stmt = select(User).order_by(col(User.username))
    if role is not None:
        stmt = stmt.where(col(User.role) == role.value)
    if active is not None:
        stmt = stmt.where(col(User.active) == active)
    if q:
        needle = q.lower()  # % and _ are matched literally
        stmt = stmt.where(or_(
            col(User.username).contains(needle, autoescape=True),
            func.lower(col(User.display_name)).contains(needle, autoescape=True),
        ))
    users, total = paginate(session, stmt, page)
    return Page(items=[_out(session, u) for u in users], total=total, limit=page.limit, offset=page.offset)


@router.get("/{user_id}", response_model=UserOut, summary="One account")
def get_user(user_id: UserId, session: SessionDep, actor: AdminActor) -> UserOut:
    return _out(session, service.get_user(session, user_id))


@router.patch("/{user_id}", response_model=UserOut, summary="Edit role, assignment, name or status")
def update_user(user_id: UserId, body: UserUpdate, session: SessionDep, actor: AdminActor) -> UserOut:
    target = service.get_user(session, user_id, for_update=True)
    service.guard_auditor(target.role, body.role)
    user = service.update_user(
        session, target, version=body.version,
        display_name=body.display_name, role=body.role, active=body.active, new_division_ids=body.division_ids,
        acting_user_id=actor.user_id,
    )
    return _out(session, user)


@router.post("/{user_id}/reset-password", status_code=204,
             summary="Set a temporary password; the user must change it at next sign-in")
def reset_password(user_id: UserId, body: PasswordResetIn, session: SessionDep, actor: AdminActor) -> None:
    target = service.get_user(session, user_id, for_update=True)
    service.guard_auditor(target.role)
    service.reset_password(session, target, body.temporary_password)


@me_router.get("/me", response_model=MeOut, summary="Who am I, and where do I work")
async def me(hop: MeHop) -> Response:
    return await hop.run(_me)


# Built once: building a statement costs more than running it (100–200 µs each, py-spy 2026-12-06).
_SCOPE = ByKey(lambda key: select(col(Division.id), col(Division.code), col(Division.name), col(Division.level),
                                  col(Division.path)).where(key(col(Division.path))).order_by(col(Division.path)),
               lean=True)


def _me(session: Session, actor: Actor) -> MeOut:
    scope = None
    if actor.area_prefixes is not None:
        # Exactly the scope the actor is granted (an account whose role has no area sees nothing). Plain rows:
        # every phone asks this at start-up. The display name came with the actor (one statement fewer).
        rows = run(session.connection(), *_SCOPE(actor.area_prefixes)) if actor.area_prefixes else []
        scope = [ScopeDivision(id=i, code=c, name=n, level=lv, path=p) for i, c, n, lv, p in rows]
    return MeOut(id=actor.user_id, username=actor.username, display_name=actor.display_name, role=actor.role,
                 must_change_password=actor.must_change_password, scope=scope)
