"""Sync over HTTP: WatermelonDB's pull, and the devices supervisors look after (docs/sync.md)."""

from __future__ import annotations

import gzip
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sqlmodel import Session

from app.auth.models import Role
from app.core.db import begin, get_engine, unit_of_work
from app.core.deps import Actor, SessionDep, StaffActor, allow
from app.core.errors import Unprocessable
from app.core.pagination import Page, PageDep, paginate
from app.sync import devices
from app.sync.devices import PullRecord
from app.sync.models import SyncDevice
from app.sync.pull import (
    SUPPORTED_SCHEMA_VERSIONS,
    CursorAhead,
    MigrationInvalid,
    SchemaVersionUnsupported,
    migration_tables,
    pull,
    read_cursor,
)
from app.sync.schemas import DeviceOut, PullOut

router = APIRouter(prefix="/sync", tags=["sync"])

SyncActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
DeviceAdmin = Annotated[Actor, allow(Role.supervisor, Role.admin)]
NULLS = {"", "null", "undefined"}
GZIP_LEVEL = 5


class CursorInvalid(Unprocessable):
    code = "cursor_invalid"
    en = "last_pulled_at must be null or the integer timestamp of your last pull."
    zh = "last_pulled_at 必须为空或上次同步返回的整数 timestamp。"


def _cursor(raw: str | None) -> int:
    if raw is None or raw in NULLS:
        return 0
    if not raw.isdigit() or len(raw) > 18:
        raise CursorInvalid()
    return int(raw)


def _migration(raw: str | None) -> set[str]:
    if raw is None or raw in NULLS:
        return set()
    try:
        return migration_tables(json.loads(raw))
    except ValueError:
        raise MigrationInvalid() from None


@router.get(
    "/pull", response_model=PullOut, summary="Pull changes since last_pulled_at (WatermelonDB protocol)",
    responses={403: {"description": "Not a worker or supervisor, or device_revoked"},
               422: {"description": "device_id_required, schema_version_unsupported, cursor_ahead, cursor_invalid, "
                                    "migration_invalid"}},
)
def pull_changes(
    request: Request,
    session: SessionDep,
    actor: SyncActor,
    schema_version: Annotated[int, Query(ge=0, le=1_000_000, description="The app's local schema version")],
    last_pulled_at: Annotated[str | None, Query(max_length=20, description="The last pull's timestamp, or null")]
    = None,
    migration: Annotated[str | None, Query(max_length=20_000, description="WatermelonDB migration (JSON) or null")]
    = None,
    x_device_id: Annotated[str | None, Header(max_length=200)] = None,
    x_app_version: Annotated[str | None, Header(max_length=40)] = None,
    x_device_time: Annotated[int | None, Header(ge=0, le=10**14, description="Device clock, epoch ms")] = None,
) -> Response:
    device_id = devices.check_device_id(x_device_id)
    if schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaVersionUnsupported({"supported": sorted(SUPPORTED_SCHEMA_VERSIONS)})
    after = _cursor(last_pulled_at)
    full_tables = _migration(migration) if after else set()
    with unit_of_work() as side:
        state = devices.open_device(side, actor, device_id, after)
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        # One snapshot for the counter and every table (the request's own transaction has already run
        # queries, so its isolation level can no longer be raised).
        engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with Session(engine) as snapshot:
        begin(snapshot, write=False)
        try:
            cursor = read_cursor(snapshot)
            if after > cursor:
                raise CursorAhead()
            rejected = devices.pending_rejections(snapshot, state.row_id, after, cursor)
            result = pull(snapshot, actor, last_pulled_at=after, cursor=cursor, held_scope=state.held_scope,
                          migration=full_tables, rejected=rejected)
        finally:
            snapshot.rollback()
    with unit_of_work() as side:
        devices.record_pull(side, PullRecord(
            state.row_id, actor, after, cursor, state.held_scope, x_app_version, schema_version, x_device_time,
            result.counts(),
        ))
    return _json(request, result.body())


def _json(request: Request, body: dict[str, Any]) -> Response:
    """JSON, gzip-compressed when the client accepts it (this route only: token responses never are)."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Vary": "Accept-Encoding", "Cache-Control": "no-store"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        content = gzip.compress(content, compresslevel=GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(content, media_type="application/json", headers=headers)


def _out(row: SyncDevice, names: dict[str, str]) -> DeviceOut:
    return DeviceOut.model_validate({**row.model_dump(), "username": names.get(row.user_id, "")})


@router.get("/devices", response_model=Page[DeviceOut], summary="Sync devices: your own, or your area's users'")
def list_devices(session: SessionDep, actor: StaffActor, page: PageDep) -> Page[DeviceOut]:
    rows, total = paginate(session, devices.devices_query(actor), page)
    names = devices.usernames(session, {r.user_id for r in rows})
    return Page(items=[_out(r, names) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/devices/{device_row_id}/revoke", response_model=DeviceOut,
             summary="Revoke a device: its next sync is refused (device_revoked)")
def revoke_device(device_row_id: str, session: SessionDep, actor: DeviceAdmin) -> DeviceOut:
    row = devices.revoke(session, actor, device_row_id)
    return _out(row, devices.usernames(session, {row.user_id}))
