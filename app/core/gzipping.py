"""gzip for big responses, compressed on several cores (the way pigz does) into one ordinary gzip member.

The body is cut into blocks compressed independently as raw deflate streams, each ending on a byte boundary
(a sync flush; the last one finishes the stream), so their concatenation is one valid deflate stream; the
gzip header and trailer (CRC-32 and length of the whole body) go around it. zlib releases the GIL while it
works, so threads run in parallel. Any gzip reader accepts the result (it is a single member); the size is a
little larger than one stream's because blocks do not share their history window.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache

BLOCK = 4 * 1024 * 1024  # below twice this, one thread does it all
WORKERS = 2
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # magic, deflate, no flags, mtime 0, no extra, OS unknown


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="gzip")


def _deflate(block: bytes, level: int, last: bool) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def gzip_bytes(data: bytes, level: int) -> bytes:
    """`gzip.compress(data, level, mtime=0)`, using up to WORKERS cores for big bodies."""
    if len(data) < 2 * BLOCK:
        blocks = [_deflate(data, level, True)]
    else:
        ends = range(BLOCK, len(data) + BLOCK, BLOCK)
        futures = [_pool().submit(_deflate, data[end - BLOCK:end], level, end >= len(data)) for end in ends]
        blocks = [f.result() for f in futures]
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"".join([_HEADER, *blocks, trailer])
