"""Capped limit/offset paging, one shape for every list: {items, total, limit, offset}."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
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


def paginate(session: Session, stmt: Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """The page, and the total: counted only when the page cannot tell it. A page that is not full and not empty,
    or empty at offset 0, ends the list, so the total is the offset plus its rows (a look-up by ID number, most
    searches and every short list skip the count, which joined and filtered the same rows again)."""
    rows = list(session.execute(stmt.limit(params.limit).offset(params.offset)).scalars().all())
    if len(rows) < params.limit and (rows or params.offset == 0):
        return rows, params.offset + len(rows)
    total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    return rows, total
