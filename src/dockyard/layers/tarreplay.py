"""A layer's tar rebuilt from its directory and tar-split index (layers/tarsplit.py).

The replay is a forward-only file object: it hashes and counts what it hands out and, at the
end, fails unless the bytes are exactly the tar that was applied (size and diff id), so a
layer directory changed behind our back can never be saved or pushed as the original.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.errors import Internal
from dockyard.layers.tarsplit import (
    HEADER_SIZE,
    BadIndex,
    FileRef,
    IndexHeader,
    read_header,
    read_relocations,
    records,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

INDEX_NAME = "tar-split"
EXTRA_NAME = "tar-split.extra"
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BrokenLayer(Internal):
    """A layer's directory and index no longer give back its tar."""


def index_header(index: Path) -> IndexHeader:
    try:
        with index.open("rb") as f:
            return read_header(f)
    except (OSError, BadIndex) as exc:
        raise BrokenLayer(f"layer index {index}: {exc}") from exc


def open_file_in(root_fd: int, rel: str) -> int:
    """An fd for the regular file `rel` below `root_fd`, never through a symlink."""
    parts = rel.split("/")
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


class TarReplay(io.RawIOBase):
    """Reads as the layer tar whose index is `base/tar-split` and files are `base/diff`."""

    def __init__(self, base: Path, expected_digest: str | None = None) -> None:
        super().__init__()
        self._base = base
        index = base / INDEX_NAME
        try:
            self._index = index.open("rb")
        except OSError as exc:
            raise BrokenLayer(f"layer {base.name}: no index: {exc}") from exc
        try:
            self.header = read_header(self._index)
            self._index.seek(HEADER_SIZE + self.header.body_size)
            self._relocated = read_relocations(self._index.read())
            self._index.seek(HEADER_SIZE)
            self._root = os.open(base / "diff", _DIR_FLAGS)
        except (OSError, BadIndex) as exc:
            self._index.close()
            raise BrokenLayer(f"layer {base.name}: {exc}") from exc
        if expected_digest is not None and expected_digest != self.header.digest:
            self.close()
            raise BrokenLayer(f"layer {base.name}: index is for {self.header.digest}, not {expected_digest}")
        self._extra: io.BufferedReader | None = None
        self._hash = hashlib.sha256()
        self._count = 0
        self._pending = memoryview(b"")
        self._chunks = self._produce()

    @property
    def size(self) -> int:
        return self.header.tar_size

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._index.close()
            if self._extra is not None:
                self._extra.close()
            if hasattr(self, "_root"):
                os.close(self._root)
        super().close()

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _produce(self) -> Iterator[bytes]:
        body = gzip.GzipFile(fileobj=_Limited(self._index, self.header.body_size), mode="rb")
        try:
            for record in records(body):
                if isinstance(record, FileRef):
                    yield from self._file(record)
                else:
                    yield self._see(record.data)
        except BadIndex as exc:
            raise BrokenLayer(f"layer {self._base.name}: {exc}") from exc
        digest = "sha256:" + self._hash.hexdigest()
        if self._count != self.header.tar_size or digest != self.header.digest:
            raise BrokenLayer(
                f"layer {self._base.name}: rebuilt tar is {self._count} bytes with digest {digest}, "
                f"not {self.header.tar_size} bytes with {self.header.digest}"
            )

    def _see(self, data: bytes) -> bytes:
        self._hash.update(data)
        self._count += len(data)
        return data

    def _file(self, ref: FileRef) -> Iterator[bytes]:
        offset = self._relocated.get(ref.number)
        if offset is not None:
            if self._extra is None:
                self._extra = (self._base / EXTRA_NAME).open("rb")
            self._extra.seek(offset)
            source = self._extra
            yield from self._exactly(source, ref)
            return
        try:
            fd = open_file_in(self._root, ref.path)
        except OSError as exc:
            raise BrokenLayer(f"layer {self._base.name}: {ref.path}: {exc}") from exc
        with open(fd, "rb", buffering=0) as f:
            if os.fstat(fd).st_size != ref.size:
                raise BrokenLayer(f"layer {self._base.name}: {ref.path} changed size")
            yield from self._exactly(f, ref)

    def _exactly(self, source: io.RawIOBase | io.BufferedReader, ref: FileRef) -> Iterator[bytes]:
        left = ref.size
        while left:
            chunk = source.read(min(left, _CHUNK))
            if not chunk:
                raise BrokenLayer(f"layer {self._base.name}: {ref.path} is shorter than its member")
            left -= len(chunk)
            yield self._see(chunk)


class _Limited(io.RawIOBase):
    """The index body only (the relocations follow it)."""

    def __init__(self, source: io.BufferedReader, size: int) -> None:
        super().__init__()
        self._source = source
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._left)
        if n <= 0:
            return 0
        data = self._source.read(n)
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)
