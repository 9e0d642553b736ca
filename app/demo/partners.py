"""Demo partner accounts, so that `make run` shows the partner API too (docs/sharing.md): a police station over the
demo's first street, the outflow city 周口 (户籍地 prefix 411600), and one confirmed landlord who lets a dwelling.

Made through the sharing domain's own services (a client's secret is hashed and shown once, here); the logins join
the demo's list: a machine client's line holds its client id and secret (for `POST /partner/oauth/token`), the
landlord's their phone and password (for `POST /auth/login`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.models import User
from app.core.actor import Role
from app.core.security import hash_password
from app.core.types import utcnow
from app.people.models import Landlord, Tenancy
from app.places.models import Division, Dwelling, Level
from app.sharing.landlords.models import LandlordAccount
from app.sharing.partners import service as partners

POLICE_ID, OUTFLOW_ID, OUTFLOW_PREFIX = "demo-police-station", "demo-zhoukou", "411600"


def seed_partners(session: Session, landlord_password: str) -> list[tuple[str, str, str]]:
    """The demo's partner logins as (username, role, secret or password); none when the demo has no street."""
    admin = session.execute(select(col(User.id)).where(col(User.role) == Role.admin.value)).scalars().first()
    street = session.execute(select(Division).where(col(Division.level) == Level.street.value)
                             .order_by(col(Division.path))).scalars().first()
    if admin is None or street is None:
        return []
    logins = []
    clients = ((POLICE_ID, "演示派出所", Role.police), (OUTFLOW_ID, "周口市（演示）", Role.outflow_city))
    for client_id, name, kind in clients:
        user = partners.create_client(session, client_id=client_id, display_name=name, kind=kind, actor_id=admin)
        partners.set_jurisdiction(session, user.id, version=1,
                                  division_ids=[street.id] if kind is Role.police else None,
                                  hukou_prefix=OUTFLOW_PREFIX if kind is Role.outflow_city else None)
        logins.append((client_id, kind.value, partners.add_secret(session, user.id, admin).client_secret))
    landlord = _landlord(session, street, landlord_password)
    if landlord is not None:
        logins.append((landlord, Role.landlord.value, landlord_password))
    return logins


def _landlord(session: Session, street: Division, password: str) -> str | None:
    """A confirmed account for a landlord with a phone who lets a dwelling in the street to someone now; their
    phone, or None."""
    found = session.execute(
        select(Landlord, Dwelling).join(Dwelling, col(Dwelling.landlord_id) == col(Landlord.id))
        .join(Tenancy, col(Tenancy.dwelling_id) == col(Dwelling.id))
        .where(col(Landlord.phone).is_not(None), col(Dwelling.area_path).startswith(street.path),
               col(Tenancy.move_out).is_(None))
        .order_by(col(Landlord.id)).limit(1)).first()
    if found is None:
        return None
    landlord, dwelling = found
    assert landlord.phone is not None
    if session.execute(select(col(User.id)).where(col(User.username) == landlord.phone)).first() is not None:
        return None
    user = User(username=landlord.phone, display_name=landlord.name, role=Role.landlord.value,
                password_hash=hash_password(password))
    session.add(user)
    session.flush()
    community = session.get(Division, dwelling.community_id)
    assert community is not None
    session.add(LandlordAccount(user_id=user.id, landlord_id=landlord.id, name=landlord.name,
                                id_number=landlord.id_number, phone=landlord.phone, community_id=community.id,
                                area_path=community.path, district_code=dwelling.district_code,
                                confirmed_at=utcnow()))
    session.flush()
    return landlord.phone
