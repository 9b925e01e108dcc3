"""A tar-split index: how to rebuild a layer's exact tar from its unpacked directory.

While a layer tar is applied, every byte of the stream is either file content the layer
directory now holds (a regular member's data) or something else: headers (PAX and GNU long
names included), padding, the end-of-archive blocks and whatever follows them, the data of
members we do not keep as files (sparse files, aufs bookkeeping). The index keeps the second
kind verbatim and, for the first, a reference (path in the layer dir, size). So `docker save`
and push give back the very bytes that were loaded (the same diff id) while each layer's
content is stored once, in its directory.

A file replaced later in the same tar (the same path twice, a directory replaced by a file)
no longer holds the content an earlier member referenced: the extraction hands its bytes to
`Recorder.preserve` before removing it, and they go to a side file (`tar-split.extra`).

On disk: a fixed header (magic, tar size, sha256 of the tar, length of the body), the body
(gzip of the records below), then the relocations (reference number -> offset in the side
file), plain. Records: b"R" len bytes | b"F" len path size | b"E". Integers are LEB128.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.streams.compression import Readable

MAGIC = b"DYTSPLT1"
_HEADER = struct.Struct(">8sQ32sQ")  # magic, tar size, digest, body length
HEADER_SIZE = _HEADER.size
_FLUSH_AT = 8 << 20  # raw bytes buffered before some are written out
_LOOKAHEAD = 2 << 20  # what tarfile may have read beyond the member it handed us (well over)


class BadIndex(Exception):
    """An index that does not parse; callers surface it as a broken layer."""


@dataclass(frozen=True)
class Raw:
    data: bytes


@dataclass(frozen=True)
class FileRef:
    number: int  # the n-th reference of the index, from 0
    path: str  # relative to the layer's diff dir
    size: int


@dataclass(frozen=True)
class IndexHeader:
    tar_size: int
    digest: str  # "sha256:<hex>" of the tar
    body_size: int


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(source: Readable) -> int:
    shift = result = 0
    while True:
        b = source.read(1)
        if not b:
            raise BadIndex("index ends inside a number")
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise BadIndex("number too long")


def _read_exact(source: Readable, n: int) -> bytes:
    parts = []
    while n:
        chunk = source.read(min(n, 1 << 20))
        if not chunk:
            raise BadIndex("index ends inside a record")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class Recorder:
    """Sits between the plain tar stream and tarfile: what tarfile reads passes through and
    is recorded; `content` tells which bytes are a member's data held as a file.

    Bytes are buffered from the last decided offset on (tarfile reads ahead of the member it
    yields), so a content range can still be cut out of them when it is announced."""

    def __init__(self, source: Readable, out: BinaryIO, extra: BinaryIO) -> None:
        self._source = source
        self._out = out  # where the index goes: header placeholder first
        self._extra = extra
        self._extra_size = 0
        self._relocated: list[tuple[int, int]] = []
        self._refs: dict[str, tuple[int, int]] = {}  # path -> (number, size), live ones
        self._count = 0  # references made
        self._buf = bytearray()
        self._buf_start = 0  # stream offset of _buf[0]
        self._skip = 0  # bytes still to drop as they arrive (content already announced)
        self.count = 0  # bytes read from the source
        out.write(b"\0" * HEADER_SIZE)
        self._body = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=3, mtime=0)

    # -- the file object tarfile reads ------------------------------------------------------

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        view = memoryview(data)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            self._buf_start += dropped
            view = view[dropped:]
        self._buf += view
        if len(self._buf) > _FLUSH_AT:
            self._emit_raw(len(self._buf) - _LOOKAHEAD)
        return data

    # -- what the extraction tells us ------------------------------------------------------

    def content(self, start: int, size: int, path: str) -> None:
        """The member data at stream offset `start` (`size` bytes) is now the file `path`."""
        if size <= 0:
            return
        if start < self._buf_start:
            raise BadIndex(f"{path}: content announced after it was recorded")
        self._emit_raw(start - self._buf_start)
        self._body.write(b"F" + _uvarint(len(encoded := _encode(path))) + encoded + _uvarint(size))
        self._refs[path] = (self._count, size)
        self._count += 1
        have = len(self._buf)
        if have >= size:
            del self._buf[:size]
            self._buf_start += size
        else:
            self._buf.clear()
            self._buf_start += have
            self._skip = size - have

    def preserve(self, path: str, source: BinaryIO | None) -> None:
        """`path` is about to be replaced or removed: keep the bytes a reference to it
        stands for (`source` reads the file; None when it holds no reference)."""
        ref = self._refs.pop(path, None)
        if ref is None or source is None:
            return
        number, size = ref
        offset = self._extra_size
        left = size
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise BadIndex(f"{path} is shorter than its member")
            self._extra.write(chunk)
            left -= len(chunk)
        self._extra_size += size
        self._relocated.append((number, offset))

    def referenced(self, path: str) -> bool:
        return path in self._refs

    def referenced_under(self, directory: str) -> list[str]:
        prefix = directory + "/"
        return [p for p in self._refs if p.startswith(prefix)]

    def finish(self, digest: str) -> None:
        """The stream has been read to its end (`count` bytes hashing to `digest`)."""
        if self._skip:
            raise BadIndex("stream ended inside a member's data")
        self._emit_raw(len(self._buf))
        self._body.write(b"E")
        self._body.close()
        end = self._out.tell()
        for number, offset in self._relocated:
            self._out.write(_uvarint(number) + _uvarint(offset))
        self._out.seek(0)
        self._out.write(_HEADER.pack(MAGIC, self.count, bytes.fromhex(digest.removeprefix("sha256:")), end - HEADER_SIZE))

    def _emit_raw(self, n: int) -> None:
        if n <= 0:
            return
        self._body.write(b"R" + _uvarint(n))
        self._body.write(self._buf[:n])
        del self._buf[:n]
        self._buf_start += n


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def read_header(source: Readable) -> IndexHeader:
    raw = source.read(HEADER_SIZE)
    if len(raw) != HEADER_SIZE:
        raise BadIndex("index too short")
    magic, tar_size, digest, body = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise BadIndex("not a tar-split index")
    return IndexHeader(tar_size, "sha256:" + digest.hex(), body)


def read_relocations(data: bytes) -> dict[int, int]:
    """The relocation table (what follows the body): reference number -> side-file offset."""
    source = io.BytesIO(data)
    out: dict[int, int] = {}
    while source.tell() < len(data):
        number = _read_uvarint(source)
        out[number] = _read_uvarint(source)
    return out


def records(body: Readable) -> Iterator[Raw | FileRef]:
    """The records of a (decompressed) index body, up to its end mark."""
    number = 0
    try:
        while True:
            kind = body.read(1)
            if kind == b"R":
                yield Raw(_read_exact(body, _read_uvarint(body)))
            elif kind == b"F":
                path = _read_exact(body, _read_uvarint(body)).decode("utf-8", "surrogateescape")
                yield FileRef(number, path, _read_uvarint(body))
                number += 1
            elif kind == b"E":
                return
            else:
                raise BadIndex(f"bad record kind {kind!r}")
    except (OSError, EOFError, zlib.error) as exc:
        raise BadIndex(f"corrupt index: {exc}") from exc
