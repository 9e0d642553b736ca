"""Pure ASGI middleware: request context (id, client address), header hygiene, NUL bytes in the URL,
the request body limit (MAX_BODY_BYTES) and the nesting depth of JSON bodies (app.core.inputs).

In production an unexpected exception is answered here (500 `internal_error`, with the request id) and
logged with its types and stack frames but without its messages, which can quote personal data (a
database error repeats the refused row's values); it is not re-raised, so the server does not log it
again in full. In development and tests it propagates as usual, for full tracebacks.

The body limit lives here rather than in FastAPI's `max_body_size`, because that one sits outside every
user middleware and answers an over-long Content-Length with a plain-text 413 of its own (no error shape,
no request id). Here an announced length over the limit is refused before the body is read, and a body
without Content-Length (chunked) is counted as it streams in: the route's body read raises `BodyTooLarge`,
which the error handlers render as `{"code": "body_too_large", …}`.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import context
from app.core.config import get_settings
from app.core.errors import INTERNAL_EN, INTERNAL_ZH, describe_exception, error_body
from app.core.inputs import JsonTooDeep, ascii_int, check_json_depth

log = logging.getLogger("app.errors")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The request id is also left in the ASGI scope: the 500 handler runs outside this middleware.
SCOPE_REQUEST_ID = "app.request_id"


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413)


def _lang(headers: Headers) -> str:
    return "zh" if headers.get("accept-language", "").lower().startswith("zh") else "en"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        ctx = context.RequestContext(request_id=request_id, client_ip=_client_ip(scope, headers))
        token = context.set_current(ctx)
        scope[SCOPE_REQUEST_ID] = request_id

        started: list[bool] = []
        send = _with_headers(send, request_id, scope["path"], started)
        try:
            admitted = await _admit(scope, receive, send, headers)
            if admitted is None:
                return
            await self.app(scope, admitted, send)
        except Exception as exc:
            if started or get_settings().app_env != "production":
                raise
            log.error("unhandled error on %s %s (request %s)\n%s", scope.get("method"), scope["path"], request_id,
                      describe_exception(exc))
            msg = INTERNAL_ZH if _lang(headers) == "zh" else INTERNAL_EN
            await JSONResponse(error_body("internal_error", msg), status_code=500)(scope, receive, send)
        finally:
            context.reset(token)


# Routes that take files get their own allowance; everything else gets MAX_BODY_BYTES.
PHOTO_UPLOAD = re.compile(r"^/api/v1/visits/[^/]+/photos$")
IMPORTS = {"/api/v1/residents/import", "/api/v1/divisions/import", "/api/v1/partner/police/registrations"}
SYNC_PUSH = "/api/v1/sync/push"  # its route also inflates gzip bodies, to the same limit (app/sync/router.py)
MULTIPART_OVERHEAD = 64 * 1024
IMPORT_ALLOWANCE = 8 * 1024 * 1024  # the importers refuse files over their own limit (<= 8 MiB) with their own 413


def body_limit(path: str) -> int:
    settings = get_settings()
    if PHOTO_UPLOAD.match(path):
        return max(settings.max_body_bytes, settings.photo_max_bytes + MULTIPART_OVERHEAD)
    if path in IMPORTS:
        return max(settings.max_body_bytes, IMPORT_ALLOWANCE + MULTIPART_OVERHEAD)
    if path == SYNC_PUSH:
        return max(settings.max_body_bytes, settings.sync_push_max_bytes)
    return settings.max_body_bytes


def _content_length(headers: Headers) -> int:
    return ascii_int(headers.get("content-length", "").strip(), max_digits=19) or 0


# (status, code, en, zh) of the refusals answered here, before the app.
NUL_BYTE = (422, "nul_byte", "NUL bytes are not allowed.", "不允许包含空字符。")
BODY_TOO_LARGE = (413, "body_too_large", "The request body is too large.", "请求体过大。")


async def _admit(scope: Scope, receive: Receive, send: Send, headers: Headers) -> Receive | None:
    """The `receive` the app gets (the body counted against its limit), or None once a refusal was sent:
    a NUL byte in the URL, a body over the limit, a JSON body nested deeper than JSON_MAX_DEPTH."""
    raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
    if b"%00" in raw or b"\x00" in raw:
        await _refuse(scope, receive, send, headers, NUL_BYTE)
        return None
    limit = body_limit(scope["path"])
    if _content_length(headers) > limit:
        await _refuse(scope, receive, send, headers, BODY_TOO_LARGE)
        return None
    receive = _limited(receive, limit)
    if not _json_body(scope, headers):
        return receive
    try:
        body, receive = await _buffered(receive)
    except BodyTooLarge:
        await _refuse(scope, receive, send, headers, BODY_TOO_LARGE)
        return None
    try:
        if body is not None:
            check_json_depth(body)
    except JsonTooDeep as exc:
        await _refuse(scope, receive, send, headers, (exc.status, exc.code, exc.en, exc.zh), exc.details)
        return None
    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, headers: Headers, error: tuple[int, str, str, str],
                  details: Any = None) -> None:
    status, code, en, zh = error
    extra = {"Connection": "close"} if status == 413 else None
    response = JSONResponse(error_body(code, zh if _lang(headers) == "zh" else en, details), status_code=status,
                            headers=extra)
    await response(scope, receive, send)


def _json_body(scope: Scope, headers: Headers) -> bool:
    """A body FastAPI will parse as JSON (application/json or application/*+json). The sync push reads its
    own body (gzip) and checks it there (app/sync/router.py)."""
    if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE") or scope["path"] == SYNC_PUSH:
        return False
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None when the client went away first) and a `receive` that hands it on in one
    message: FastAPI reads the whole body before parsing it anyway, so this holds nothing more."""
    chunks: list[bytes] = []
    body: bytes | None = None
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            message = {"type": "http.request", "body": body, "more_body": False}
            break
    first: Message | None = message

    async def replay() -> Message:
        nonlocal first
        if first is not None:
            message, first = first, None
            return message
        return await receive()

    return body, replay


def _limited(receive: Receive, limit: int) -> Receive:
    """Count the body as it arrives (chunked uploads announce no length)."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
        return message

    return wrapped


def _with_headers(send: Send, request_id: str, path: str, started: list[bool]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(True)
            headers = MutableHeaders(scope=message)
            headers["X-Request-ID"] = request_id
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Referrer-Policy"] = "no-referrer"
            if path.startswith("/api/"):
                # API responses may carry personal data: never store them in any cache.
                headers["Cache-Control"] = "no-store"
                headers["Pragma"] = "no-cache"
        await send(message)

    return wrapped


def _client_ip(scope: Scope, headers: Headers) -> str | None:
    if get_settings().trust_forwarded_for:
        # The trusted proxy appends the address it saw; everything left of that came from the client
        # and can be forged, so only the right-most entry is believed.
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()[:45] or None
    client: Any = scope.get("client")
    return client[0][:45] if client else None
