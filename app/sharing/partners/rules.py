"""Opaque cursors for partner feeds: a tag and a position, base64url-encoded. Not secret (a cursor only says
where a page ended, and every page is filtered by the caller's jurisdiction); opaque so that clients do not
build them, and tagged so that a cursor of one feed is refused by another."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

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


def decode_log_position(tag: str, cursor: str | None) -> tuple[int, int | None]:
    """A change-log feed's cursor: the (sequence number, entry id) of the last entry given out; (0, None) from
    the start. One transaction's entries share a sequence number, so a page may end inside one: the entry id
    says where. A cursor of the sequence number alone (given out before) means that whole transaction."""
    position = decode_cursor(tag, cursor)
    if position is None:
        return 0, None
    seq_text, dot, id_text = position.partition(".")
    seq = ascii_int(seq_text)
    entry = ascii_int(id_text) if dot else None
    if seq is None or (dot and entry is None):
        raise InvalidCursor()
    return seq, entry


def encode_log_position(tag: str, seq: int, entry: int | None) -> str:
    return encode_cursor(tag, str(seq) if entry is None else f"{seq}.{entry}")


def after_log_position(seq_column: Any, id_column: Any, seq: int, entry: int | None) -> ColumnElement[bool]:
    """Change-log entries after a position (order them by sequence number, then id)."""
    if entry is None:
        return seq_column > seq
    return or_(seq_column > seq, and_(seq_column == seq, id_column > entry))
