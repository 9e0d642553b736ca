"""The audit log for auditors: filtered, paged reading and chain verification.

Only the auditor role may call these (MLPS level 3 separation of duties: admins administer and are
audited, auditors read the log and administer nothing). Every read and every verification is itself
recorded. There is deliberately no purge endpoint: see `app.ledger.audit.purge` (an operator's CLI command).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from app.audit import service
from app.audit.schemas import AuditEventOut, ChainVerifyOut
from app.auth.deps import AuditorActor
from app.core.db import UnitOfWork
from app.core.deps import SessionDep
from app.core.errors import Unprocessable
from app.core.inputs import IsoDateTime
from app.core.pagination import Page, PageDep, paginate
from app.ledger import audit

router = APIRouter(prefix="/audit", tags=["audit"])


class TimeRangeInvalid(Unprocessable):
    code = "time_range_invalid"
    en = "'since' must not be later than 'until'."
    zh = "起始时间不能晚于截止时间。"


def _utc(value: datetime | None) -> datetime | None:
    """Times must name their zone: a bare 2026-05-01T08:00 means different instants to an auditor in
    Zhengzhou (UTC+8) and to the server (UTC), so it is refused rather than guessed."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise PydanticCustomError("rule.timezone_required",
                                  "Give the time zone, e.g. 2030-01-31T09:00:00+08:00 or 2030-01-31T01:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("rule.datetime_out_of_range", "The time is out of range") from None


AwareTime = Annotated[IsoDateTime | None, AfterValidator(_utc)]


async def event_filter(  # async: no I/O, so no hop to the thread pool
    actor_id: Annotated[str | None, Query(min_length=1, max_length=32, description="Who acted (user id)")] = None,
    action: Annotated[str | None, Query(
        min_length=1, max_length=61, pattern=r"^[A-Za-z0-9_.:-]*\*?$",
        description="Exact action, or a prefix ending in '*' (e.g. auth.*)")] = None,
    target_type: Annotated[str | None, Query(min_length=1, max_length=40, description="e.g. users")] = None,
    target_id: Annotated[str | None, Query(min_length=1, max_length=100, description="Record id")] = None,
    outcome: Annotated[str | None, Query(min_length=1, max_length=12, pattern=r"^[a-z_]+$",
                                         description="success, failure, denied or not_found")] = None,
    request_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] = None,
    since: Annotated[AwareTime, Query(description="From this time, inclusive (ISO 8601 with zone)")] = None,
    until: Annotated[AwareTime, Query(description="Before this time, exclusive (ISO 8601 with zone)")] = None,
    max_id: Annotated[int | None, Query(
        ge=1, le=2**63 - 1,
        description="Only rows up to this id: pass the first page's top id to page through a fixed set "
                    "while new events keep arriving")] = None,
    district_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$",
                                               description="Events whose target lies in this district")] = None,
) -> service.EventFilter:
    if since is not None and until is not None and since > until:
        raise TimeRangeInvalid()
    return service.EventFilter(actor_id=actor_id, action=action, target_type=target_type, target_id=target_id,
                               outcome=outcome, request_id=request_id, since=since, until=until, max_id=max_id,
                               district_code=district_code)


@router.get("/events", response_model=Page[AuditEventOut], summary="Read the audit log (auditors)")
def list_events(
    session: SessionDep,
    actor: AuditorActor,
    page: PageDep,
    flt: Annotated[service.EventFilter, Depends(event_filter)],
) -> Page[AuditEventOut]:
    """Newest first. This read is itself recorded (`audit.read`, with the names of the filters used)."""
    rows, total = paginate(session, service.events_query(flt), page)
    audit.record(session, "audit.read", target_type="audit_events",
                 detail={"filters": flt.used(), "total": total, "returned": len(rows), "offset": page.offset})
    return Page(items=[AuditEventOut.from_row(r) for r in rows], total=total, limit=page.limit,
                offset=page.offset)


@router.get("/verify", response_model=ChainVerifyOut, summary="Walk the hash chain (auditors)")
def verify(session: SessionDep, actor: AuditorActor) -> ChainVerifyOut:
    """Check every link and every row's content; name the first altered, unlinked or missing row.

    The walk reads the request's own snapshot (REPEATABLE READ on PostgreSQL), so a purge committed half-way
    through cannot show up as a missing row."""
    uow = UnitOfWork.of(session)
    assert uow is not None
    uow.snapshot()
    report = audit.verify_chain(session)
    audit.record(session, "audit.verify", target_type="audit_events",
                 outcome="success" if report.intact else "failure",
                 detail={"checked": report.checked, "first_broken_id": report.first_broken_id,
                         "last_id": report.last_id})
    return ChainVerifyOut(intact=report.intact, checked=report.checked, first_broken_id=report.first_broken_id,
                          reason=report.reason, last_id=report.last_id, last_hash=report.last_hash)
