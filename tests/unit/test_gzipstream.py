"""The push's deterministic parallel gzip: what gunzip reads back, the same bytes every time."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import random
import zlib

import pytest

from dockyard.streams import gzipstream
from dockyard.streams.gzipstream import (
    Compressed,
    crc32_combine,
    deflate_chunk,
    gzip_bytes,
    gzip_stream,
)


def _mixed(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.5:
            out += rng.randbytes(rng.randint(1, 300_000))
        else:
            out += (b"some text that repeats %d\n" % rng.randint(0, 9)) * rng.randint(1, 20_000)
    return bytes(out[:n])


@pytest.mark.parametrize("size", [0, 1, 17, 65_535, 65_536, 65_537, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 5])
def test_gunzip_reads_back_the_input(size: int) -> None:
    data = _mixed(size)
    out = gzip_bytes(data, chunk=1 << 20)
    assert gzip.decompress(out) == data
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"  # no name, mtime 0
    # zlib's own gunzip agrees, and the stream ends exactly where the trailer says.
    d = zlib.decompressobj(31)
    assert d.decompress(out) == data and d.eof and d.unused_data == b""


def test_incompressible_chunks_are_stored_blocks_and_still_read_back() -> None:
    data = os.urandom(4 << 20)
    piece = deflate_chunk(data)
    assert piece.data == gzipstream.stored_blocks(data)
    assert len(piece.data) == len(data) + 5 * (len(data) // 0xFFFF + 1)
    assert gzip.decompress(gzip_bytes(data)) == data


def test_compressible_chunks_shrink() -> None:
    data = b"abcdefgh" * (1 << 19)
    out = gzip_bytes(data)
    assert len(out) < len(data) // 50
    assert gzip.decompress(out) == data


def test_the_same_input_gives_the_same_bytes() -> None:
    data = _mixed(5 << 20, seed=7)
    assert gzip_bytes(data) == gzip_bytes(bytes(data))
    assert gzip_bytes(data) != gzip_bytes(data[:-1])


@pytest.mark.parametrize("split", [0, 1, 1000, 65_536, 999_999])
def test_crc32_combine(split: int) -> None:
    data = _mixed(1_000_000, seed=split)
    a, b = data[:split], data[split:]
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(data)


def test_stream_is_the_serial_bytes_with_digest_and_progress() -> None:
    data = _mixed(9 << 20, seed=3)
    seen: list[int] = []
    result = Compressed()

    async def run() -> bytes:
        parts = [p async for p in gzip_stream(lambda: io.BytesIO(data), result, seen.append, parallel=3, chunk=1 << 20)]
        return b"".join(parts)

    out = asyncio.run(run())
    assert out == gzip_bytes(data, chunk=1 << 20)
    assert gzip.decompress(out) == data
    assert result.size == len(out)
    assert result.digest == "sha256:" + hashlib.sha256(out).hexdigest()
    assert seen == sorted(seen) and seen[-1] == len(data) and len(seen) == 9


def test_stream_of_an_empty_tar() -> None:
    result = Compressed()

    async def run() -> bytes:
        return b"".join([p async for p in gzip_stream(lambda: io.BytesIO(b""), result, lambda n: None)])

    out = asyncio.run(run())
    assert gzip.decompress(out) == b""
    assert result.digest == "sha256:" + hashlib.sha256(out).hexdigest()


class _Trickle(io.RawIOBase):
    """A stream that answers each read with a few bytes less than asked."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = len(self._data) - self._pos if n < 0 else max(1, n // 3)
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(out)
        return out


def test_short_reads_do_not_change_the_bytes() -> None:
    data = _mixed(3 << 20, seed=11)
    result = Compressed()

    async def run() -> bytes:
        stream = gzip_stream(lambda: _Trickle(data), result, lambda n: None, chunk=1 << 20)  # type: ignore[arg-type,return-value]
        return b"".join([p async for p in stream])

    assert asyncio.run(run()) == gzip_bytes(data, chunk=1 << 20)


def test_mixed_chunk_stores_its_random_pieces() -> None:
    text = b"".join(b"row %d of a table\n" % i for i in range(4000))[: 64 << 10]
    noise = os.urandom(64 << 10)
    chunk = (noise + text) * 32  # 4 MiB: half random, in 64 KiB pieces
    piece = deflate_chunk(chunk)
    # The random half goes as stored blocks (its size plus headers), the text shrinks.
    assert len(noise) * 32 < len(piece.data) < len(noise) * 32 + len(text) * 32 // 4
    assert zlib.decompressobj(-15).decompress(piece.data + gzipstream.FINAL_BLOCK) == chunk
