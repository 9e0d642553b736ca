"""Places: the division hierarchy (city → district → street → community → grid) and dwellings.

Rules (shared by the API and the table import, see `code_problem`, `parent_problem`, `type_problem`):
- Codes are data. By level: city 6 digits ending "00"; district 6 digits sharing the city's first 4 and not
  ending "00" (that is the city's own code); street 9 digits starting with the district code; community
  12 digits starting with the street code; grid 1–20 of [A-Za-z0-9-], stored upper-case (so "g01" and
  "G01" cannot both exist), unique within its community. Digits are ASCII only.
- A parent is exactly one level up; a city has none. `path` = parent path + code + "/" (root "/410100/"),
  `district_code` is the district's code for a district and everything below it.
- `community_type` is required for a community and forbidden elsewhere.
- An active division has an active parent; a division with active children or active dwellings cannot be
  deactivated (409 `division_in_use`). Dwellings are only placed in active communities and grids.

Renumbering and moving (`_relocate`): the statistical codes embed their ancestors' codes, so a new code
for a district rewrites the code prefix of its streets and communities too (a city's new code rewrites the
first four digits below it); grid codes are local and never rewritten. The subtree's new codes, paths and
district codes are computed once and written with bulk UPDATE statements (by id for divisions; by old path
for every table that carries `area_path`, found from the metadata so later domains are rewritten too).
Bulk statements bypass the automatic audit, so one explicit `divisions.relocate` event records the ids,
codes and counts. Descendant divisions get a new `version`; dwellings keep theirs (nothing a client sees or
edits changed) but their `updated_at` moves so incremental readers notice the new area.

Rows of other domains follow their place: a relocation rewrites `area_path` (and `district_code`) in every
area table; a grid moved to another community re-points `community_id` of what lies in it (refused with
`dwelling_address_taken` if one of its dwellings' addresses is already used in the target community); a
dwelling moved to another area carries every row that names it (`dwelling_id` + `area_path`: residents,
tenancies). These are bulk statements with their own audit events (`divisions.relocate`,
`dwellings.move_rows`). Tables that keep only a `district_code` copy (no `area_path`) are not rewritten.

Scope: every read goes through `actor.area_filter` (divisions by `path`, dwellings by `area_path`); an id
outside the caller's scope is 404, like an unknown id. A dwelling's area is its grid's path when it has a
grid, else its community's; a caller may place a dwelling only in an area they see, so a grid worker must
name their grid.

Concurrency (PostgreSQL; SQLite write transactions are already serialised by BEGIN IMMEDIATE): division
writes lock the rows they depend on with SELECT … FOR UPDATE in one statement ordered by path (ancestors
before descendants: one global order, so two places writers cannot deadlock each other); dwelling writes
take FOR SHARE on their community and grid before locking the dwelling. Versions are compared after the
lock. A constraint violation, or a deadlock with another domain's writer, becomes a 409 (`concurrent_update`
or the rule's own code), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, SQLModel, col

from app.core.actor import Actor
from app.core.errors import AppError, NotFound, StaleVersion
from app.core.pagination import PageParams, paginate
from app.core.queries import starts_with
from app.core.types import utcnow
from app.ledger import audit, changes
from app.places.errors import (
    CommunityTypeForbidden,
    CommunityTypeRequired,
    ConcurrentUpdate,
    DivisionCodeInvalid,
    DivisionCodeMismatch,
    DivisionCodeTaken,
    DivisionInUse,
    DivisionMoveCycle,
    DivisionParentInactive,
    DivisionParentLevel,
    DwellingAddressTaken,
)
from app.places.models import LEVEL_ORDER, CommunityType, Division, Dwelling, Level
from app.places.schemas import (
    DivisionCreate,
    DivisionMove,
    DivisionUpdate,
    collapse_spaces,
)

# --- code rules (pure; the import reuses them) ----------------------------------------------------------

_FORMATS = {
    Level.city: re.compile(r"[0-9]{4}00"),
    Level.district: re.compile(r"[0-9]{4}(?!00)[0-9]{2}"),
    Level.street: re.compile(r"[0-9]{9}"),
    Level.community: re.compile(r"[0-9]{12}"),
    Level.grid: re.compile(r"[A-Z0-9-]{1,20}"),
}


def normalise_code(level: Level, code: str) -> str:
    code = code.strip()
    return code.upper() if level == Level.grid else code


def parent_level(level: Level) -> Level | None:
    index = LEVEL_ORDER.index(level)
    return LEVEL_ORDER[index - 1] if index else None


def parent_problem(level: Level, parent: Level | None) -> type[AppError] | None:
    return DivisionParentLevel if parent != parent_level(level) else None


def code_problem(level: Level, code: str, parent_code: str | None) -> type[AppError] | None:
    """The rule a (normalised) code breaks for its level and parent code, if any."""
    if not _FORMATS[level].fullmatch(code):
        return DivisionCodeInvalid
    if parent_code is None or level in (Level.city, Level.grid):
        return None
    if level == Level.district:
        return None if code[:4] == parent_code[:4] else DivisionCodeMismatch
    return None if code.startswith(parent_code) else DivisionCodeMismatch


def type_problem(level: Level, community_type: CommunityType | str | None) -> type[AppError] | None:
    if level == Level.community and community_type is None:
        return CommunityTypeRequired
    if level != Level.community and community_type is not None:
        return CommunityTypeForbidden
    return None


def district_code_for(level: Level, code: str, parent: Division | None) -> str | None:
    if level == Level.city:
        return None
    if level == Level.district:
        return code
    return parent.district_code if parent is not None else None


def descendant_prefix(level: Level, code: str) -> str:
    """The part of a code that the numeric codes below it start with ('' when none do)."""
    if level == Level.city:
        return code[:4]
    if level in (Level.district, Level.street):
        return code
    return ""


def _raise(problem: type[AppError] | None) -> None:
    if problem is not None:
        raise problem()


@contextmanager
def db_conflicts(on_integrity: type[AppError]) -> Iterator[None]:
    """Turn a constraint violation (a concurrent writer won a race) or a deadlock into a 409."""
    try:
        yield
    except IntegrityError:
        raise on_integrity() from None
    except DBAPIError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate in ("40P01", "40001", "55P03"):
            raise ConcurrentUpdate() from None
        raise


# --- reading divisions ----------------------------------------------------------------------------------

def division_query(actor: Actor) -> Select[Any]:
    return select(Division).where(actor.area_filter(col(Division.path)))


def list_divisions(session: Session, actor: Actor, page: PageParams, *, parent_id: str | None = None,
                   level: Level | None = None, q: str | None = None,
                   active: bool | None = None) -> tuple[list[Division], int]:
    stmt = division_query(actor).order_by(col(Division.path))
    if parent_id is not None:
        stmt = stmt.where(col(Division.parent_id) == parent_id)
    if level is not None:
        stmt = stmt.where(col(Division.level) == level.value)
    if active is not None:
        stmt = stmt.where(col(Division.active) == active)
    if q:
        text = collapse_spaces(q)
        stmt = stmt.where(col(Division.name).icontains(text, autoescape=True)
                          | col(Division.code).icontains(text, autoescape=True))
    return paginate(session, stmt, page)


def get_division(session: Session, actor: Actor, division_id: str) -> Division:
    division = session.execute(division_query(actor).where(col(Division.id) == division_id)).scalar_one_or_none()
    if division is None:
        raise NotFound()
    return division


def ancestors(session: Session, division: Division) -> list[Division]:
    """The breadcrumb from the root down to the parent (names of one's own ancestors are not secret)."""
    parts = division.path.strip("/").split("/")
    prefixes = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]
    if not prefixes:
        return []
    rows = session.execute(select(Division).where(col(Division.path).in_(prefixes))).scalars()
    return sorted(rows, key=lambda d: len(d.path))


# --- locking --------------------------------------------------------------------------------------------

def lock(session: Session, ids: Iterable[str | None], *, subtree: str | None = None,
          share: bool = False) -> dict[str, Division]:
    """Lock divisions (and optionally a whole subtree) in path order; return them fresh, by id."""
    wanted = [i for i in dict.fromkeys(ids) if i]
    cond: ColumnElement[bool] = col(Division.id).in_(wanted)
    if subtree is not None:
        cond = cond | starts_with(col(Division.path), subtree)
    stmt = (select(Division).where(cond).order_by(col(Division.path))
            .with_for_update(read=share).execution_options(populate_existing=True))
    with db_conflicts(ConcurrentUpdate):
        rows = session.execute(stmt).scalars().all()
    return {d.id: d for d in rows}


# --- writing divisions ----------------------------------------------------------------------------------

def create_division(session: Session, data: DivisionCreate) -> Division:
    level = data.level
    code = normalise_code(level, data.code)
    if (level == Level.city and data.parent_id is not None) or (level != Level.city and data.parent_id is None):
        raise DivisionParentLevel()
    _raise(code_problem(level, code, None))
    _raise(type_problem(level, data.community_type))
    parent = None
    if data.parent_id is not None:
        parent = lock(session, [data.parent_id]).get(data.parent_id)
        if parent is None:
            raise NotFound()
        _raise(parent_problem(level, Level(parent.level)))
        _raise(code_problem(level, code, parent.code))
        if data.active and not parent.active:
            raise DivisionParentInactive()
    path = (parent.path if parent else "/") + code + "/"
    if session.execute(select(col(Division.id)).where(col(Division.path) == path)).first():
        raise DivisionCodeTaken()
    division = Division(
        code=code, name=collapse_spaces(data.name), level=level.value, parent_id=parent.id if parent else None,
        path=path, district_code=district_code_for(level, code, parent),
        community_type=data.community_type.value if data.community_type else None, vintage=data.vintage,
        active=data.active,
    )
    session.add(division)
    with db_conflicts(DivisionCodeTaken):
        session.flush()
    return division


def check_version(record: Division | Dwelling, version: int | None) -> None:
    if version is not None and record.version != version:
        raise StaleVersion({"current_version": record.version})


def update_division(session: Session, division: Division, data: DivisionUpdate) -> Division:
    changes = data.changes()
    level = Level(division.level)
    new_code = normalise_code(level, changes["code"]) if "code" in changes else division.code
    relocating = new_code != division.code
    locked = lock(session, [division.id, division.parent_id], subtree=division.path if relocating else None)
    division = locked[division.id]
    check_version(division, data.version)
    parent = locked.get(division.parent_id) if division.parent_id else None
    if relocating:
        _raise(code_problem(level, new_code, parent.code if parent else None))
    dirty = False
    with session.no_autoflush:  # one flush, one audit event for all of this request's changes
        if "community_type" in changes:
            ctype = changes["community_type"]
            _raise(type_problem(level, ctype))
            value = ctype.value if ctype is not None else None
            dirty |= value != division.community_type
            division.community_type = value
        if "name" in changes and collapse_spaces(changes["name"]) != division.name:
            division.name, dirty = collapse_spaces(changes["name"]), True
        if "vintage" in changes and changes["vintage"] != division.vintage:
            division.vintage, dirty = changes["vintage"], True
        if "active" in changes and changes["active"] != division.active:
            if changes["active"]:
                if parent is not None and not parent.active:
                    raise DivisionParentInactive()
            else:
                _check_not_in_use(session, division)
            division.active, dirty = changes["active"], True
    if relocating:
        bump(division)
        _relocate(session, division, parent, new_code)  # flushes the division with the other changes
    elif dirty:
        bump(division)
        session.add(division)
        with db_conflicts(DivisionCodeTaken):
            session.flush()
    return division


def move_division(session: Session, division: Division, data: DivisionMove) -> Division:
    level = Level(division.level)
    if level == Level.city:
        raise DivisionParentLevel()
    locked = lock(session, [division.id, data.parent_id, division.parent_id], subtree=division.path)
    division = locked[division.id]
    check_version(division, data.version)
    parent = locked.get(data.parent_id)
    if parent is None:
        raise NotFound()
    if parent.path.startswith(division.path):
        raise DivisionMoveCycle()
    _raise(parent_problem(level, Level(parent.level)))
    code = normalise_code(level, data.code) if data.code is not None else division.code
    _raise(code_problem(level, code, parent.code))
    if division.active and not parent.active:
        raise DivisionParentInactive()
    if parent.id == division.parent_id and code == division.code:
        return division
    bump(division)
    _relocate(session, division, parent, code)
    return division


def bump(record: Division | Dwelling) -> None:
    record.version += 1
    record.updated_at = utcnow()


def _check_not_in_use(session: Session, division: Division) -> None:
    children = session.execute(
        select(col(Division.id)).where(col(Division.parent_id) == division.id, col(Division.active)).limit(1)
    ).first()
    dwellings = session.execute(
        select(col(Dwelling.id)).where(starts_with(col(Dwelling.area_path), division.path),
                                  col(Dwelling.active)).limit(1)
    ).first()
    if children or dwellings:
        raise DivisionInUse({"active_children": bool(children), "active_dwellings": bool(dwellings)})


def area_tables() -> list[Table]:
    """Every table whose rows live in an area (carry `area_path`): rewritten when divisions move.

    Tables whose `area_path` records where something *was* (the sync log: `info={"area_history": True}`)
    are history and keep their paths."""
    return [t for t in SQLModel.metadata.sorted_tables if "area_path" in t.c and not t.info.get("area_history")]


def _relocate(session: Session, node: Division, parent: Division | None, new_code: str) -> None:
    """Give `node` a new code and/or parent; rewrite its subtree and everything located in it.

    The node's own pending changes (and version) are flushed once, together with its new code and path."""
    level = Level(node.level)
    old_path, old_code = node.path, node.code
    new_path = (parent.path if parent else "/") + new_code + "/"
    regrid = level == Level.grid and parent is not None and parent.id != node.parent_id
    rows = _relocation_subtree(session, node, parent if regrid else None, old_path, new_path)
    new_dc = district_code_for(level, new_code, parent)
    division_rows, area_rows = _relocation_plan(rows, level, old_code, new_code, old_path, new_path, new_dc,
                                                node.id)
    node.code, node.path, node.district_code = new_code, new_path, new_dc
    node.parent_id = parent.id if parent else None
    session.add(node)
    with db_conflicts(DivisionCodeTaken):
        session.flush()  # the node first: its new path is free, its descendants' new paths lie under it
        table: Table = Division.__table__  # type: ignore[attr-defined]
        if division_rows:
            session.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    code=bindparam("b_code"), path=bindparam("b_path"), district_code=bindparam("b_dc"),
                    updated_at=utcnow(), version=table.c.version + 1),
                division_rows,
            )
            changes.mark_area_move(session, table, old_path, new_path)
        moved = _rewrite_areas(session, area_rows, old_path, new_path, parent if regrid else None)
    # Objects of the subtree already in this session are stale now.
    for obj in list(session.identity_map.values()):
        if obj is not node and (isinstance(obj, Division | Dwelling) or hasattr(obj, "area_path")):
            session.expire(obj)
    audit.record(
        session, "divisions.relocate", target_type="divisions", target_id=node.id,
        fields=["code", "district_code", "parent_id", "path"],
        detail={"from_code": old_code, "to_code": new_code, "from_path": old_path, "to_path": new_path,
                "descendants": len(division_rows), "area_rows": moved},
        area_path=new_path,
    )


def _relocation_subtree(session: Session, node: Division, new_community: Division | None, old_path: str,
                        new_path: str) -> list[Any]:
    """The node's descendants, parents first, once the move is known to be possible (`new_community`: a grid
    moving to another community, whose addresses must not clash)."""
    with session.no_autoflush:
        if new_path != old_path and session.execute(
                select(col(Division.id)).where(col(Division.path) == new_path)).first():
            raise DivisionCodeTaken()
        if new_community is not None:
            same_address = select(col(Dwelling.address)).where(col(Dwelling.community_id) == new_community.id)
            if session.execute(select(col(Dwelling.id)).where(
                    col(Dwelling.grid_id) == node.id, col(Dwelling.address).in_(same_address)).limit(1)).first():
                raise DwellingAddressTaken()
        return list(session.execute(
            select(col(Division.id), col(Division.code), col(Division.level), col(Division.parent_id),
                   col(Division.path))
            .where(starts_with(col(Division.path), old_path), col(Division.id) != node.id)
            .order_by(col(Division.path))
        ).all())


def _relocation_plan(rows: list[Any], level: Level, old_code: str, new_code: str, old_path: str, new_path: str,
                     new_dc: str | None, node_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the descendants' new code, path and district; every area path's old and new value)."""
    old_prefix, new_prefix = descendant_prefix(level, old_code), descendant_prefix(level, new_code)
    paths: dict[str, str] = {node_id: new_path}
    dcs: dict[str, str | None] = {node_id: new_dc}
    division_rows: list[dict[str, Any]] = []
    area_rows: list[dict[str, Any]] = [{"b_old": old_path, "b_new": new_path, "b_dc": new_dc}]
    for row in rows:  # parents sort before their children
        row_level = Level(row.level)
        code = row.code
        if old_prefix != new_prefix and row_level != Level.grid and code.startswith(old_prefix):
            code = new_prefix + code[len(old_prefix):]
        parent_path = paths.get(row.parent_id)
        path = parent_path + code + "/" if parent_path else new_path + row.path[len(old_path):]
        dc = code if row_level == Level.district else dcs.get(row.parent_id, new_dc)
        paths[row.id], dcs[row.id] = path, dc
        division_rows.append({"b_id": row.id, "b_code": code, "b_path": path, "b_dc": dc})
        area_rows.append({"b_old": row.path, "b_new": path, "b_dc": dc})
    return division_rows, area_rows


def _rewrite_areas(session: Session, area_rows: list[dict[str, Any]], old_path: str, new_path: str,
                   new_community: Division | None) -> dict[str, int]:
    """Every row located in the moved subtree (any table with `area_path`) follows it; synced rows are logged so
    phones see them leave and arrive. Returns the rows moved per table."""
    moved: dict[str, int] = {}
    now = utcnow()
    for area in area_tables():
        count = session.execute(
            select(func.count()).select_from(area).where(starts_with(area.c.area_path, old_path))
        ).scalar_one()
        if not count:
            continue
        values: dict[str, Any] = {"area_path": bindparam("b_new")}
        if "district_code" in area.c:
            values["district_code"] = func.coalesce(bindparam("b_dc"), area.c.district_code)
        if "updated_at" in area.c:
            values["updated_at"] = now
        session.execute(update(area).where(area.c.area_path == bindparam("b_old")).values(values), area_rows)
        moved[area.name] = count
        synced = changes.is_synced(area.name)
        if synced:
            changes.mark_area_move(session, area, old_path, new_path)
        if new_community is not None and "community_id" in area.c:
            # A grid changed community: what lies in it now belongs to the new community.
            inside = starts_with(area.c.area_path, new_path)
            session.execute(update(area).where(inside).values(community_id=new_community.id))
            if synced:
                changes.mark_rows(session, area, inside, fields=["community_id"])
    return moved


def refs(divisions: Sequence[Division]) -> list[dict[str, str]]:
    return [{"id": d.id, "code": d.code, "name": d.name, "level": d.level} for d in divisions]
