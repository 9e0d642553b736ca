"""Access review for auditors: the sensitive reads with their unusual reasons, per reader, and as CSV or XLSX.

Every review and every export is itself recorded in the chain (names of the filters used and counts).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.audit.access import service
from app.audit.access.schemas import ExportFormat, PartnerDisclosuresOut, ReaderOut, ReadersOut, ReadOut, Unusual
from app.audit.deps import Period, period
from app.auth.deps import AuditorActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep
from app.core.tabular import sheet_text
from app.ledger import audit

router = APIRouter(prefix="/audit/access", tags=["audit"])

PeriodDep = Annotated[Period, Depends(period)]
PARTNER_COLUMNS = ("partner_kind", "partner_id", "partner_name", "disclosures", "residents", "field_groups",
                   "legal_bases", "first_at", "last_at")
COLUMNS = ("id", "at", "actor_id", "actor_username", "actor_role", "action", "target_type", "target_id", "fields",
           "purpose", "area_path", "district_code", "unusual")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK_BYTES = 64 * 1024


async def filters(  # async: no I/O
    actor_id: Annotated[str | None, Query(min_length=1, max_length=32, description="The reader (user id)")] = None,
    district_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="Records in this district")]
    = None,
    unusual: Annotated[Unusual | None, Query(description="Only unusual reads (any, or one reason)")] = None,
) -> service.Filters:
    return service.Filters(actor_id=actor_id, district_code=district_code, unusual=unusual.value if unusual else None)


FiltersDep = Annotated[service.Filters, Depends(filters)]


def _out(r: service.Read) -> ReadOut:
    return ReadOut(id=r.id, at=r.at, actor_id=r.actor_id, actor_username=r.username, actor_role=r.actor_role,
                   action=r.action, target_type=r.target_type, target_id=r.target_id,
                   fields=r.fields.split(",") if r.fields else None, purpose=r.purpose, area_path=r.area_path,
                   district_code=r.district_code, unusual=r.unusual)


@router.get("", response_model=Page[ReadOut], summary="Who read which sensitive records, unusual reads marked")
def reads(session: SessionDep, actor: AuditorActor, page: PageDep, when: PeriodDep, flt: FiltersDep) -> Page[ReadOut]:
    """Newest first. Recorded as `audit.access_review`."""
    found = service.review(session, when, flt)
    found.sort(key=lambda r: r.id, reverse=True)
    chosen = found[page.offset:page.offset + page.limit]
    audit.record(session, "audit.access_review", target_type="audit_events",
                 detail={"filters": flt.used(), "total": len(found), "returned": len(chosen)})
    return Page(items=[_out(r) for r in chosen], total=len(found), limit=page.limit, offset=page.offset)


@router.get("/readers", response_model=ReadersOut, response_model_by_alias=True,
            summary="Per reader: reads, records, unusual reads and why (auditors)")
def readers(session: SessionDep, actor: AuditorActor, when: PeriodDep, flt: FiltersDep) -> ReadersOut:
    found = service.review(session, when, flt)
    summary = service.readers_summary(found)
    audit.record(session, "audit.access_review", target_type="audit_events",
                 detail={"filters": flt.used(), "view": "readers", "total": len(found), "readers": len(summary)})
    partners = service.disclosures_per_partner(session, when, flt)
    return ReadersOut(start=when.start, end=when.end, readers=[ReaderOut(**s) for s in summary],
                      disclosures_per_partner=[PartnerDisclosuresOut(**p) for p in partners])


def _cells(r: service.Read) -> list[str]:
    return _safe([str(r.id), r.at.isoformat(), r.actor_id, r.username, r.actor_role, r.action, r.target_type,
                  r.target_id, r.fields, r.purpose, r.area_path, r.district_code, ";".join(r.unusual)])


def _partner_cells(p: dict[str, Any]) -> list[str]:
    return _safe([p["partner_kind"], p["partner_id"], p["partner_name"], str(p["disclosures"]), str(p["residents"]),
                  ";".join(p["field_groups"]), ";".join(p["legal_bases"]), p["first_at"].isoformat(),
                  p["last_at"].isoformat()])


def _safe(values: list[str | None]) -> list[str]:
    # Never a formula: a cell a spreadsheet would evaluate is written as text.
    texts = [sheet_text(v) for v in values]  # an XLSX cell holds no control characters
    return ["'" + v if v and v[0] in "=+-@\t\r" else (v or "") for v in texts]


def _csv(columns: tuple[str, ...], rows: Iterable[list[str]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # Excel opens UTF-8 with a byte-order mark correctly
    writer.writerow(columns)
    for cells in rows:
        writer.writerow(cells)
        if buffer.tell() > CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx(title: str, columns: tuple[str, ...], rows: Iterable[list[str]]) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(list(columns))
    for cells in rows:
        sheet.append(cells)
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk


@router.get("/export", summary="The reads as CSV or XLSX (auditors; recorded)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}},
                             "description": "One row per read, oldest first"}})
def export(session: SessionDep, actor: AuditorActor, when: PeriodDep, flt: FiltersDep,
           format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.csv) -> StreamingResponse:
    """Computed in the request (its audit record commits with it); the file is streamed out afterwards."""
    found = service.review(session, when, flt)
    found.sort(key=lambda r: r.id)
    audit.record(session, "audit.access_export", target_type="audit_events",
                 detail={"filters": flt.used(), "format": format.value, "rows": len(found)})
    name = f"access-{when.start.isoformat()}-{when.end.isoformat()}.{format.value}"
    media = "text/csv; charset=utf-8" if format is ExportFormat.csv else XLSX_TYPE
    cells = (_cells(r) for r in found)
    body = _csv(COLUMNS, cells) if format is ExportFormat.csv else _xlsx("access", COLUMNS, cells)
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/disclosures/export", summary="Disclosures per partner as CSV or XLSX (auditors; recorded)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}},
                             "description": "One row per partner, most disclosures first"}})
def export_disclosures(session: SessionDep, actor: AuditorActor, when: PeriodDep, flt: FiltersDep,
                       format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.csv,
                       ) -> StreamingResponse:
    partners = service.disclosures_per_partner(session, when, flt)
    audit.record(session, "audit.access_export", target_type="disclosures",
                 detail={"filters": flt.used(), "format": format.value, "rows": len(partners)})
    name = f"disclosures-{when.start.isoformat()}-{when.end.isoformat()}.{format.value}"
    media = "text/csv; charset=utf-8" if format is ExportFormat.csv else XLSX_TYPE
    cells = [_partner_cells(p) for p in partners]
    body = _csv(PARTNER_COLUMNS, cells) if format is ExportFormat.csv else _xlsx("disclosures", PARTNER_COLUMNS, cells)
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
