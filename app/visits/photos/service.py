"""Visit photos: checks, content-addressed storage on disk, metadata rows, audited downloads.

The type is decided by the file's magic bytes, never by its name or the client's content type. The size the
header declares is checked against PHOTO_MAX_PIXELS before anything is decoded (a 1 MB PNG can inflate to
gigabytes); then the whole image is decoded (Pillow) and encoded again in the same format, upright, without
any metadata (EXIF with its GPS position, XMP, comments, ICC profile, text chunks) and without whatever
followed the image in the file. What is stored and served is that copy, never the uploaded bytes.

The bytes never enter the database: they are stored once per content under `PHOTO_DIR/ab/cd/<sha256>` of
the stored copy (written to a temporary file in the same directory, then renamed, so a reader never sees
half a file). Encoding is deterministic, so a retry of the same upload yields the same copy and the same
name. A file written for an upload whose transaction then fails stays on disk unreferenced: harmless
(content-addressed, reused by a retry), and collectable by comparing the directory with
`visit_photos.sha256`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.config import Settings
from app.core.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable
from app.core.types import utcnow
from app.ledger import audit
from app.visits import service as visits
from app.visits.models import Visit, VisitPhoto

# --- errors -------------------------------------------------------------------------------------------------


class PhotoNotVisitAuthor(Forbidden):
    code = "not_visit_author"
    en = "Only the worker who recorded the visit can add photos to it."
    zh = "只有记录该访视的工作人员可以上传照片。"


class PhotoWindowClosed(Conflict):
    code = "photo_window_closed"
    en = "Photos can only be added within a set time after the visit was received."
    zh = "已超过访视上传照片的时限。"


class PhotoLimit(Conflict):
    code = "photo_limit"
    en = "This visit already has the maximum number of photos."
    zh = "该访视的照片数量已达上限。"


class PhotoEmpty(Unprocessable):
    code = "photo_empty"
    en = "The photo file is empty."
    zh = "照片文件为空。"


class PhotoTooLarge(AppError):
    status = 413
    code = "photo_too_large"
    en = "The photo is larger than allowed."
    zh = "照片超过允许的大小。"


class PhotoType(AppError):
    status = 415
    code = "photo_type"
    en = "Only JPEG, PNG and WebP photos are accepted (checked by their content)."
    zh = "只接受 JPEG、PNG 或 WebP 格式的照片（按文件内容判断）。"


class PhotoTooManyPixels(Unprocessable):
    code = "photo_too_many_pixels"
    en = "The image declares more pixels than allowed (width × height)."
    zh = "图片像素数（宽 × 高）超过允许的上限。"


class PhotoInvalid(Unprocessable):
    code = "photo_invalid"
    en = "The image could not be decoded completely (truncated or damaged)."
    zh = "图片无法完整解码（文件不完整或已损坏）。"


# --- content ------------------------------------------------------------------------------------------------

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sniff(data: bytes) -> str | None:
    """The image type by magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(PNG_MAGIC):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def dimensions(data: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) as the header declares them, read without decoding; None when not understood."""
    try:
        if content_type == PNG:
            if data[12:16] != b"IHDR":
                return None
            width, height = struct.unpack(">II", data[16:24])
            return (width, height) if width and height else None
        if content_type == JPEG:
            return _jpeg_size(data)
        if content_type == WEBP:
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in SOF_MARKERS:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return (width, height) if width and height else None
        if marker in (0xD9, 0xDA) or length < 2:  # end of image / start of scan before any frame header
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return (width & 0x3FFF, height & 0x3FFF) if width and height else None
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


# --- decoding and the stored copy ---------------------------------------------------------------------------

PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
# Deterministic settings (a retry must give the same bytes). JPEG at 90 keeps a phone photo's detail; WebP
# photos are lossy too.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    JPEG: {"quality": 90}, PNG: {"compress_level": 6}, WEBP: {"quality": 90, "method": 4},
}


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    width: int
    height: int


def _check_pixels(size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is not None and size[0] * size[1] > max_pixels:
        raise PhotoTooManyPixels({"max_pixels": max_pixels})


def _decode(data: bytes, content_type: str, max_pixels: int) -> Image.Image:
    """The fully decoded image (first frame); PhotoInvalid for anything Pillow cannot read to the end."""
    _check_pixels(dimensions(data, content_type), max_pixels)  # before Pillow reads more than the header
    try:
        image = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[content_type]])
        _check_pixels(image.size, max_pixels)  # a header our reader did not understand
        image.load()  # every pixel: a truncated or damaged file fails here
    except Image.DecompressionBombError:
        raise PhotoTooManyPixels({"max_pixels": max_pixels}) from None
    except AppError:
        raise
    except Exception:  # Pillow reports damaged input with many exception types (OSError, SyntaxError, …)
        raise PhotoInvalid() from None
    return image


def _upright(image: Image.Image) -> None:
    """Turn the pixels as the EXIF orientation says (the tag is about to go with the rest of the metadata)."""
    with contextlib.suppress(Exception):  # unreadable EXIF: keep the pixels as decoded; it is dropped anyway
        ImageOps.exif_transpose(image, in_place=True)


def clean(data: bytes, content_type: str, max_pixels: int) -> CleanPhoto:
    """Decode the whole image and encode it again, in its format, upright and without metadata."""
    image = _decode(data, content_type, max_pixels)
    _upright(image)
    if content_type == JPEG and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK / YCCK
    elif content_type == PNG and "transparency" in image.info:
        image = image.convert("RGBA")  # a tRNS chunk is metadata Pillow would otherwise copy along
    image.info = {}  # EXIF, XMP, ICC, comments, text chunks, dpi: nothing of the original is written
    out = io.BytesIO()
    image.save(out, format=PIL_FORMATS[content_type], **SAVE_OPTIONS[content_type])
    return CleanPhoto(out.getvalue(), image.width, image.height)


# --- storage ------------------------------------------------------------------------------------------------


def photo_path(photo_dir: Path, sha256: str) -> Path:
    return photo_dir / sha256[:2] / sha256[2:4] / sha256


def store(photo_dir: Path, data: bytes) -> str:
    """Write the bytes under their SHA-256 (once per content) and return the hash."""
    digest = hashlib.sha256(data).hexdigest()
    target = photo_path(photo_dir, digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def read_bytes(photo_dir: Path, photo: VisitPhoto) -> bytes:
    path = photo_path(photo_dir, photo.sha256)
    try:
        return path.read_bytes()
    except FileNotFoundError:  # metadata without its file (restored database, lost volume)
        raise NotFound() from None


# --- use cases ----------------------------------------------------------------------------------------------


def upload(session: Session, actor: Actor, settings: Settings, visit_id: str, kind: str,
           data: bytes) -> tuple[VisitPhoto, bool]:
    """Check, clean and store one photo. Returns (photo, created): the same content sent again for the same
    visit (a retry after a lost response) answers the stored photo and adds nothing."""
    visit = visits.get_visit(session, actor, visit_id, for_update=True, via_resident=True)
    if visit.worker_id != actor.user_id:
        raise PhotoNotVisitAuthor()
    if utcnow() > visit.received_at + timedelta(hours=settings.photo_upload_hours):
        raise PhotoWindowClosed({"hours": settings.photo_upload_hours})
    if not data:
        raise PhotoEmpty()
    if len(data) > settings.photo_max_bytes:
        raise PhotoTooLarge({"max_bytes": settings.photo_max_bytes})
    content_type = sniff(data)
    if content_type is None:
        raise PhotoType({"accepted": [JPEG, PNG, WEBP]})
    copy = clean(data, content_type, settings.photo_max_pixels)
    digest = hashlib.sha256(copy.data).hexdigest()
    existing = session.execute(
        select(VisitPhoto).where(col(VisitPhoto.visit_id) == visit.id, col(VisitPhoto.sha256) == digest)
    ).scalars().first()
    if existing is not None:
        store(settings.photo_dir, copy.data)  # put the file back should it have gone missing
        return existing, False
    count = session.execute(
        select(func.count()).select_from(VisitPhoto).where(col(VisitPhoto.visit_id) == visit.id)
    ).scalar_one()
    if count >= settings.photo_max_per_visit:
        raise PhotoLimit({"max_per_visit": settings.photo_max_per_visit})
    store(settings.photo_dir, copy.data)
    photo = VisitPhoto(
        visit_id=visit.id, area_path=visit.area_path, district_code=visit.district_code, kind=kind,
        content_type=content_type, size_bytes=len(copy.data), sha256=digest, width=copy.width,
        height=copy.height, uploaded_by=actor.user_id,
    )
    session.add(photo)
    session.flush()
    return photo, True


def list_photos(session: Session, actor: Actor, visit_id: str) -> list[VisitPhoto]:
    visit = visits.get_visit(session, actor, visit_id, via_resident=True)
    return list(session.execute(
        select(VisitPhoto).where(col(VisitPhoto.visit_id) == visit.id)
        .order_by(col(VisitPhoto.created_at), col(VisitPhoto.id))
    ).scalars().all())


def get_photo(session: Session, actor: Actor, visit_id: str, photo_id: str) -> tuple[Visit, VisitPhoto]:
    visit = visits.get_visit(session, actor, visit_id, via_resident=True)
    photo = session.execute(
        select(VisitPhoto).where(col(VisitPhoto.id) == photo_id, col(VisitPhoto.visit_id) == visit.id)
    ).scalar_one_or_none()
    if photo is None:
        raise NotFound()
    return visit, photo


def audit_download(session: Session, photo: VisitPhoto) -> None:
    audit.record(session, "visit_photo.read", target_type="visit_photos", target_id=photo.id,
                 detail={"visit_id": photo.visit_id, "kind": photo.kind}, area_path=photo.area_path,
                 district_code=photo.district_code)
