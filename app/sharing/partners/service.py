"""Machine clients: created, given a jurisdiction and secrets, disabled, by admins (their quotas:
app/sharing/partners/quotas.py).

A client is a `users` row (role `police` or `outflow_city`, username = client id) whose password is a random
value nobody knows, and which may never sign in with a password (`app.auth.service.MACHINE_ROLES`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.accounts.service import UsernameTaken
from app.auth.models import User
from app.auth.service import normalise_username, revoke_all_sessions
from app.core.actor import Role
from app.core.errors import Conflict, NotFound, StaleVersion, Unprocessable
from app.core.security import hash_password
from app.core.types import utcnow
from app.ledger import audit
from app.places.models import Division, Level
from app.sharing.partners.models import PartnerArea, PartnerClient, PartnerSecret
from app.sharing.partners.schemas import AreaOut, ClientOut, NewSecretOut, SecretOut

MACHINE_KINDS = (Role.police, Role.outflow_city)
MAX_VALID_SECRETS = 2
POLICE_LEVELS = {Level.street.value, Level.community.value}


class TooManySecrets(Conflict):
    code = "too_many_secrets"
    en = "A client has at most two valid secrets: retire the old one first."
    zh = "每个客户端最多同时有两个有效密钥，请先停用旧密钥。"


class JurisdictionInvalid(Unprocessable):
    code = "jurisdiction_invalid"
    en = ("A police station's jurisdiction is a list of streets and communities; an outflow city's is a 户籍地 "
          "division-code prefix.")
    zh = "派出所的辖区为街道和社区列表；流出地城市的辖区为户籍地区划代码前缀。"


# --- administration --------------------------------------------------------------------------------------------

def create_client(session: Session, *, client_id: str, display_name: str, kind: Role, actor_id: str) -> User:
    name = normalise_username(client_id)
    if session.execute(select(col(User.id)).where(col(User.username) == name)).first():
        raise UsernameTaken()
    user = User(username=name, display_name=display_name, role=kind.value,
                password_hash=hash_password(secrets.token_urlsafe(32)))  # never used: password sign-in is refused
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise UsernameTaken() from None
    session.add(PartnerClient(user_id=user.id, kind=kind.value, created_by=actor_id))
    session.flush()
    return user


def get_client(session: Session, user_id: str, *, for_update: bool = False) -> tuple[User, PartnerClient]:
    client = session.get(PartnerClient, user_id, with_for_update=for_update or None, populate_existing=for_update)
    user = session.get(User, user_id) if client is not None else None
    if client is None or user is None:
        raise NotFound()
    return user, client


def set_jurisdiction(session: Session, user_id: str, *, version: int, division_ids: Sequence[str] | None,
                     hukou_prefix: str | None) -> None:
    _, client = get_client(session, user_id, for_update=True)
    if client.version != version:
        raise StaleVersion({"current_version": client.version})
    if client.kind == Role.police.value:
        if hukou_prefix is not None or not division_ids:
            raise JurisdictionInvalid()
        areas = _police_areas(session, division_ids)
        for old in session.execute(select(PartnerArea).where(col(PartnerArea.user_id) == user_id)).scalars():
            session.delete(old)  # row by row: each change is audited
        session.flush()
        session.add_all(PartnerArea(user_id=user_id, division_id=d, area_path=p) for d, p in areas)
    else:
        if division_ids or hukou_prefix is None:
            raise JurisdictionInvalid()
        client.hukou_prefix = hukou_prefix
    client.version += 1
    client.updated_at = utcnow()
    session.add(client)
    session.flush()


def _police_areas(session: Session, division_ids: Sequence[str]) -> list[tuple[str, str]]:
    unique = list(dict.fromkeys(division_ids))
    rows = session.execute(select(col(Division.id), col(Division.level), col(Division.path))
                           .where(col(Division.id).in_(unique), col(Division.active))).all()
    if len(rows) != len(unique):
        raise NotFound({"reason": "division"})
    if any(level not in POLICE_LEVELS for _, level, _ in rows):
        raise JurisdictionInvalid()
    paths = {d: p for d, _, p in rows}
    return [(d, paths[d]) for d in unique]


def add_secret(session: Session, user_id: str, actor_id: str) -> NewSecretOut:
    """A new secret, returned once. The client's row is locked, so two adds at once cannot pass the limit."""
    user, _ = get_client(session, user_id, for_update=True)
    valid = session.execute(select(col(PartnerSecret.id)).where(col(PartnerSecret.user_id) == user_id,
                                                                 col(PartnerSecret.retired_at).is_(None))).all()
    if len(valid) >= MAX_VALID_SECRETS:
        raise TooManySecrets()
    row = PartnerSecret(user_id=user_id, secret_hash="", created_by=actor_id)
    value = f"{row.id}.{secrets.token_urlsafe(32)}"
    row.secret_hash = hash_password(value)
    session.add(row)
    session.flush()
    audit.record(session, "sharing.client_secret_add", target_type="user", target_id=user_id,
                 detail={"secret_id": row.id})
    return NewSecretOut(id=row.id, client_id=user.username, client_secret=value, created_at=row.created_at)


def retire_secret(session: Session, user_id: str, secret_id: str) -> None:
    get_client(session, user_id, for_update=True)
    row = session.get(PartnerSecret, secret_id)
    if row is None or row.user_id != user_id:
        raise NotFound()
    if row.retired_at is None:
        row.retired_at = utcnow()
        session.add(row)
        session.flush()


def set_active(session: Session, user_id: str, active: bool) -> None:
    """Disabling ends every token the client holds on its next request (`load_actor` reads the account)."""
    user, _ = get_client(session, user_id, for_update=True)
    user.active, user.updated_at = active, utcnow()
    user.version += 1
    session.add(user)
    if not active:
        revoke_all_sessions(session, user_id, "disabled")
    session.flush()


def client_out(session: Session, user: User, client: PartnerClient) -> ClientOut:
    areas = session.execute(select(col(PartnerArea.division_id), col(PartnerArea.area_path))
                            .where(col(PartnerArea.user_id) == user.id).order_by(col(PartnerArea.area_path))).all()
    rows = session.execute(select(PartnerSecret).where(col(PartnerSecret.user_id) == user.id)
                           .order_by(col(PartnerSecret.created_at), col(PartnerSecret.id))).scalars()
    return ClientOut(user_id=user.id, client_id=user.username, display_name=user.display_name,
                     kind=Role(client.kind), active=user.active,
                     areas=[AreaOut(division_id=d, path=p) for d, p in areas], hukou_prefix=client.hukou_prefix,
                     secrets=[SecretOut.model_validate(r, from_attributes=True) for r in rows],
                     version=client.version, created_at=client.created_at)


def list_clients(session: Session) -> list[ClientOut]:
    pairs = session.execute(select(User, PartnerClient).join(PartnerClient, col(PartnerClient.user_id) == col(User.id))
                            .order_by(col(User.username))).all()
    return [client_out(session, user, client) for user, client in pairs]
