"""Sync over HTTP: WatermelonDB's pull and push, the devices and conflicts supervisors look after (docs/sync.md)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic.json_schema import JsonDict
from sqlmodel import Session

from app.auth.deps import Hop, StaffActor, allow, hop
from app.core.actor import Actor, Role
from app.core.config import get_settings
from app.core.db import UnitOfWork
from app.core.deps import SessionDep
from app.core.errors import AppError, Unprocessable, language
from app.core.gzipping import gzip_bytes
from app.core.inputs import JsonTooDeep, ascii_int, loads_json
from app.core.middleware import BodyTooLarge
from app.core.pagination import Page, PageDep, paginate
from app.ledger import changes as change_log
from app.sync import conflicts, devices
from app.sync.conflicts import PushContext
from app.sync.devices import PullRecord
from app.sync.models import SyncConflict, SyncDevice
from app.sync.pull import (
    SUPPORTED_SCHEMA_VERSIONS,
    CursorAhead,
    MigrationInvalid,
    SchemaVersionUnsupported,
    migration_tables,
    pull,
    read_cursor,
    reads_more,
)
from app.sync.push.errors import PushInvalid
from app.sync.push.schemas import parse
from app.sync.push.service import Pusher
from app.sync.schemas import ConflictOut, DeviceOut, PullOut, PushOut, ResolveIn

# Optional to FastAPI, so that a missing or malformed id is 422 `device_id_required` (app.sync.devices); required
# in the published contract, with its pattern (app/core/openapi.py reads `x-required`).
DeviceIdHeader = Annotated[str | None, Header(max_length=200, json_schema_extra={
    "pattern": devices.DEVICE_ID.pattern, "x-required": True, "description": "The phone's installation id"})]

router = APIRouter(prefix="/sync", tags=["sync"])

SyncActor = Annotated[Actor, allow(Role.worker, Role.supervisor)]
SyncHop = Annotated[Hop, hop(Role.worker, Role.supervisor)]
DeviceAdmin = Annotated[Actor, allow(Role.supervisor, Role.admin)]
ConflictReader = Annotated[Actor, allow(Role.supervisor, Role.admin)]
ConflictResolver = Annotated[Actor, allow(Role.supervisor)]
NULLS = {"", "null", "undefined"}
# Level 1: a first pull of a 5,000-resident community compresses ~6x in half the time level 5 takes (the
# download is ~17 % larger); bench/sync.py measures both.
GZIP_LEVEL = 1


class CursorInvalid(Unprocessable):
    code = "cursor_invalid"
    en = "last_pulled_at must be null or the integer timestamp of your last pull."
    zh = "last_pulled_at 必须为空或上次同步返回的整数 timestamp。"


# The cursors as `_cursor` and `_push_cursor` read them, for the published schema (ASCII digits, at most 18).
PULL_CURSOR: JsonDict = {"pattern": "^(?:[0-9]+|null|undefined)?$", "maxLength": 18}
PUSH_CURSOR: JsonDict = {"pattern": "^0*[1-9][0-9]*$", "maxLength": 18, "x-required": True}


def _cursor(raw: str | None) -> int:
    if raw is None or raw in NULLS:
        return 0
    value = ascii_int(raw, max_digits=18)  # 0-9 only: not "²", "١٢" or "１２"
    if value is None:
        raise CursorInvalid()
    return value


def _migration(raw: str | None) -> set[str]:
    if raw is None or raw in NULLS:
        return set()
    try:
        return migration_tables(loads_json(raw))
    except (ValueError, JsonTooDeep):
        raise MigrationInvalid() from None


@router.get(
    "/pull", response_model=PullOut, summary="Pull changes since last_pulled_at (WatermelonDB protocol)",
    responses={403: {"description": "Not a worker or supervisor, or device_revoked"},
               422: {"description": "device_id_required, schema_version_unsupported, cursor_ahead, cursor_invalid, "
                                    "migration_invalid"}},
)
async def pull_changes(
    request: Request,
    hop: SyncHop,
    schema_version: Annotated[int, Query(ge=0, le=1_000_000, description="The app's local schema version",
                                         json_schema_extra={"enum": sorted(SUPPORTED_SCHEMA_VERSIONS)})],
    last_pulled_at: Annotated[str | None, Query(max_length=20, description="The last pull's timestamp, or null",
                                                json_schema_extra=PULL_CURSOR)]
    = None,
    migration: Annotated[str | None, Query(max_length=20_000, description="WatermelonDB migration (JSON) or null")]
    = None,
    x_device_id: DeviceIdHeader = None,
    x_app_version: Annotated[str | None, Header(max_length=40)] = None,
    x_device_time: Annotated[int | None, Header(ge=0, le=10**14, description="Device clock, epoch ms")] = None,
) -> Response:
    device_id = devices.check_device_id(x_device_id)
    if schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaVersionUnsupported({"supported": sorted(SUPPORTED_SCHEMA_VERSIONS)})
    after = _cursor(last_pulled_at)
    request_ = PullRequest(device_id, after, _migration(migration) if after else set(), schema_version,
                           x_app_version, x_device_time, "gzip" in request.headers.get("accept-encoding", "").lower())
    return await hop.run(lambda session, actor: _pull(session, actor, request_))


@dataclass(frozen=True)
class PullRequest:
    device_id: str
    after: int
    full_tables: set[str]
    schema_version: int
    app_version: str | None
    device_time: int | None
    gzip: bool


def _pull(session: Session, actor: Actor, req: PullRequest) -> Response:
    # The device and the cursor are one statement. A pull that reads more (a cursor behind the latest, a first
    # pull, a new scope, a migration) reads them again in one snapshot (REPEATABLE READ READ ONLY on PostgreSQL,
    # a read transaction on SQLite) and every table in the same, on the request's one connection. The usual
    # quiet poll needs no snapshot: neither a BEGIN nor a ROLLBACK (on PostgreSQL, two round trips fewer).
    uow = UnitOfWork.of(session)
    assert uow is not None
    state, cursor = devices.pull_state(session, actor, req.device_id, req.after)
    if req.after > cursor:
        raise CursorAhead()
    if reads_more(actor, last_pulled_at=req.after, cursor=cursor, held_scope=state.held_scope,
                  migration=req.full_tables):
        uow.snapshot()
        state, cursor = devices.pull_state(session, actor, req.device_id, req.after)
    # Nothing was stamped after a cursor that is the latest: the usual quiet poll reads no more.
    rejected = devices.pending_rejections(session, state.row_id, req.after, cursor) \
        if state.row_id is not None and req.after < cursor else []
    result = pull(session, actor, last_pulled_at=req.after, cursor=cursor, held_scope=state.held_scope,
                  migration=req.full_tables, rejected=rejected, schema_version=req.schema_version)
    record = PullRecord(req.device_id, actor, req.after, cursor, state.held_scope, req.app_version,
                        req.schema_version, req.device_time, result.counts())
    if not devices.quiet(state, record):
        # Registration and bookkeeping are writes: after the snapshot has ended, on the same connection.
        uow.side_write(lambda side: devices.record_pull(side, record))
    return _json(req.gzip, result.body())


def _json(gzip: bool, body: dict[str, Any]) -> Response:
    """JSON, gzip-compressed when the client accepts it (this route only: token responses never are)."""
    content = orjson.dumps(body)
    headers = {"Vary": "Accept-Encoding", "Cache-Control": "no-store"}
    if gzip:
        content = gzip_bytes(content, GZIP_LEVEL)
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


# --- push ------------------------------------------------------------------------------------------------


class EncodingUnsupported(AppError):
    status = 415
    code = "content_encoding_unsupported"
    en = "The request body must be plain or gzip-compressed JSON."
    zh = "请求体必须是未压缩或 gzip 压缩的 JSON。"


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise PushInvalid() from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge()
    if not inflater.eof:
        raise PushInvalid()
    return out


@dataclass(frozen=True)
class PushPayload:
    data: bytes
    gzip: bool

    def decode(self) -> Any:
        """The pushed JSON, inflated up to SYNC_PUSH_MAX_BYTES when gzip-compressed (CPU work: run it in the
        request's thread, never in the event loop)."""
        data = _inflate(self.data, get_settings().sync_push_max_bytes) if self.gzip else self.data
        try:  # orjson: strict JSON (no NaN/Infinity, no lone surrogates, valid UTF-8), and fast; depth checked first
            return loads_json(data)
        except ValueError:
            raise PushInvalid() from None


async def push_payload(request: Request) -> PushPayload:
    """The pushed body as it came: plain, or gzip-compressed."""
    data = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise EncodingUnsupported()
    return PushPayload(data, encoding == "gzip")


PUSH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "WatermelonDB's `changes` ({table: {created, updated, deleted}}), alone or as "
                                     "{\"changes\": …}; `Content-Encoding: gzip` accepted",
    "additionalProperties": True}}}}}


def _push_cursor(raw: str | None) -> int:
    after = _cursor(raw)
    if after == 0:  # a push always follows a pull
        raise CursorInvalid()
    return after


@router.post(
    "/push", response_model=PushOut, summary="Push local changes (WatermelonDB protocol); rejected records listed",
    openapi_extra=PUSH_BODY,
    responses={403: {"description": "Not a worker or supervisor, or device_revoked"},
               413: {"description": "body_too_large, push_too_large (details: max_records, max_itemised, records, "
                                    "itemised: split the push, docs/sync.md)"},
               415: {"description": "content_encoding_unsupported"},
               422: {"description": "device_id_required, cursor_invalid, cursor_ahead, push_invalid, "
                                    "json_too_deep, sync_table_unknown"}},
)
async def push_changes(
    request: Request,
    hop: SyncHop,
    payload: Annotated[PushPayload, Depends(push_payload)],
    last_pulled_at: Annotated[str | None, Query(max_length=20, description="The timestamp of the pull before",
                                                json_schema_extra=PUSH_CURSOR)]
    = None,
    x_device_id: DeviceIdHeader = None,
    x_app_version: Annotated[str | None, Header(max_length=40)] = None,
    x_device_time: Annotated[int | None, Header(ge=0, le=10**14, description="Device clock, epoch ms")] = None,
) -> Response:
    device_id = devices.check_device_id(x_device_id)
    after = _push_cursor(last_pulled_at)
    lang = language(request)

    def work(session: Session, actor: Actor) -> PushOut:
        parsed = parse(payload.decode(), get_settings().sync_push_max_records)
        state = devices.open_device(session, actor, device_id, after)
        if after > read_cursor(session):
            raise CursorAhead()
        assert state.row_id is not None  # open_device registered it
        ctx = PushContext(state.row_id, actor.user_id, conflicts.conflict_base(session, state.row_id, after))
        change_log.set_writer(session, state.row_id)
        outcome = Pusher(session, actor, ctx, lang).run(parsed)
        devices.record_push(session, state.row_id, x_app_version, x_device_time, outcome.counts())
        return PushOut.model_validate(outcome.body())

    return await hop.run(work, long=True)  # up to 5,000 records: not on the short lane (app.core.threads)


# --- conflicts -------------------------------------------------------------------------------------------


def _conflict_out(row: SyncConflict, names: dict[str, str]) -> ConflictOut:
    return ConflictOut.model_validate({
        **row.model_dump(), "fields": json.loads(row.fields), "server_values": json.loads(row.server_values),
        "client_values": json.loads(row.client_values), "username": names.get(row.user_id, ""),
    })


@router.get("/conflicts", response_model=Page[ConflictOut],
            summary="Fields changed on the server and on a phone: the overwritten server values (supervisors)")
def list_conflicts(
    session: SessionDep, actor: ConflictReader, page: PageDep,
    resolved: Annotated[bool, Query(description="false: open conflicts; true: resolved ones")] = False,
    table: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[ConflictOut]:
    rows, total = paginate(session, conflicts.conflicts_query(actor, resolved=resolved, table=table), page)
    conflicts.audit_read(session, [r.id for r in rows])
    names = devices.usernames(session, {r.user_id for r in rows})
    return Page(items=[_conflict_out(r, names) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/conflicts/{conflict_id}/resolve", response_model=ConflictOut,
             summary="Mark a sync conflict resolved (supervisors of its area)",
             responses={409: {"description": "conflict_already_resolved"}})
def resolve_conflict(conflict_id: str, body: ResolveIn, session: SessionDep, actor: ConflictResolver) -> ConflictOut:
    row = conflicts.resolve(session, actor, conflict_id, body.outcome)
    return _conflict_out(row, devices.usernames(session, {row.user_id}))
