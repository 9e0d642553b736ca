"""One error shape for the whole API: {"code", "message", "details"}.

Every expected outcome is an `AppError` subclass carrying its HTTP status, a stable machine-readable
code and its message in English and Chinese (chosen by Accept-Language). Domains declare their own
subclasses next to the code that raises them. Anything else that escapes is logged (without request
data) and answered as a generic 500.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.routes import path_methods

log = logging.getLogger("app.errors")


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    en: ClassVar[str] = "The request is not valid."
    zh: ClassVar[str] = "请求无效。"
    # Audit the failure (denials, lockouts). Writes made before the error are kept only when
    # `keep_changes` is set (a failed login must still count against the account).
    audit_outcome: ClassVar[str | None] = None
    keep_changes: ClassVar[bool] = False

    def __init__(self, details: Any = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(self.code)
        self.details = details
        self.headers = headers

    def message(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    en = "Authentication is required."
    zh = "需要登录认证。"
    audit_outcome = "denied"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    en = "Your role may not do this."
    zh = "您的角色无权执行此操作。"
    audit_outcome = "denied"


class NotFound(AppError):
    """Also the answer for anything outside the caller's scope, so existence never leaks."""

    status = 404
    code = "not_found"
    en = "Not found."
    zh = "未找到。"
    audit_outcome = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    en = "The request conflicts with the current state."
    zh = "请求与当前状态冲突。"


class StaleVersion(Conflict):
    code = "stale_version"
    en = "The record was changed by someone else; reload it and try again."
    zh = "记录已被他人修改，请刷新后重试。"


class Unprocessable(AppError):
    status = 422
    code = "invalid"
    en = "The input is not valid."
    zh = "输入无效。"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    en = "Too many requests; wait and try again."
    zh = "请求过于频繁，请稍后再试。"
    audit_outcome = "denied"


class ServiceBusy(AppError):
    """Every database connection of this process is busy, or the database is waiting on a lock: the request
    did nothing, and the same request later is safe (every write is idempotent or versioned)."""

    status = 503
    code = "service_busy"
    en = "The server is busy; nothing was changed. Try again in a few seconds."
    zh = "服务器繁忙，本次未做任何更改，请稍后重试。"

    def __init__(self, details: Any = None, *, retry_after: int = 2) -> None:
        super().__init__(details, headers={"Retry-After": str(retry_after)})


class DatabaseUnavailable(ServiceBusy):
    code = "database_unavailable"
    en = "The database is not reachable; nothing was changed. Try again shortly."
    zh = "数据库暂时不可用，本次未做任何更改，请稍后重试。"


HTTP_CODES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "The request is not valid.", "请求无效。"),
    401: ("unauthorized", "Authentication is required.", "需要登录认证。"),
    403: ("forbidden", "Your role may not do this.", "您的角色无权执行此操作。"),
    404: ("not_found", "Not found.", "未找到。"),
    405: ("method_not_allowed", "Method not allowed.", "不支持该请求方法。"),
    413: ("body_too_large", "The request body is too large.", "请求体过大。"),
    415: ("unsupported_media_type", "Unsupported media type.", "不支持的媒体类型。"),
    422: ("validation_error", "The input is not valid.", "输入无效。"),
}


def describe_exception(exc: BaseException) -> str:
    """Types and stack frames of an exception and its causes, without their messages: a database
    driver's message repeats the values of the row it refused, which may be personal data."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 10:
        seen.add(id(current))
        frames = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                         for f in traceback.extract_tb(current.__traceback__))
        parts.append(f"{type(current).__module__}.{type(current).__qualname__}\n{frames}")
        current = current.__cause__ or current.__context__
    return "\ncaused by ".join(parts)


INTERNAL_EN, INTERNAL_ZH = "Internal error.", "服务器内部错误。"


CONCURRENT_EN = "Someone else changed the same data at the same moment; nothing was saved. Try again."
CONCURRENT_ZH = "他人同时修改了相同数据，本次未保存，请重试。"


# PostgreSQL SQLSTATE classes that are about the moment, not the request: connection exceptions (08), transaction
# rollbacks (40: serialization, deadlock), insufficient resources (53), operator intervention (57: shutdown),
# and lock not available (55P03).
TRANSIENT_SQLSTATE = ("08", "40", "53", "57", "55P03")
SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def transient(exc: DBAPIError) -> ServiceBusy | None:
    """The 503 a database error deserves when retrying later is the right answer; None for a real failure."""
    if exc.connection_invalidated:
        return DatabaseUnavailable()
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith(("08", "57")):
            return DatabaseUnavailable()
        return ServiceBusy() if sqlstate.startswith(TRANSIENT_SQLSTATE) else None
    text = str(exc.orig).lower()
    if any(marker in text for marker in SQLITE_BUSY):
        return ServiceBusy()
    if type(exc.orig).__name__ in {"OperationalError", "InterfaceError"} and (
            "connect" in text or "closed" in text or "terminat" in text):
        return DatabaseUnavailable()
    return None


def language(request: Request) -> str:
    return "zh" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details}


# Pydantic writes an enum member allowed by a Literal as its repr: "Input should be <Role.worker: 'worker'> or …".
ENUM_REPR = re.compile(r"<[A-Za-z_][A-Za-z0-9_.]*: ('(?:[^'\\]|\\.)*'|-?[0-9]+)>")


def plain_message(message: Any) -> Any:
    """A validation message as a client should read it: enum members shown by their values ('worker')."""
    return ENUM_REPR.sub(r"\1", message) if isinstance(message, str) else message


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the input back: it may hold personal data.
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"), "message": plain_message(err.get("msg"))}
        for err in exc.errors()
    ]


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message(language(request)), exc.details),
        status_code=exc.status,
        headers=exc.headers,
    )

async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = _validation_details(exc)
    # A custom rule (e.g. an ID check digit) names itself as the code when it is the only failure.
    types = {d["type"] for d in details}
    code = "validation_error"
    if len(types) == 1 and (only := next(iter(types))) and only.startswith("rule."):
        code = only.removeprefix("rule.")
    _, en, zh = HTTP_CODES[422]
    return JSONResponse(error_body(code, zh if language(request) == "zh" else en, details), 422)

async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
    # A race the service's own checks could not see (two requests creating the same unique value at
    # once): the transaction was rolled back, nothing was stored; the client may retry.
    log.warning("integrity conflict on %s %s", request.method, request.url.path)
    lang = language(request)
    return JSONResponse(error_body("concurrent_conflict", CONCURRENT_ZH if lang == "zh" else CONCURRENT_EN),
                        status_code=409)

async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
    refusal = transient(exc)
    if refusal is None:
        return await _unexpected(request, exc)
    log.warning("database %s on %s %s (%s)", refusal.code, request.method, request.url.path,
                type(exc.orig).__name__)
    return JSONResponse(error_body(refusal.code, refusal.message(language(request))), status_code=refusal.status,
                        headers=refusal.headers)

async def _pool_timeout(request: Request, exc: SATimeoutError) -> JSONResponse:
    busy = ServiceBusy()
    log.warning("connection pool exhausted on %s %s", request.method, request.url.path)
    return JSONResponse(error_body(busy.code, busy.message(language(request))), status_code=503,
                        headers=busy.headers)

async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code, en, zh = HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail), str(exc.detail)))
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # every method of the path, not only those of the route Starlette matched first
        methods = path_methods(request.app, request.url.path)
        methods |= set(headers.get("Allow", "").replace(" ", "").split(","))
        headers["Allow"] = ", ".join(sorted(m for m in methods if m))
    return JSONResponse(error_body(code, zh if language(request) == "zh" else en), status_code=exc.status_code,
                        headers=headers or None)

async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Development and tests only: in production RequestContextMiddleware answers unexpected errors
    # itself and logs them without messages (see there). This runs in Starlette's outermost
    # middleware, after RequestContextMiddleware: put its headers back so a 500 can be traced by its
    # request id and is never cached. Starlette re-raises afterwards (full traceback in the log).
    request_id = str(request.scope.get("app.request_id") or "")
    log.error("unhandled error %s on %s %s (request %s)", type(exc).__name__, request.method,
              request.url.path, request_id or "-", exc_info=exc)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if request_id:
        headers["X-Request-ID"] = request_id
    message = INTERNAL_ZH if language(request) == "zh" else INTERNAL_EN
    return JSONResponse(error_body("internal_error", message), status_code=500, headers=headers)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _integrity)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(SATimeoutError, _pool_timeout)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
