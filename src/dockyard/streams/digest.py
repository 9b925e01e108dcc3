"""Streams that hash and count what passes through them: one pass gives the digest."""

from __future__ import annotations

import errno
import hashlib
from typing import BinaryIO

from dockyard.streams.compression import CHUNK, Readable


class _Digesting:
    """sha256 and length of the bytes seen; a forward-only file object for tarfile."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def _see(self, data: bytes) -> None:
        self._hash.update(data)
        self.count += len(data)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    # The rest only satisfies tarfile's file-object protocol; stream mode never calls them.
    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> object:
        raise OSError(errno.ESPIPE, "stream is not seekable")

    def close(self) -> object:
        return None


class DigestingReader(_Digesting):
    def __init__(self, source: Readable) -> None:
        super().__init__()
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._see(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream (tar padding included)."""
        while self.read(CHUNK):
            pass

    def write(self, b: bytes, /) -> object:
        raise OSError(errno.EBADF, "read-only stream")


class DigestingWriter(_Digesting):
    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out

    def write(self, b: bytes, /) -> int:
        self._out.write(b)
        self._see(b)
        return len(b)

    def read(self, size: int = -1, /) -> bytes:
        raise OSError(errno.EBADF, "write-only stream")
