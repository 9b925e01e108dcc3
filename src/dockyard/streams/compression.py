"""Compressed streams as Docker meets them: sniff the format by its magic bytes, then
read through it (as dockerd's DecompressStream). Layers and archives both use this."""

from __future__ import annotations

import bz2
import enum
import io
import lzma
import zlib
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

import zstandard
from zlib_ng import gzip_ng, zlib_ng

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20
# What reading a corrupt stream raises (EOFError aside: a cut stream): OSError from gzip's
# BadGzipFile and bz2, and the inflaters' own; zlib-ng's has a class of its own (its stub
# calls it an instance).
CORRUPT: tuple[type[Exception], ...] = (OSError, zlib.error, cast(type[Exception], zlib_ng.error), lzma.LZMAError)
_SNIFF = 10


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "zstd"


def sniff(head: bytes) -> Compression:
    """Which compressor wrote a stream that starts with `head` (10 bytes suffice)."""
    if head.startswith(b"\x1f\x8b"):
        return Compression.GZIP
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (
        b"\x31\x41\x59\x26\x53\x59",
        b"\x17\x72\x45\x38\x50\x90",
    ):
        return Compression.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Compression.XZ
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return Compression.ZSTD
    return Compression.NONE


class _Prefixed(io.RawIOBase):
    """Hands back the bytes sniffed off a stream's front, then the rest of it."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
        else:
            data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


class _ZstdFrames(io.RawIOBase):
    """zstd frames one after another, as `zstd -d` reads them. python-zstandard's own stream
    reader ends quietly inside a cut frame; a cut layer must be an error (EOFError, as gzip's),
    and corrupt data an OSError, as the other decompressors report it."""

    def __init__(self, source: Readable) -> None:
        super().__init__()
        self._source = source
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            data = self._source.read(CHUNK)
            if not data:
                if self._in_frame:
                    raise EOFError("zstd stream ended before the end of its frame")
                return 0
            self._pending = memoryview(self._feed(data))
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_frame = True
            try:
                out.append(self._frame.decompress(data))
            except zstandard.ZstdError as exc:
                raise OSError(f"corrupt zstd stream: {exc}") from exc
            data = b""
            if self._frame.eof:
                data = self._frame.unused_data
                self._frame = zstandard.ZstdDecompressor().decompressobj()
                self._in_frame = False
        return b"".join(out)


def _read_head(stream: Readable) -> bytes:
    head = b""
    while len(head) < _SNIFF and (more := stream.read(_SNIFF - len(head))):
        head += more
    return head


def decompressed(stream: Readable) -> BinaryIO:
    """The plain stream behind `stream` (gzip, bzip2, xz, zstd or none). Reading a corrupt
    stream raises EOFError, OSError or one of CORRUPT; callers translate."""
    head = _read_head(stream)
    kind = sniff(head)
    source = io.BufferedReader(_Prefixed(head, stream), CHUNK)
    plain: io.BufferedIOBase
    if kind is Compression.ZSTD:
        return cast(BinaryIO, io.BufferedReader(_ZstdFrames(source), CHUNK))
    if kind is Compression.GZIP:
        # zlib-ng's gzip reader (members, CRC and length checks in C) inflates twice as fast as
        # the stdlib's, with its errors: EOFError for a cut stream, BadGzipFile or zlib's error.
        plain = gzip_ng.GzipNGFile(fileobj=source, mode="rb")  # type: ignore[no-untyped-call]
    elif kind is Compression.BZIP2:
        plain = bz2.BZ2File(source)
    elif kind is Compression.XZ:
        plain = lzma.LZMAFile(source)  # noqa: SIM115 - the caller owns it
    else:
        plain = source
    return cast(BinaryIO, plain)
