"""Real images for the photo tests (Pillow), and hostile ones built byte by byte."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def picture(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """A deterministic picture with some detail (a gradient and the seed), so encoders have work to do."""
    image = Image.new(mode, (width, height))
    image.putdata([((x * 7 + seed) % 256, (y * 5 + seed * 3) % 256, (x * y + seed) % 256)[:len(mode)]
                   if len(mode) > 1 else (x + y + seed) % 256
                   for y in range(height) for x in range(width)])
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(width: int = 3, height: int = 2, seed: int = 0) -> bytes:
    return encode(picture(width, height, seed), "PNG")


def jpeg(width: int = 64, height: int = 48, seed: int = 0, **options: object) -> bytes:
    return encode(picture(width, height, seed), "JPEG", quality=92, **options)


def webp(width: int = 80, height: int = 60, seed: int = 0) -> bytes:
    return encode(picture(width, height, seed), "WEBP", quality=90)


def jpeg_of_size(total: int, seed: int = 0) -> bytes:
    """A valid JPEG of exactly `total` bytes: a small picture padded with comment (COM) segments."""
    data = jpeg(seed=seed)
    head, body = data[:2], data[2:]  # SOI, then the rest
    padding = total - len(data)
    segments = []
    while padding > 0:
        size = min(padding, 65_537)  # marker (2) + length field (2) + up to 65,533 bytes
        if padding - size in (1, 2, 3):  # never leave a remainder too small for a segment
            size -= 4
        payload = size - 4
        segments.append(b"\xff\xfe" + struct.pack(">H", payload + 2) + b"c" * payload)
        padding -= size
    result = head + b"".join(segments) + body
    assert len(result) == total, (len(result), total)
    return result


def gps_exif(orientation: int | None = None) -> bytes:
    """EXIF with a GPS position (Zhengzhou, 34.75 N 113.62 E), a camera make, and optionally an orientation."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (34.0, 45.0, 0.0), 3: "E", 4: (113.0, 37.0, 12.0)}
    return exif.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header(width: int, height: int, color_type: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real decompression bomb: an RGB PNG of black pixels, ~1.2 MB on disk and width × height × 3 bytes
    decoded. Built from one compressed block of 100 rows repeated (a full flush makes each copy identical)."""
    row = b"\x00" * (width * 3 + 1)  # filter byte + pixels, all zero
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(row * 100) + compressor.flush(zlib.Z_FULL_FLUSH)
    total = len(row) * height
    adler = ((total % 65521) << 16) | 1  # Adler-32 of `total` zero bytes
    stream = b"\x78\xda" + block * (height // 100) + b"\x03\x00" + struct.pack(">I", adler)
    return png_header(width, height) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its tiny data does not have."""
    return png_header(width, height) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b"")
