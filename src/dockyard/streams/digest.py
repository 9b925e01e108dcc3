"""A reader that hashes and counts what passes through it: one pass gives the digest."""

from __future__ import annotations

import errno
import hashlib
from typing import BinaryIO

from dockyard.streams.compression import CHUNK, Readable


class DigestingReader:
    """sha256 of every byte read; also a read-only, forward-only file object for tarfile."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream (tar padding included)."""
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    # The rest only satisfies tarfile's file-object protocol; stream mode never calls them.
    def write(self, b: bytes, /) -> object:
        raise OSError(errno.EBADF, "read-only stream")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> object:
        raise OSError(errno.ESPIPE, "stream is not seekable")

    def close(self) -> object:
        return None


class DigestingWriter:
    """Hashes every byte tarfile writes on its way to the real output."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, b: bytes, /) -> int:
        self._out.write(b)
        self._hash.update(b)
        self.count += len(b)
        return len(b)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def read(self, size: int = -1, /) -> bytes:
        raise OSError(errno.EBADF, "write-only stream")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> object:
        raise OSError(errno.ESPIPE, "stream is not seekable")

    def close(self) -> object:
        return None
