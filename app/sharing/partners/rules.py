"""Opaque cursors for partner feeds: a tag and a position, base64url-encoded. Not secret (a cursor only says
where a page ended, and every page is filtered by the caller's jurisdiction); opaque so that clients do not
build them, and tagged so that a cursor of one feed is refused by another."""

from __future__ import annotations

import base64
import binascii

from app.core.errors import Unprocessable
from app.core.inputs import ascii_int


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"
    en = "The cursor is not one this feed gave out."
    zh = "游标无效。"


def encode_cursor(tag: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{position}".encode()).decode().rstrip("=")


def decode_cursor(tag: str, cursor: str | None) -> str | None:
    """The position in a cursor of this feed (None: from the start); 422 `invalid_cursor` otherwise."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    found, colon, position = text.partition(":")
    if found != tag or not colon or not position:
        raise InvalidCursor()
    return position


def decode_seq(tag: str, cursor: str | None) -> int:
    """A change-log feed's cursor: the last sequence number given out (0: from the start)."""
    position = decode_cursor(tag, cursor)
    if position is None:
        return 0
    seq = ascii_int(position)
    if seq is None:
        raise InvalidCursor()
    return seq
