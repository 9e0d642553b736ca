"""Capped limit/offset paging, one shape for every list: {items, total, limit, offset}."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Integer, Select, bindparam, func, select
from sqlmodel import Session

from app.core.config import get_settings
from app.core.lean import Lean

T = TypeVar("T")
MAX_OFFSET = 1_000_000


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    limit: int
    offset: int


async def page_params(  # async: no I/O, so no hop to the thread pool
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (capped by PAGE_MAX)")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=min(limit, get_settings().page_max), offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Pageable:
    """A list statement made ready for paging: the page with its limit and offset bound, and the count (built
    when a page first needs it). A hot list keeps its `Pageable` (built once: docs/CONVENTIONS.md, hot paths);
    `paginate` makes one for any other statement. Its other values are bound too (`paginate`'s `values`)."""

    def __init__(self, stmt: Select[Any], *, lean: bool = False) -> None:
        self.stmt = stmt
        page = stmt.limit(bindparam("page_limit", type_=Integer)).offset(bindparam("page_offset", type_=Integer))
        # `lean`: a statement of plain columns, whose page runs on the driver (app.core.lean) and answers named tuples
        self.page: Any = Lean(page) if lean else page

    @cached_property
    def count(self) -> Select[Any]:
        return select(func.count()).select_from(self.stmt.order_by(None).subquery())


def paginate(session: Session, stmt: Select[Any] | Pageable, params: PageParams,
             values: dict[str, Any] | None = None) -> tuple[list[Any], int]:
    """The page, and the total: counted only when the page cannot tell it. A page that is not full and not empty,
    or empty at offset 0, ends the list, so the total is the offset plus its rows (a look-up by ID number, most
    searches and every short list skip the count, which joined and filtered the same rows again)."""
    pageable = stmt if isinstance(stmt, Pageable) else Pageable(stmt)
    page = {**(values or {}), "page_limit": params.limit, "page_offset": params.offset}
    if isinstance(pageable.page, Lean):  # a read's start: nothing ORM pending to flush
        rows = pageable.page.rows(session.connection(), page)
    else:
        rows = list(session.execute(pageable.page, page).scalars().all())
    if len(rows) < params.limit and (rows or params.offset == 0):
        return rows, params.offset + len(rows)
    return rows, session.execute(pageable.count, values).scalar_one()
