"""Disclosure profiles: read by admins and auditors, edited by admins (each edit a new version)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app.auth.deps import AdminActor, allow
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.sharing.profiles import service
from app.sharing.profiles.schemas import Kind, ProfileIn, ProfileOut

router = APIRouter(prefix="/sharing/profiles", tags=["sharing"])
ReaderActor = Annotated[Actor, allow(Role.admin, Role.auditor)]


@router.get("", response_model=list[ProfileOut], summary="The disclosure profile in force for each partner kind")
def list_profiles(session: SessionDep, actor: ReaderActor) -> list[ProfileOut]:
    return service.current_all(session)


@router.get("/{kind}", response_model=ProfileOut, summary="A partner kind's disclosure profile in force")
def get_profile(kind: Kind, session: SessionDep, actor: ReaderActor) -> ProfileOut:
    return service.current_out(session, kind)


@router.get("/{kind}/versions", response_model=list[ProfileOut],
            summary="Every version of a partner kind's disclosure profile, newest first")
def profile_versions(kind: Kind, session: SessionDep, actor: ReaderActor) -> list[ProfileOut]:
    return service.versions(session, kind)


@router.put("/{kind}", response_model=ProfileOut,
            summary="Change a partner kind's disclosure profile (a new version; the old ones are kept)",
            responses={409: {"description": "`stale_version`"},
                       422: {"description": "`field_group_not_allowed`: outside what the kind may ever receive"}})
def update_profile(kind: Kind, body: ProfileIn, session: SessionDep, actor: AdminActor) -> ProfileOut:
    return service.update(session, kind, body, actor.user_id)
