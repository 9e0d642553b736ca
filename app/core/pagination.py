"""Capped limit/offset paging, one shape for every list: {items, total, limit, offset}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Integer, Select, bindparam, func, select
from sqlmodel import Session

from app.core.config import get_settings

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


@dataclass(frozen=True)
class Pageable:
    """A list statement made ready for paging once, for a hot list built once (docs/CONVENTIONS.md, hot paths):
    the page with its limit and offset bound, and the count. Its other values are bound too (`paginate`'s
    `values`)."""

    page: Select[Any]
    count: Select[Any]

    @classmethod
    def of(cls, stmt: Select[Any]) -> Pageable:
        return cls(stmt.limit(bindparam("page_limit", type_=Integer)).offset(bindparam("page_offset", type_=Integer)),
                   select(func.count()).select_from(stmt.order_by(None).subquery()))


def paginate(session: Session, stmt: Select[Any] | Pageable, params: PageParams,
             values: dict[str, Any] | None = None) -> tuple[list[Any], int]:
    """The page, and the total: counted only when the page cannot tell it. A page that is not full and not empty,
    or empty at offset 0, ends the list, so the total is the offset plus its rows (a look-up by ID number, most
    searches and every short list skip the count, which joined and filtered the same rows again)."""
    pageable = stmt if isinstance(stmt, Pageable) else None
    if pageable is not None:
        page = {**(values or {}), "page_limit": params.limit, "page_offset": params.offset}
        rows = list(session.execute(pageable.page, page).scalars().all())
    else:
        assert isinstance(stmt, Select)
        rows = list(session.execute(stmt.limit(params.limit).offset(params.offset), values).scalars().all())
    if len(rows) < params.limit and (rows or params.offset == 0):
        return rows, params.offset + len(rows)
    count = pageable.count if pageable is not None else select(func.count()).select_from(
        stmt.order_by(None).subquery())  # type: ignore[union-attr]
    return rows, session.execute(count, values).scalar_one()
