"""POST /partner/oauth/token: OAuth 2.0 client credentials (RFC 6749 §4.4) for police stations and outflow
cities. Public (the client authenticates with its id and secret). Its errors follow the RFC (§5.2:
`{"error", "error_description"}`, 400, or 401 for a failed client authentication) instead of the API's
`{"code", "message", "details"}`; a lockout or a busy database is 429/503 `temporarily_unavailable` with
Retry-After. Never a 500 for anything a client sends."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.auth.service import one_at_a_time
from app.core.deps import SettingsDep, in_unit_of_work, public
from app.core.errors import AppError
from app.core.security import check_password
from app.sharing.partners.oauth import service
from app.sharing.partners.oauth.schemas import ClientTokenOut, OAuthErrorOut

router = APIRouter(prefix="/partner/oauth", tags=["partner"])

FORM = "application/x-www-form-urlencoded"
FIELDS = ("grant_type", "client_id", "client_secret", "scope")
LIMITS = {"grant_type": 40, "client_id": 64, "client_secret": 256, "scope": 200}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# `x-error-shape`: this operation's errors are RFC 6749's (app/core/openapi.py keeps their declared schema).
REQUEST_BODY: dict[str, Any] = {"x-error-shape": "RFC 6749 §5.2", "requestBody": {
    "required": True, "content": {FORM: {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string", "maxLength": 64, "description": "Or in HTTP Basic authentication"},
        "client_secret": {"type": "string", "maxLength": 256, "description": "Or in HTTP Basic authentication"},
        "scope": {"type": "string", "maxLength": 200,
                  "description": "Space-separated; police: police:lookup police:feed police:upload; outflow city: "
                                 "outflow:feed outflow:changes outflow:assistance. Omitted: every scope of the "
                                 "client's kind"},
    }}}}}}


def _error(exc: AppError) -> JSONResponse:
    if isinstance(exc, service.OAuthError):
        return JSONResponse(exc.body(), exc.status, headers={**NO_STORE, **(exc.headers or {})})
    # A lockout (429) or a busy database (503): the RFC's code for "try again later".
    status = exc.status if exc.status in (429, 503) else 400
    return JSONResponse({"error": "temporarily_unavailable" if status != 400 else "invalid_request",
                         "error_description": exc.en}, status, headers={**NO_STORE, **(exc.headers or {})})


async def _credentials(request: Request) -> tuple[str, str, str | None]:
    """(client id, secret, scope) from the form and/or HTTP Basic (one method only); OAuthError otherwise."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise service.OAuthError()
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in values or not isinstance(value, str) or len(value) > LIMITS.get(key, 256):
            raise service.OAuthError()  # a repeated parameter, a file, or an oversized value
        values[key] = value
    grant = values.get("grant_type")
    if not grant:
        raise service.OAuthError()
    if grant != "client_credentials":
        raise service.UnsupportedGrant()
    basic = _basic(request.headers.get("authorization"))
    if basic is not None and ("client_id" in values or "client_secret" in values):
        raise service.OAuthError()  # RFC 6749 §2.3: one authentication method per request
    client_id, secret = basic or (values.get("client_id", ""), values.get("client_secret", ""))
    if not client_id or not secret or len(client_id) > 64 or len(secret) > 256:
        raise service.InvalidClient()
    return client_id, secret, values.get("scope")


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise service.InvalidClient()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise service.InvalidClient() from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise service.InvalidClient()
    return unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 §2.3.1: form-encoded, then Basic


@router.post("/token", response_model=ClientTokenOut, openapi_extra=REQUEST_BODY,
             summary="Exchange a machine client's id and secret for a short-lived access token (OAuth 2.0 "
                     "client credentials)",
             responses={400: {"model": OAuthErrorOut, "description": "RFC 6749 §5.2: `invalid_request`, "
                                                                     "`unsupported_grant_type`, `invalid_scope`"},
                        401: {"model": OAuthErrorOut, "description": "`invalid_client`"},
                        429: {"model": OAuthErrorOut, "description": "`temporarily_unavailable`: too many failures "
                                                                     "for the client id or the address"},
                        503: {"model": OAuthErrorOut, "description": "`temporarily_unavailable`: busy"}})
@public
async def token(request: Request, settings: SettingsDep) -> Any:
    try:
        client_id, secret, scope = await _credentials(request)
        async with one_at_a_time(client_id):
            start = await in_unit_of_work(request, lambda s: service.token_start(s, settings, client_id, secret))
            ok, _ = await check_password(secret, start.secret_hash)
            access, expires_in, granted = await in_unit_of_work(
                request, lambda s: service.token_finish(s, settings, start, ok, scope))
    except AppError as exc:
        return _error(exc)
    return JSONResponse(ClientTokenOut(access_token=access, expires_in=expires_in, scope=granted).model_dump(),
                        headers=NO_STORE)
