"""Places API: divisions (read by staff within scope, written by admins) and dwellings (staff).

Access: workers, supervisors and admins read divisions and dwellings inside their scope (workers their
assigned communities or grids, supervisors their subtree, admins everything); auditors and partners get 403
everywhere here. Division writes and the import are admin-only; dwelling writes are open to workers,
supervisors and admins within scope. Out of scope is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from app.auth.deps import AdminActor, StaffActor
from app.core.deps import SessionDep
from app.core.errors import language
from app.core.pagination import Page, PageDep
from app.places import dwellings, importer, service
from app.places.models import Division, DwellingKind, Level
from app.places.schemas import (
    DivisionCreate,
    DivisionDetail,
    DivisionMove,
    DivisionOut,
    DivisionUpdate,
    DwellingCreate,
    DwellingMove,
    DwellingOut,
    DwellingUpdate,
    ImportReport,
)

router = APIRouter(tags=["places"])

IdQuery = Annotated[str | None, Query(max_length=32)]
TextQuery = Annotated[str | None, Query(max_length=100, description="Contains (case-insensitive)")]


def _detail(session: SessionDep, division: Division) -> DivisionDetail:
    return DivisionDetail.model_validate(
        {**DivisionOut.model_validate(division).model_dump(),
         "ancestors": service.refs(service.ancestors(session, division))}
    )


# --- divisions ------------------------------------------------------------------------------------------

@router.get("/divisions", response_model=Page[DivisionOut], summary="List divisions in my scope")
def list_divisions(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    parent_id: IdQuery = None,
    level: Level | None = None,
    q: TextQuery = None,
    active: bool | None = None,
) -> Page[DivisionOut]:
    rows, total = service.list_divisions(session, actor, page, parent_id=parent_id, level=level, q=q,
                                         active=active)
    return Page(items=[DivisionOut.model_validate(d) for d in rows], total=total, limit=page.limit,
                offset=page.offset)


@router.post("/divisions/import", response_model=ImportReport, summary="Import a division table (CSV or XLSX)",
             responses={413: {"description": "import_too_large"}, 415: {"description": "import_unsupported_type"},
                        422: {"description": "import_invalid (details lists every row's errors) and others"}})
def import_divisions(
    request: Request,
    session: SessionDep,
    actor: AdminActor,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or .xlsx; see the import rules")],
    dry_run: Annotated[bool, Query(description="Check everything, write nothing")] = False,
    vintage: Annotated[int | None, Query(ge=1980, le=2200, description="Year for rows without one")] = None,
) -> ImportReport:
    """The request body is capped first by MAX_BODY_BYTES for every route (413 `body_too_large`); the file
    itself by the importer's own ceiling (413 `import_too_large`)."""
    data = file.file.read(importer.IMPORT_MAX_BYTES + 1)
    return importer.import_divisions(session, data, dry_run=dry_run, default_vintage=vintage,
                                     lang=language(request))


@router.get("/divisions/{division_id}", response_model=DivisionDetail, summary="One division, with breadcrumb")
def get_division(division_id: str, session: SessionDep, actor: StaffActor) -> DivisionDetail:
    return _detail(session, service.get_division(session, actor, division_id))


@router.post("/divisions", response_model=DivisionDetail, status_code=201, summary="Create a division")
def create_division(body: DivisionCreate, session: SessionDep, actor: AdminActor) -> DivisionDetail:
    return _detail(session, service.create_division(session, body))


@router.patch("/divisions/{division_id}", response_model=DivisionDetail,
              summary="Edit name, code, type, vintage or status (a new code rewrites the subtree)")
def update_division(division_id: str, body: DivisionUpdate, session: SessionDep,
                    actor: AdminActor) -> DivisionDetail:
    division = service.get_division(session, actor, division_id)
    return _detail(session, service.update_division(session, division, body))


@router.post("/divisions/{division_id}/move", response_model=DivisionDetail,
             summary="Move under another parent (optionally with a new code)")
def move_division(division_id: str, body: DivisionMove, session: SessionDep, actor: AdminActor) -> DivisionDetail:
    division = service.get_division(session, actor, division_id)
    return _detail(session, service.move_division(session, division, body))


# --- dwellings ------------------------------------------------------------------------------------------

@router.get("/dwellings", response_model=Page[DwellingOut], summary="List dwellings in my scope")
def list_dwellings(
    session: SessionDep,
    actor: StaffActor,
    page: PageDep,
    community_id: IdQuery = None,
    grid_id: IdQuery = None,
    kind: DwellingKind | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Address contains")] = None,
    active: bool | None = None,
) -> Page[DwellingOut]:
    rows, total = dwellings.list_dwellings(session, actor, page, community_id=community_id, grid_id=grid_id,
                                         kind=kind, q=q, active=active)
    return Page(items=[DwellingOut.model_validate(d) for d in rows], total=total, limit=page.limit,
                offset=page.offset)


@router.get("/dwellings/{dwelling_id}", response_model=DwellingOut, summary="One dwelling")
def get_dwelling(dwelling_id: str, session: SessionDep, actor: StaffActor) -> DwellingOut:
    return DwellingOut.model_validate(dwellings.get_dwelling(session, actor, dwelling_id))


@router.post("/dwellings", response_model=DwellingOut, status_code=201, summary="Register a dwelling")
def create_dwelling(body: DwellingCreate, session: SessionDep, actor: StaffActor) -> DwellingOut:
    return DwellingOut.model_validate(dwellings.create_dwelling(session, actor, body))


@router.patch("/dwellings/{dwelling_id}", response_model=DwellingOut,
              summary="Edit address, kind, position or status")
def update_dwelling(dwelling_id: str, body: DwellingUpdate, session: SessionDep, actor: StaffActor) -> DwellingOut:
    dwelling = dwellings.get_dwelling(session, actor, dwelling_id)
    return DwellingOut.model_validate(dwellings.update_dwelling(session, actor, dwelling, body))


@router.post("/dwellings/{dwelling_id}/move", response_model=DwellingOut,
             summary="Move to another community or grid (both must be in my scope)")
def move_dwelling(dwelling_id: str, body: DwellingMove, session: SessionDep, actor: StaffActor) -> DwellingOut:
    dwelling = dwellings.get_dwelling(session, actor, dwelling_id)
    return DwellingOut.model_validate(dwellings.move_dwelling(session, actor, dwelling, body))
