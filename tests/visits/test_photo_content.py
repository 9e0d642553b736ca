"""Photos are decoded whole and stored as a clean copy: bombs, absurd sizes, broken files, polyglots and
metadata (issue 11, item 8). Through the HTTP API, on the real database and the real photo directory."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine

from app.core.config import Settings
from tests.assertions import assert_error
from tests.conftest import Api
from tests.visits.images import (
    GPS_IFD,
    encode,
    gps_exif,
    jpeg,
    picture,
    png,
    png_bomb,
    png_claiming,
    webp,
)
from tests.visits.photo_helpers import on_disk, photo_rows, stored_files, upload, uploaded


def refused(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any], data: bytes, status: int,
            code: str) -> dict[str, Any]:
    before = stored_files(settings)
    body = assert_error(upload(api, visit["id"], data, name="photo.png", content_type="image/png"), status, code)
    assert photo_rows(engine, visit["id"]) == []
    assert stored_files(settings) == before  # nothing written to disk either
    return body


def stored(settings: Settings, body: dict[str, Any]) -> bytes:
    return on_disk(settings, body["sha256"]).read_bytes()


# --- refused before decoding -------------------------------------------------------------------------------


def test_decompression_bomb_is_refused(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    bomb = png_bomb(20_000, 20_000)  # 1.2 MB on disk, 1.2 GB of pixels
    assert len(bomb) < settings.photo_max_bytes
    body = refused(api, engine, settings, visit, bomb, 422, "photo_too_many_pixels")
    assert body["details"] == {"max_pixels": settings.photo_max_pixels}


def test_absurd_declared_size_is_refused(api: Api, engine: Engine, settings: Settings,
                                         visit: dict[str, Any]) -> None:
    refused(api, engine, settings, visit, png_claiming(100_000, 100_000), 422, "photo_too_many_pixels")
    refused(api, engine, settings, visit, png_claiming(2**31 - 1, 1), 422, "photo_too_many_pixels")


def test_pixel_limit_both_sides(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "photo_max_pixels", 1_000_000)
    refused(api, engine, settings, visit, encode(Image.new("L", (1001, 1000)), "PNG"), 422, "photo_too_many_pixels")
    refused(api, engine, settings, visit, encode(Image.new("RGB", (1000, 1001)), "JPEG"), 422,
            "photo_too_many_pixels")
    assert uploaded(api, visit["id"], encode(Image.new("L", (1000, 1000)), "PNG"))["width"] == 1000


# --- refused after decoding --------------------------------------------------------------------------------


def test_truncated_png_is_refused(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    whole = png(64, 64, seed=3)
    refused(api, engine, settings, visit, whole[:48], 422, "photo_invalid")
    refused(api, engine, settings, visit, whole[:len(whole) // 2], 422, "photo_invalid")


@pytest.mark.parametrize("damage", ["half", "header_only", "no_scan", "magic_only"])
def test_broken_jpeg_is_refused(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any],
                                damage: str) -> None:
    whole = jpeg(64, 64, seed=4)
    scan = whole.index(b"\xff\xda")
    data = {
        "half": whole[:len(whole) // 2],
        "header_only": whole[:scan] + b"\xff\xd9",
        "no_scan": whole[:scan] + whole[scan + 2:],
        "magic_only": b"\xff\xd8\xff\xe0" + b"\x00" * 40,
    }[damage]
    refused(api, engine, settings, visit, data, 422, "photo_invalid")


def test_damaged_png_data_is_refused(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    data = bytearray(png(64, 64, seed=5))
    data[60] ^= 0xFF  # inside the compressed pixels
    refused(api, engine, settings, visit, bytes(data), 422, "photo_invalid")


# --- stored as a clean copy --------------------------------------------------------------------------------


def test_html_after_a_png_is_not_stored(api: Api, settings: Settings, visit: dict[str, Any]) -> None:
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    body = uploaded(api, visit["id"], png(32, 32, seed=6) + html, content_type="image/png")
    copy = stored(settings, body)
    assert b"<script" not in copy and b"<html" not in copy
    served = api.as_("worker1", "GET", f"/api/v1/visits/{visit['id']}/photos/{body['id']}").content
    assert served == copy
    with Image.open(io.BytesIO(copy)) as image:
        image.load()
        assert (image.format, image.size) == ("PNG", (32, 32))


def test_exif_gps_and_other_metadata_are_stripped_from_a_jpeg(api: Api, settings: Settings,
                                                              visit: dict[str, Any]) -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description exif:GPSLatitude="34,45N"/></x:xmpmeta>'
    original = jpeg(64, 48, seed=7, exif=gps_exif(), comment=b"home of resident 12", xmp=xmp,
                    icc_profile=b"\x00" * 128)
    with Image.open(io.BytesIO(original)) as image:  # the test image really carries it all
        assert image.getexif().get_ifd(GPS_IFD) and image.info.get("comment") and image.info.get("xmp")
    body = uploaded(api, visit["id"], original)
    copy = stored(settings, body)
    with Image.open(io.BytesIO(copy)) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
        assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
        assert not {"exif", "comment", "xmp", "icc_profile"} & set(image.info)
    for marker in (b"Exif", b"PhoneMaker", b"home of resident", b"xmpmeta", b"GPS"):
        assert marker not in copy, marker


def test_png_text_and_exif_chunks_are_stripped(api: Api, settings: Settings, visit: dict[str, Any]) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "张三 13800138000")
    original = encode(picture(16, 16, 8), "PNG", pnginfo=info, exif=gps_exif())
    copy = stored(settings, uploaded(api, visit["id"], original, content_type="image/png"))
    with Image.open(io.BytesIO(copy)) as image:
        assert not image.getexif() and "Comment" not in image.info
    assert b"tEXt" not in copy and b"eXIf" not in copy and b"13800138000" not in copy


def test_orientation_is_applied_before_the_exif_goes(api: Api, settings: Settings, visit: dict[str, Any]) -> None:
    """A phone stores a portrait photo as landscape pixels plus an EXIF orientation; without the EXIF the copy
    must be turned already."""
    body = uploaded(api, visit["id"], jpeg(64, 48, seed=9, exif=gps_exif(orientation=6)))
    assert (body["width"], body["height"]) == (48, 64)
    with Image.open(io.BytesIO(stored(settings, body))) as image:
        assert image.size == (48, 64) and not image.getexif()


def test_transparency_survives_the_copy(api: Api, settings: Settings, visit: dict[str, Any]) -> None:
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    original = encode(palette, "PNG", transparency=0)
    with Image.open(io.BytesIO(stored(settings, uploaded(api, visit["id"], original)))) as image:
        rgba = image.convert("RGBA")
        assert rgba.getpixel((0, 0))[3] == 0 and rgba.getpixel((1, 1)) == (255, 0, 0, 255)


@pytest.mark.parametrize("make", [lambda: jpeg(64, 48, seed=11, exif=gps_exif()), lambda: png(20, 10, seed=12),
                                  lambda: webp(30, 20, seed=13)])
def test_a_retry_finds_the_same_copy(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any],
                                     make: Any) -> None:
    """Re-encoding is deterministic, so the same upload sent again (a lost response) is recognised."""
    data = make()
    first = uploaded(api, visit["id"], data)
    again = upload(api, visit["id"], data)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.json()["sha256"] == first["sha256"]
    assert len(photo_rows(engine, visit["id"])) == 1
