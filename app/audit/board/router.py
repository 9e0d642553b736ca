"""The supervisor board: one small page that shows the pictures (app/audit/pictures) on an intranet.

The page and its script and style are static and hold no data, so they are public (like /docs); the page signs
in with the API and fetches every figure and picture with the supervisor's token. Everything comes from this
server — no CDN, no map tiles, no fonts from elsewhere — and a strict Content-Security-Policy keeps it so.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from app.core.deps import public

public_router = APIRouter(tags=["audit"], include_in_schema=False)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
TYPES = {"board.html": "text/html; charset=utf-8", "board.js": "text/javascript; charset=utf-8",
         "board.css": "text/css; charset=utf-8"}


@lru_cache(maxsize=4)
def _asset(name: str) -> bytes:
    return resources.files("app.audit.board").joinpath("static", name).read_bytes()


def _serve(name: str) -> Response:
    return Response(_asset(name), media_type=TYPES[name],
                    headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


@public_router.get("/board")
@public
def board() -> Response:
    return _serve("board.html")


@public_router.get("/board/board.js")
@public
def board_js() -> Response:
    return _serve("board.js")


@public_router.get("/board/board.css")
@public
def board_css() -> Response:
    return _serve("board.css")
