"""Access review for auditors: the sensitive reads with their unusual reasons, per reader, and as CSV or XLSX.

Every review and every export is itself recorded in the chain (names of the filters used and counts).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.audit.access import service
from app.audit.access.schemas import ExportFormat, ReaderOut, ReadersOut, ReadOut, Unusual
from app.audit.deps import Period, period
from app.auth.deps import AuditorActor
from app.core.deps import SessionDep
from app.core.pagination import Page, PageDep
from app.core.tabular import sheet_text
from app.ledger import audit

router = APIRouter(prefix="/audit/access", tags=["audit"])

PeriodDep = Annotated[Period, Depends(period)]
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
    return ReadersOut(start=when.start, end=when.end, readers=[ReaderOut(**s) for s in summary],
                      disclosures_per_partner=service.disclosures_per_partner(session, when))


def _cells(r: service.Read) -> list[str]:
    values = [str(r.id), r.at.isoformat(), r.actor_id, r.username, r.actor_role, r.action, r.target_type,
              r.target_id, r.fields, r.purpose, r.area_path, r.district_code, ";".join(r.unusual)]
    # Never a formula: a cell a spreadsheet would evaluate is written as text.
    values = [sheet_text(v) for v in values]  # an XLSX cell holds no control characters
    return ["'" + v if v and v[0] in "=+-@\t\r" else (v or "") for v in values]


def _csv(rows: list[service.Read]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # Excel opens UTF-8 with a byte-order mark correctly
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(_cells(r))
        if buffer.tell() > CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx(rows: list[service.Read]) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("access")
    sheet.append(list(COLUMNS))
    for r in rows:
        sheet.append(_cells(r))
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
    body = _csv(found) if format is ExportFormat.csv else _xlsx(found)
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
