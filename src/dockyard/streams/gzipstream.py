"""Deterministic parallel gzip of a layer tar, for push.

The same tar always gives the same bytes (no name, mtime 0 in the header), so a layer pushed
twice, or from two daemons with the same zlib-ng, has one digest. The tar is cut into 4 MiB
chunks deflated at level 1 in threads (zlib-ng releases the GIL), each ended by a sync flush
so the pieces concatenate into one valid deflate stream (as pigz does). zlib-ng's level 1 is
twice stdlib zlib's speed, at 0.44 of the size of log-like text where zlib's level 1 gives
0.35 (its level 2: 0.33, but only 1.3x zlib's speed); a piece that does not shrink is
sent as stored blocks, which costs nothing to make. The CRC-32 of the whole is combined
from the chunks' CRCs, so no single thread has to read the tar twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import BinaryIO

from zlib_ng import zlib_ng

CHUNK = 4 << 20
LEVEL = 1
# magic, deflate, no flags, mtime 0, XFL 4 ("fastest"), OS 255 (unknown)
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
# An empty final stored block: ends the deflate stream after the last sync-flushed chunk.
FINAL_BLOCK = b"\x01\x00\x00\xff\xff"
_STORED_MAX = 0xFFFF
_POLY = 0xEDB88320
_PIECE = 64 << 10
_PROBE = 2 << 10


@dataclass(frozen=True)
class Deflated:
    data: bytes  # raw deflate, byte-aligned, not final
    crc: int  # CRC-32 of the input chunk
    length: int  # bytes of input


def deflate_chunk(chunk: bytes, level: int = LEVEL) -> Deflated:
    """One chunk as a non-final, byte-aligned piece of a deflate stream. Runs of 64 KiB
    pieces that do not shrink (random or compressed data) are stored, the rest deflated,
    each run ended by a sync flush: a layer that mixes both costs what its text costs."""
    crc = zlib_ng.crc32(chunk)
    view = memoryview(chunk)
    kinds = [_packable(view[i : i + _PIECE], level) for i in range(0, len(chunk), _PIECE)]
    parts: list[bytes] = []
    first = 0
    while first < len(kinds):
        packable = kinds[first]
        last = first + 1
        while last < len(kinds) and kinds[last] == packable:
            last += 1
        run = view[first * _PIECE : last * _PIECE]
        if packable:
            z = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15)
            parts.append(z.compress(run) + z.flush(zlib_ng.Z_SYNC_FLUSH))
        else:
            parts.append(stored_blocks(run))
        first = last
    return Deflated(b"".join(parts), crc, len(chunk))


def _packable(piece: memoryview, level: int) -> bool:
    """Whether a sample of the piece shrinks under deflate."""
    sample = piece[:_PROBE]
    return len(zlib_ng.compress(sample, level)) < len(sample) * 0.9


def stored_blocks(chunk: bytes | memoryview) -> bytes:
    """`chunk` as non-final stored blocks (header byte, LEN, NLEN, the bytes)."""
    view = memoryview(chunk)
    parts: list[bytes | memoryview] = []
    for start in range(0, len(chunk), _STORED_MAX):
        piece = view[start : start + _STORED_MAX]
        parts.append(struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF))
        parts.append(piece)
    return b"".join(parts)


def trailer(crc: int, length: int) -> bytes:
    return FINAL_BLOCK + struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF)


# ---- CRC-32 combination (polynomial arithmetic modulo the CRC polynomial) ----------------


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (bit-reflected, as zlib keeps them)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    p = 1 << 30  # x^1
    table = [p]
    for _ in range(31):
        p = _multmodp(p, p)
        table.append(p)
    return table


_X2N = _x2n_table()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    p = 1 << 31  # x^0
    k = 3  # len2 bytes are 8*len2 bits: x^(2^3) per byte
    n = len2
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


def gzip_bytes(data: bytes, chunk: int = CHUNK) -> bytes:
    """The whole stream at once, serially (tests, small layers)."""
    out = [HEADER]
    crc = 0
    for start in range(0, len(data), chunk):
        d = deflate_chunk(data[start : start + chunk])
        out.append(d.data)
        crc = crc32_combine(crc, d.crc, d.length)
    out.append(trailer(crc, len(data)))
    return b"".join(out)


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Exactly `n` bytes unless the stream ends first: chunk boundaries, and so the output,
    must not depend on how a stream (a pipe, a reassembled tar) happens to cut its reads."""
    data = src.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    have = len(data)
    while have < n and (more := src.read(n - have)):
        parts.append(more)
        have += len(more)
    return b"".join(parts)


@dataclass
class Compressed:
    """What a compression streamed: filled in as it goes, final once the stream ended."""

    size: int = 0
    digest: str = ""


async def gzip_stream(
    open_tar: Callable[[], BinaryIO], result: Compressed, progress: Callable[[int], None],
    parallel: int = 4, chunk: int = CHUNK, deflaters: Executor | None = None,
) -> AsyncIterator[bytes]:
    """Stream the tar `open_tar()` reads as gzip: up to `parallel` chunks deflate at once in
    threads, pieces come out in order, each hashed in a thread while the caller sends it.
    `progress(n)` is told the tar bytes read so far; `result` gets the compressed size and
    sha256 digest at the end. `deflaters` runs the deflating (the loop's default executor
    if None): one pool as wide as the CPUs, shared by all layers, keeps them from crowding it."""
    loop = asyncio.get_running_loop()
    hasher = hashlib.sha256(HEADER)
    src = await asyncio.to_thread(open_tar)
    pending: deque[asyncio.Future[Deflated]] = deque()
    hashing: asyncio.Future[None] | None = None
    try:
        crc = 0
        total = 0
        eof = False
        yield HEADER
        size = len(HEADER)
        while True:
            while not eof and len(pending) < parallel:
                data = await asyncio.to_thread(_read_full, src, chunk)
                if not data:
                    eof = True
                    break
                pending.append(loop.run_in_executor(deflaters, deflate_chunk, data))
            if not pending:
                break
            d = await pending.popleft()
            crc = crc32_combine(crc, d.crc, d.length)
            total += d.length
            size += len(d.data)
            if hashing is not None:
                await hashing
            hashing = loop.run_in_executor(None, hasher.update, d.data)
            progress(total)
            yield d.data
        if hashing is not None:
            await hashing
            hashing = None
        tail = trailer(crc, total)
        hasher.update(tail)
        size += len(tail)
        result.size = size
        result.digest = "sha256:" + hasher.hexdigest()
        yield tail
    finally:
        for fut in pending:
            fut.cancel()
        if hashing is not None:
            await asyncio.wait([hashing])
        await asyncio.to_thread(src.close)
