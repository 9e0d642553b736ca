"""Dwellings: scoped create, edit and move (see app/places/service.py for the rules of places).

A dwelling's area is its grid's path when it has a grid, else its community's; a caller may place a dwelling
only in an area they see, so a grid worker must name their grid. A dwelling moved to another area carries
every row that names it (`dwelling_id` + `area_path`: residents, tenancies, visits).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select, update
from sqlmodel import Session, col

from app.auth.models import UserScope
from app.core.actor import Actor
from app.core.errors import NotFound
from app.core.pagination import PageParams, paginate
from app.core.types import utcnow
from app.ledger import audit, changes
from app.ledger.models import SyncOp
from app.places.errors import (
    ConcurrentUpdate,
    DivisionInactive,
    DwellingAddressTaken,
    GridNotInCommunity,
    NotACommunity,
    NotAGrid,
)
from app.places.models import Division, Dwelling, DwellingKind, Level
from app.places.schemas import DwellingCreate, DwellingMove, DwellingUpdate, normalise_text
from app.places.service import area_tables, bump, check_version, db_conflicts, lock


def dwelling_query(actor: Actor) -> Select[Any]:
    return select(Dwelling).where(actor.area_filter(col(Dwelling.area_path)))


def list_dwellings(session: Session, actor: Actor, page: PageParams, *, community_id: str | None = None,
                   grid_id: str | None = None, kind: DwellingKind | None = None, q: str | None = None,
                   active: bool | None = None) -> tuple[list[Dwelling], int]:
    stmt = dwelling_query(actor).order_by(col(Dwelling.address), col(Dwelling.id))
    if community_id is not None:
        stmt = stmt.where(col(Dwelling.community_id) == community_id)
    if grid_id is not None:
        stmt = stmt.where(col(Dwelling.grid_id) == grid_id)
    if kind is not None:
        stmt = stmt.where(col(Dwelling.kind) == kind.value)
    if active is not None:
        stmt = stmt.where(col(Dwelling.active) == active)
    if q:
        stmt = stmt.where(col(Dwelling.address).icontains(normalise_text(q), autoescape=True))
    return paginate(session, stmt, page)


def get_dwelling(session: Session, actor: Actor, dwelling_id: str) -> Dwelling:
    dwelling = session.execute(dwelling_query(actor).where(col(Dwelling.id) == dwelling_id)).scalar_one_or_none()
    if dwelling is None:
        raise NotFound()
    return dwelling


def _target(session: Session, actor: Actor, community_id: str,
            grid_id: str | None) -> tuple[Division, Division | None]:
    """The community (and grid) a dwelling goes to, locked for share; 404 when the area is not visible."""
    locked = lock(session, [community_id, grid_id], share=True)
    community, grid = locked.get(community_id), locked.get(grid_id) if grid_id else None
    if grid_id is not None:
        if grid is None or not _sees_now(session, actor, grid.path):
            raise NotFound()
        if grid.level != Level.grid.value:
            raise NotAGrid()
        if community is None or grid.parent_id != community.id:
            raise GridNotInCommunity()
    elif community is None or not _sees_now(session, actor, community.path):
        raise NotFound()
    if community.level != Level.community.value:
        raise NotACommunity()
    return community, grid


def _sees_now(session: Session, actor: Actor, path: str) -> bool:
    """`actor.sees_path`, but a miss is checked again against the caller's assignments as they are now.

    The scope paths were read when the request began; a renumbering or move that committed since (this
    request may have waited for it on the lock just taken) changed the paths of the same places."""
    if actor.sees_path(path):
        return True
    if actor.area_prefixes is None:
        return False  # pragma: no cover - city-wide actors see every path
    current = session.execute(
        select(col(Division.path)).join(UserScope, col(UserScope.division_id) == col(Division.id))
        .where(col(UserScope.user_id) == actor.user_id)
    ).scalars()
    return any(path.startswith(prefix) for prefix in current)


def _require_active(community: Division, grid: Division | None) -> None:
    if not community.active or (grid is not None and not grid.active):
        raise DivisionInactive()


def _address_taken(session: Session, community_id: str, address: str, exclude: str | None = None) -> bool:
    stmt = select(col(Dwelling.id)).where(col(Dwelling.community_id) == community_id, col(Dwelling.address) == address)
    if exclude is not None:
        stmt = stmt.where(col(Dwelling.id) != exclude)
    return session.execute(stmt.limit(1)).first() is not None


def _lock_dwelling(session: Session, dwelling_id: str) -> Dwelling:
    with db_conflicts(ConcurrentUpdate):
        dwelling = session.execute(
            select(Dwelling).where(col(Dwelling.id) == dwelling_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    if dwelling is None:
        raise NotFound()
    return dwelling


def _place(dwelling: Dwelling, community: Division, grid: Division | None) -> None:
    dwelling.community_id, dwelling.grid_id = community.id, grid.id if grid else None
    dwelling.area_path = grid.path if grid else community.path
    dwelling.district_code = community.district_code or community.path.strip("/").split("/")[1]


def create_dwelling(session: Session, actor: Actor, data: DwellingCreate, *,
                    dwelling_id: str | None = None) -> Dwelling:
    community, grid = _target(session, actor, data.community_id, data.grid_id)
    _require_active(community, grid)
    if _address_taken(session, community.id, data.address):
        raise DwellingAddressTaken()
    dwelling = Dwelling(community_id=community.id, area_path="", district_code="", address=data.address,
                        kind=data.kind.value, lat=data.lat, lng=data.lng)
    if dwelling_id is not None:  # a client-generated id (sync push)
        dwelling.id = dwelling_id
    _place(dwelling, community, grid)
    session.add(dwelling)
    with db_conflicts(DwellingAddressTaken):
        session.flush()
    return dwelling


def update_dwelling(session: Session, actor: Actor, dwelling: Dwelling, data: DwellingUpdate) -> Dwelling:
    changes = data.changes()
    community, grid = _target(session, actor, dwelling.community_id, dwelling.grid_id)
    dwelling = _lock_dwelling(session, dwelling.id)
    check_version(dwelling, data.version)
    dirty = False
    if "address" in changes and changes["address"] != dwelling.address:
        if _address_taken(session, dwelling.community_id, changes["address"], exclude=dwelling.id):
            raise DwellingAddressTaken()
        dwelling.address, dirty = changes["address"], True
    if "kind" in changes and changes["kind"].value != dwelling.kind:
        dwelling.kind, dirty = changes["kind"].value, True
    if "lat" in changes and (changes["lat"], changes["lng"]) != (dwelling.lat, dwelling.lng):
        dwelling.lat, dwelling.lng, dirty = changes["lat"], changes["lng"], True
    if "active" in changes and changes["active"] != dwelling.active:
        if changes["active"]:
            _require_active(community, grid)
        dwelling.active, dirty = changes["active"], True
    if dirty:
        bump(dwelling)
        session.add(dwelling)
        with db_conflicts(DwellingAddressTaken):
            session.flush()
    return dwelling


def move_dwelling(session: Session, actor: Actor, dwelling: Dwelling, data: DwellingMove) -> Dwelling:
    community, grid = _target(session, actor, data.community_id, data.grid_id)
    dwelling = _lock_dwelling(session, dwelling.id)
    check_version(dwelling, data.version)
    if dwelling.community_id == community.id and dwelling.grid_id == (grid.id if grid else None):
        return dwelling
    if dwelling.active:
        _require_active(community, grid)
    if community.id != dwelling.community_id and _address_taken(session, community.id, dwelling.address):
        raise DwellingAddressTaken()
    old_area = dwelling.area_path
    _place(dwelling, community, grid)
    bump(dwelling)
    session.add(dwelling)
    with db_conflicts(DwellingAddressTaken):
        session.flush()
    _carry_dwelling_rows(session, dwelling, old_area)
    return dwelling


def _carry_dwelling_rows(session: Session, dwelling: Dwelling, old_area: str) -> None:
    """Rows located by this dwelling (residents, tenancies, …: any table with `dwelling_id` and
    `area_path`) move with it, so they stay in the scope of whoever now looks after the dwelling."""
    now = utcnow()
    carried: dict[str, int] = {}
    for area in area_tables():
        if area.name == Dwelling.__tablename__ or "dwelling_id" not in area.c:
            continue
        values: dict[str, Any] = {"area_path": dwelling.area_path}
        if "district_code" in area.c:
            values["district_code"] = dwelling.district_code
        if "community_id" in area.c:
            values["community_id"] = dwelling.community_id
        if "updated_at" in area.c:
            values["updated_at"] = now
        where = area.c.dwelling_id == dwelling.id
        count = session.execute(select(func.count()).select_from(area).where(where)).scalar_one()
        if count:
            synced = changes.carried(area, where)
            for table, rows in synced:
                changes.mark_rows(session, table, rows, SyncOp.exit)
            session.execute(update(area).where(where).values(values))
            for table, rows in synced:
                changes.mark_rows(session, table, rows, fields=list(values))
            carried[area.name] = count
    for obj in list(session.identity_map.values()):
        if getattr(obj, "dwelling_id", None) == dwelling.id:
            session.expire(obj)
    if carried:
        audit.record(session, "dwellings.move_rows", target_type="dwellings", target_id=dwelling.id,
                     fields=["area_path", "community_id", "district_code"],
                     detail={"from_path": old_area, "to_path": dwelling.area_path, "rows": carried})
