"""Pure ASGI middleware: request context (id, client address), header hygiene, NUL bytes in the URL and
the request body limit (MAX_BODY_BYTES).

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
            raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
            if b"%00" in raw or b"\x00" in raw:
                msg = "NUL bytes are not allowed." if _lang(headers) == "en" else "不允许包含空字符。"
                await JSONResponse(error_body("nul_byte", msg), status_code=422)(scope, receive, send)
                return
            limit = body_limit(scope["path"])
            if _content_length(headers) > limit:
                msg = "The request body is too large." if _lang(headers) == "en" else "请求体过大。"
                response = JSONResponse(error_body("body_too_large", msg), status_code=413,
                                        headers={"Connection": "close"})
                await response(scope, receive, send)
                return
            await self.app(scope, _limited(receive, limit), send)
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
IMPORTS = {"/api/v1/residents/import", "/api/v1/divisions/import"}
SYNC_PUSH = "/api/v1/sync/push"  # its route also inflates gzip bodies, to the same limit (app/sync/router.py)
MULTIPART_OVERHEAD = 64 * 1024
IMPORT_ALLOWANCE = 8 * 1024 * 1024  # both importers refuse files over 8 MiB with their own 413


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
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


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
