"""Administration of machine clients (police stations, outflow cities): admins only."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from app.auth.deps import AdminActor
from app.core.actor import Role
from app.core.deps import SessionDep
from app.sharing.partners import service
from app.sharing.partners.schemas import ClientCreate, ClientOut, JurisdictionIn, NewSecretOut

router = APIRouter(prefix="/sharing/clients", tags=["sharing"])


def _out(session: Session, user_id: str) -> ClientOut:
    user, client = service.get_client(session, user_id)
    return service.client_out(session, user, client)


@router.post("", response_model=ClientOut, status_code=201,
             summary="Create a machine client (police station or outflow city); then set its jurisdiction and "
                     "add a secret", responses={409: {"description": "`username_taken`"}})
def create_client(body: ClientCreate, session: SessionDep, actor: AdminActor) -> ClientOut:
    user = service.create_client(session, client_id=body.client_id, display_name=body.display_name,
                                 kind=Role(body.kind), actor_id=actor.user_id)
    return _out(session, user.id)


@router.get("", response_model=list[ClientOut], summary="Machine clients")
def list_clients(session: SessionDep, actor: AdminActor) -> list[ClientOut]:
    return service.list_clients(session)


@router.get("/{user_id}", response_model=ClientOut, summary="One machine client")
def get_client(user_id: str, session: SessionDep, actor: AdminActor) -> ClientOut:
    return _out(session, user_id)


@router.put("/{user_id}/jurisdiction", response_model=ClientOut,
            summary="Set a client's jurisdiction: a police station's streets and communities, or an outflow "
                    "city's 户籍地 prefix",
            responses={422: {"description": "`jurisdiction_invalid`"}, 409: {"description": "`stale_version`"}})
def set_jurisdiction(user_id: str, body: JurisdictionIn, session: SessionDep, actor: AdminActor) -> ClientOut:
    service.set_jurisdiction(session, user_id, version=body.version, division_ids=body.division_ids,
                             hukou_prefix=body.hukou_prefix)
    return _out(session, user_id)


@router.post("/{user_id}/secrets", response_model=NewSecretOut, status_code=201,
             summary="Add a client secret (shown once; at most two valid at once)",
             responses={409: {"description": "`too_many_secrets`"}})
def add_secret(user_id: str, session: SessionDep, actor: AdminActor) -> NewSecretOut:
    return service.add_secret(session, user_id, actor.user_id)


@router.post("/{user_id}/secrets/{secret_id}/retire", status_code=204,
             summary="Retire a client secret (tokens it already obtained expire on their own)")
def retire_secret(user_id: str, secret_id: str, session: SessionDep, actor: AdminActor) -> None:
    service.retire_secret(session, user_id, secret_id)


@router.post("/{user_id}/disable", response_model=ClientOut,
             summary="Disable a client: its tokens stop working at once, no new ones are issued")
def disable(user_id: str, session: SessionDep, actor: AdminActor) -> ClientOut:
    service.set_active(session, user_id, False)
    return _out(session, user_id)


@router.post("/{user_id}/enable", response_model=ClientOut, summary="Enable a disabled client again")
def enable(user_id: str, session: SessionDep, actor: AdminActor) -> ClientOut:
    service.set_active(session, user_id, True)
    return _out(session, user_id)
