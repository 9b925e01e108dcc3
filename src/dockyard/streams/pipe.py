"""Bytes from the event loop to one blocking reader thread, with a bound on what waits.

A pull feeds each layer's download into a pipe while a thread decompresses and unpacks it:
the download stalls when the thread falls `limit` bytes behind, never the other way round
(the reader blocks on an empty pipe). `BlobTee` is the thread's side of a download: the bytes
of the partial file an earlier attempt left, then the pipe's, each appended to that file, all
hashed and counted, so one pass gives the unpacked layer, the resumable file and the digest.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import hashlib
import threading
from typing import BinaryIO

from dockyard.errors import StorageFull

_LIMIT = 8 << 20


class Pipe:
    def __init__(self, limit: int = _LIMIT) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._offset = 0  # bytes of the first chunk already read
        self._closed = False
        self._error: BaseException | None = None
        self._abandoned = False
        self._space = asyncio.Event()
        self._space.set()

    # -- the event loop's side --------------------------------------------------------------

    async def write(self, data: bytes) -> bool:
        """Queue `data`, waiting while the pipe is full. False: the reader has gone."""
        while True:
            with self._cond:
                if self._abandoned:
                    return False
                if self._size < self._limit:
                    self._chunks.append(bytes(data))
                    self._size += len(data)
                    self._cond.notify()
                    return True
                self._space.clear()
            await self._space.wait()

    def close(self, error: BaseException | None = None) -> None:
        """No more data; the reader sees `error` (if any) once it has read what is queued."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._error = error
            self._cond.notify_all()

    # -- the thread's side ------------------------------------------------------------------

    def read(self, size: int = -1, /) -> bytes:
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
            head = self._chunks[0]
            start = self._offset
            if 0 <= size < len(head) - start:
                # Part of the first chunk: an offset into it, not a copy of the rest.
                chunk = head[start : start + size]
                self._offset += size
            else:
                self._chunks.popleft()
                self._offset = 0
                chunk = head[start:] if start else head
            self._size -= len(chunk)
        self._wake()
        return chunk

    def abandon(self) -> None:
        """The reader stops (it failed): writers are told instead of waiting for ever."""
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._offset = 0
        self._wake()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._space.set)
        except RuntimeError:
            pass  # the loop is closing: no writer is waiting any more


class BlobTee:
    """A download as one stream: `have` bytes from `file` (an earlier attempt's), then what
    `pipe` brings, which is appended to `file`. Counts and hashes everything read."""

    def __init__(self, file: BinaryIO, have: int, pipe: Pipe) -> None:
        self._file = file
        self._replay = have
        self._pipe = pipe
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        if self._replay:
            data = self._file.read(self._replay if size < 0 else min(size, self._replay))
            if not data:
                raise EOFError("partial download shrank while it was read")
            self._replay -= len(data)
        else:
            data = self._pipe.read(size)
            if data:
                try:
                    self._file.write(data)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:  # not to be taken for a corrupt stream
                        raise StorageFull(f"writing the download: {exc}") from exc
                    raise
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
