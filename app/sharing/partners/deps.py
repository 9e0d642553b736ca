"""A machine client's scope (its jurisdiction) and the scopes its access token was granted.

`JurisdictionScope` implements `app.core.actor.Scope`:
- a police station sees the areas of its streets and communities: `area_filter` is the staff filter on those
  paths, so every area-scoped query works unchanged;
- an outflow city has no area at all (`area_filter` is false, so it sees nothing through any area-scoped
  query); what it sees is `hukou_filter`: residents whose `hukou_code` starts with its 户籍地 prefix.
A client with no jurisdiction set sees nothing (both filters false).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends
from sqlalchemy import ColumnElement, false, select
from sqlmodel import Session, col

from app.auth.deps import Claims, CurrentActor, check_rule
from app.core.actor import Actor, AreaScope, Role
from app.core.deps import ACCESS_RULE
from app.core.errors import Forbidden
from app.core.queries import starts_with
from app.sharing.partners.models import PartnerArea, PartnerClient

SCOPE_CLAIM = "scope"


@dataclass(frozen=True)
class JurisdictionScope:
    area_paths: tuple[str, ...] = ()
    hukou_prefix: str | None = None

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]:
        return AreaScope(self.area_paths).area_filter(column, district_column)

    def sees_path(self, path: str) -> bool:
        return path.startswith(self.area_paths)  # a tuple: one C call (the feed asks it for every entry)

    def hukou_filter(self, column: Any) -> ColumnElement[bool]:
        return starts_with(column, self.hukou_prefix) if self.hukou_prefix else false()

    def sees_hukou(self, code: str | None) -> bool:
        return bool(self.hukou_prefix and code and code.startswith(self.hukou_prefix))


NOTHING = JurisdictionScope()


def build_scope(session: Session, user_id: str) -> JurisdictionScope:
    """Registered for the police and outflow-city roles in app/wiring.py: one statement per request."""
    rows = session.execute(
        select(col(PartnerClient.hukou_prefix), col(PartnerArea.area_path))
        .select_from(PartnerClient)
        .outerjoin(PartnerArea, col(PartnerArea.user_id) == col(PartnerClient.user_id))
        .where(col(PartnerClient.user_id) == user_id)
        .order_by(col(PartnerArea.area_path))
    ).all()
    if not rows:
        return NOTHING
    return JurisdictionScope(tuple(path for _, path in rows if path is not None), rows[0][0])


def jurisdiction(scope: object) -> JurisdictionScope:
    """The caller's jurisdiction (nothing at all for any other kind of scope)."""
    return scope if isinstance(scope, JurisdictionScope) else NOTHING


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    en = "The access token was not granted the scope this route needs."
    zh = "访问令牌未被授予此接口所需的权限范围。"


def partner(role: Role, scope: str) -> Any:
    """A partner route's access rule: the role (403 `forbidden` otherwise), then the OAuth scope its token was
    granted (403 `insufficient_scope`)."""
    allowed = frozenset({role})

    async def rule(actor: CurrentActor, claims: Claims) -> Actor:  # async: no I/O
        check_rule(actor, allowed, False)
        if scope not in str(claims.get(SCOPE_CLAIM, "")).split():
            raise InsufficientScope()
        return actor

    setattr(rule, ACCESS_RULE, allowed)
    return Depends(rule)
