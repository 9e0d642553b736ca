"""The free-service catalogue: read by every staff role, changed by admins (each change is a version)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.auth.deps import AdminActor, allow
from app.catalog import service
from app.catalog.models import CatalogVersion, ServiceItem
from app.catalog.schemas import (
    CatalogOut,
    ItemChangeOut,
    ItemCreate,
    ItemOut,
    ItemRetire,
    ItemUpdate,
    SnapshotItem,
    VersionOut,
    VersionSummary,
)
from app.core.actor import Actor, Role
from app.core.deps import SessionDep
from app.core.inputs import IsoDate
from app.core.pagination import Page, PageDep, paginate

router = APIRouter(prefix="/catalog", tags=["catalog"])

# Every staff role reads the catalogue (phones need it offline); partner roles never do.
ReaderActor = Annotated[Actor, allow(Role.worker, Role.supervisor, Role.admin, Role.auditor)]
ItemId = Annotated[str, Path(max_length=32)]


def item_out(item: ServiceItem) -> ItemOut:
    return ItemOut.model_validate({**item.model_dump(), "retired": item.retired_in_version is not None})


def change_out(item: ServiceItem, row: CatalogVersion) -> ItemChangeOut:
    return ItemChangeOut(catalog_version=row.version, item=item_out(item))


@router.get("", response_model=CatalogOut, summary="The current catalogue (retired items marked)")
def get_catalog(
    session: SessionDep,
    actor: ReaderActor,
    on: Annotated[IsoDate | None, Query(description="Only the items in effect on this (local) date")] = None,
) -> CatalogOut:
    return CatalogOut(version=service.current_version(session),
                      items=[item_out(i) for i in service.list_items(session, on)])


@router.get("/versions", response_model=Page[VersionSummary], summary="Published catalogue versions, newest first")
def list_versions(session: SessionDep, actor: ReaderActor, page: PageDep) -> Page[VersionSummary]:
    rows, total = paginate(session, service.versions_query(), page)
    items = [VersionSummary(version=r.version, note=r.note, published_by=r.published_by,
                            published_at=r.published_at, item_count=len(service.snapshot_items(r)))
             for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/versions/{version}", response_model=VersionOut, summary="One catalogue version's snapshot")
def get_version(version: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep,
                actor: ReaderActor) -> VersionOut:
    row = service.get_version(session, version)
    return VersionOut(version=row.version, note=row.note, published_by=row.published_by,
                      published_at=row.published_at,
                      items=[SnapshotItem.model_validate(e) for e in service.snapshot_items(row)])


@router.post("/items", response_model=ItemChangeOut, status_code=201, summary="Add a service item (new version)",
             responses={409: {"description": "service_item_code_taken"}})
def add_item(body: ItemCreate, session: SessionDep, actor: AdminActor) -> ItemChangeOut:
    item, row = service.add_item(session, actor, body)
    return change_out(item, row)


@router.patch("/items/{item_id}", response_model=ItemChangeOut, summary="Edit a service item (new version)",
              responses={409: {"description": "stale_version or service_item_retired"}})
def update_item(item_id: ItemId, body: ItemUpdate, session: SessionDep, actor: AdminActor) -> ItemChangeOut:
    item, row = service.update_item(session, actor, item_id, body)
    return change_out(item, row)


@router.post("/items/{item_id}/retire", response_model=ItemChangeOut,
             summary="Retire a service item from a date on (new version)",
             responses={409: {"description": "stale_version or service_item_retired"}})
def retire_item(item_id: ItemId, body: ItemRetire, session: SessionDep, actor: AdminActor) -> ItemChangeOut:
    item, row = service.retire_item(session, actor, item_id, body)
    return change_out(item, row)
