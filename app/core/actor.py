"""Who is calling, and what they may see: the `Actor` and its `Scope`.

The ground floor knows nothing of users or divisions: `app.auth.deps.get_actor` builds the actor from a
verified token and the database, and every domain filters its queries with the actor's scope in SQL.

A scope answers two questions: the SQL condition "this row lies within the scope" (`filter`), and the
same question for one path already in hand (`sees`). `AreaScope` is the staff scope: materialised
division paths (`/410100/410105/…/`), or the whole city. A scope that is not an area scope (the partner
kinds) sees no area at all, so every area-scoped query returns nothing for it: scope fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, false, or_, true

from app.core.queries import starts_with


class Role(StrEnum):
    worker = "worker"
    supervisor = "supervisor"
    admin = "admin"
    auditor = "auditor"
    # Partner kinds: their scopes come from the sharing domain; until then they see no area.
    landlord = "landlord"
    police = "police"
    outflow_city = "outflow_city"


STAFF_ROLES = (Role.worker, Role.supervisor, Role.admin, Role.auditor)
# Roles that work within assigned divisions; admin and auditor are city-wide.
AREA_ROLES = (Role.worker, Role.supervisor)
CITY_WIDE_ROLES = frozenset({Role.admin, Role.auditor})


class Scope(Protocol):
    """What an actor may see. Domains add kinds (partners' jurisdictions) without editing core."""

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]: ...

    def sees_path(self, path: str) -> bool: ...


@dataclass(frozen=True)
class AreaScope:
    """Division path prefixes; `prefixes=None` is the whole city, `()` nothing at all."""

    prefixes: tuple[str, ...] | None

    @property
    def city_wide(self) -> bool:
        return self.prefixes is None

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]:
        """SQL condition: the row's area path lies inside the scope.

        Given the row's `district_code` column too, the condition also names the districts, so the database
        can use (district_code, …) indexes and a distributed deployment prunes to those shards.
        """
        if self.prefixes is None:
            return true()
        if not self.prefixes:
            return false()
        key = (self.prefixes, id(column), id(district_column))
        cached = _filters.get(key)
        if cached is not None and cached[0] is column and cached[1] is district_column:
            return cached[2]
        inside = or_(*(starts_with(column, p) for p in self.prefixes))
        districts = self.district_codes
        if district_column is None or districts is None:
            condition = inside
        else:
            # One district (nearly every worker and supervisor) as `=`: an IN list is an "expanding" parameter,
            # which SQLAlchemy renders into the statement's text again on every execution.
            named = district_column == districts[0] if len(districts) == 1 else district_column.in_(districts)
            condition = and_(named, inside)
        if len(_filters) >= FILTERS_KEPT:
            _filters.clear()
        _filters[key] = (column, district_column, condition)
        return condition

    @property
    def district_codes(self) -> list[str] | None:
        """The districts the scope lies in (None when it covers a whole city)."""
        if self.prefixes is None:
            return None
        codes = set()
        for prefix in self.prefixes:
            parts = [p for p in prefix.split("/") if p]
            if len(parts) < 2:
                return None
            codes.add(parts[1])
        return sorted(codes)

    def sees_path(self, path: str) -> bool:
        return self.prefixes is None or any(path.startswith(p) for p in self.prefixes)


# Built conditions by (prefixes, column, district column): building one costs 50–100 µs, more than running the
# query it filters, and every scoped query of every request asks for one (py-spy, 2026-12-06). SQL expressions
# are immutable, so one condition serves any number of statements. The columns are kept with the condition and
# compared by identity, so a column that has gone and whose id is reused never matches.
FILTERS_KEPT = 4096
_filters: dict[tuple[tuple[str, ...], int, int], tuple[Any, Any, ColumnElement[bool]]] = {}

NO_AREA = AreaScope(())
CITY = AreaScope(None)


@dataclass(frozen=True)
class Actor:
    user_id: str
    username: str
    role: Role
    session_id: str
    scope: Scope = field(default=NO_AREA)
    must_change_password: bool = False
    display_name: str = field(default="", repr=False)  # `GET /auth/me` shows it; never in a log or a traceback

    # The area questions every domain asks, answered by the scope; the prefixes are an area scope's (a
    # partner scope has none: no area).

    @property
    def area_scope(self) -> AreaScope:
        return self.scope if isinstance(self.scope, AreaScope) else NO_AREA

    @property
    def area_prefixes(self) -> tuple[str, ...] | None:
        return self.area_scope.prefixes

    @property
    def city_wide(self) -> bool:
        return self.area_scope.city_wide

    @property
    def district_codes(self) -> list[str] | None:
        return self.area_scope.district_codes

    def area_filter(self, column: Any, district_column: Any = None) -> ColumnElement[bool]:
        return self.scope.area_filter(column, district_column)

    def sees_path(self, path: str) -> bool:
        return self.scope.sees_path(path)

    def with_area(self, prefixes: tuple[str, ...] | None) -> Actor:
        """The same caller looking at another area (the sync pull's held scope)."""
        return Actor(self.user_id, self.username, self.role, self.session_id, AreaScope(prefixes),
                     self.must_change_password)
