"""Compressed streams as Docker meets them: sniff the format by its magic bytes, then
read through it (as dockerd's DecompressStream). Layers and archives both use this."""

from __future__ import annotations

import bz2
import enum
import gzip
import importlib
import io
import lzma
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20
_SNIFF = 10


def _zstd_module() -> Any:
    """python-zstandard, where it is installed (it is optional: no binary is ever run)."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


_ZSTD = _zstd_module()


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


def _read_head(stream: Readable) -> bytes:
    head = b""
    while len(head) < _SNIFF and (more := stream.read(_SNIFF - len(head))):
        head += more
    return head


def decompressed(stream: Readable, what: str = "layer") -> BinaryIO:
    """The plain stream behind `stream` (gzip, bzip2, xz, zstd or none). Reading a corrupt
    stream raises EOFError, OSError, zlib.error or lzma.LZMAError; callers translate."""
    head = _read_head(stream)
    kind = sniff(head)
    if kind is Compression.ZSTD and _ZSTD is None:
        raise InvalidArgument(
            f"invalid {what}: zstd-compressed {what}s need the python zstandard module, which is not installed"
        )
    source = io.BufferedReader(_Prefixed(head, stream), CHUNK)
    plain: io.BufferedIOBase
    if kind is Compression.ZSTD:
        reader = _ZSTD.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        return cast(BinaryIO, io.BufferedReader(reader, CHUNK))
    if kind is Compression.GZIP:
        plain = gzip.GzipFile(fileobj=source, mode="rb")
    elif kind is Compression.BZIP2:
        plain = bz2.BZ2File(source)
    elif kind is Compression.XZ:
        plain = lzma.LZMAFile(source)  # noqa: SIM115 - the caller owns it
    else:
        plain = source
    return cast(BinaryIO, plain)
