"""Parallel gzip: one ordinary gzip member, byte-exact after decompression, at every block boundary."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from app.core.gzipping import BLOCK, gzip_bytes


@pytest.mark.parametrize("size", [0, 1, 1000, 2 * BLOCK - 1, 2 * BLOCK, 2 * BLOCK + 1, 5 * BLOCK + 12345])
def test_round_trip(size: int) -> None:
    rnd = random.Random(size)
    unit = bytes(rnd.getrandbits(8) for _ in range(997))
    data = (unit * (size // len(unit) + 1))[:size]
    packed = gzip_bytes(data, 1)
    assert gzip.decompress(packed) == data
    # A single member: a reader that stops after the first member still gets everything.
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(packed) == data and reader.eof and reader.unused_data == b""
