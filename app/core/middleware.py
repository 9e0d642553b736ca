"""Pure ASGI middleware: request context (id, client address), header hygiene, NUL bytes in the URL."""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import context
from app.core.config import get_settings
from app.core.errors import error_body

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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

        raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in raw or b"\x00" in raw:
            lang = "zh" if headers.get("accept-language", "").lower().startswith("zh") else "en"
            msg = "NUL bytes are not allowed." if lang == "en" else "不允许包含空字符。"
            response = JSONResponse(error_body("nul_byte", msg), status_code=422)
            await response(scope, receive, _with_headers(send, request_id, scope["path"]))
            context.reset(token)
            return
        try:
            await self.app(scope, receive, _with_headers(send, request_id, scope["path"]))
        finally:
            context.reset(token)


def _with_headers(send: Send, request_id: str, path: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
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
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()[:45]
    client: Any = scope.get("client")
    return client[0][:45] if client else None
