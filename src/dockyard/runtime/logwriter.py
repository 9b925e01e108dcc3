"""Appending json-file records to LogPath, rotated as dockerd's loggerutils.LogFile does.

A file is rotated once it has reached max-size, before the next record is written (so
it may pass max-size by one record): `.1` becomes `.2` and so on, the oldest beyond
max-file is deleted, LogPath becomes `.1`, and with compress `.1` is gzipped in a thread
(the next rotation waits for it). Unlike dockerd, LogPath never disappears during a
rotation: the old file is linked as `.1` first and a new file is renamed over LogPath,
so a reader that opens LogPath by name (kubelet, `tail -F`) always finds it.

Renames run on the event loop thread, appends in a worker thread: a reader that opens
the files on the loop sees them in a consistent state, and `position` only counts whole
records that are already in the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from dockyard.runtime.logfile import BLOCK, LogFiles

log = logging.getLogger(__name__)

_MODE = 0o640  # as dockerd


@dataclass(frozen=True)
class WritePosition:
    """How far the writer got: `seq` counts rotations since it opened, `size` is the
    length of the current LogPath."""

    seq: int
    size: int


def _last_stamp(data: bytes) -> bytes:
    i = data.rfind(b'"time":"')
    if i < 0:
        return b""
    j = data.find(b'"', i + 8)
    return data[i + 8 : j] if j > 0 else b""


def gzip_header(last_stamp: bytes) -> bytes:
    """A gzip member header as Go's gzip.Writer writes it with dockerd's Extra field."""
    extra = json.dumps({"lastTime": last_stamp.decode("ascii", "replace")}, separators=(",", ":")).encode()
    # ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unknown, then XLEN and the field.
    return b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + len(extra).to_bytes(2, "little") + extra


def compress_file(source: Path, last_stamp: bytes) -> None:
    """`x.1` -> `x.1.gz` (blocking). The gzip file appears complete (renamed from a
    temporary name) before the plain one is removed: a reader finds one or the other."""
    target = source.with_name(source.name + ".gz")
    partial = source.with_name(source.name + ".gz.tmp")
    with open(source, "rb") as src:
        if not last_stamp:
            size = os.fstat(src.fileno()).st_size
            last_stamp = _last_stamp(os.pread(src.fileno(), min(size, 65536), max(0, size - 65536)))
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        crc, length = 0, 0
        try:
            with open(partial, "wb") as out:
                os.chmod(partial, _MODE)
                out.write(gzip_header(last_stamp))
                while block := src.read(BLOCK):
                    crc = zlib.crc32(block, crc)
                    length += len(block)
                    out.write(deflater.compress(block))
                out.write(deflater.flush())
                out.write(crc.to_bytes(4, "little") + (length & 0xFFFFFFFF).to_bytes(4, "little"))
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    source.unlink()


class LogWriter:
    """The one writer of a container's LogPath (and of its rotated files)."""

    def __init__(self, files: LogFiles, max_size: int) -> None:
        self.files = files
        self.max_size = max_size
        self._fd = -1
        self._seq = 0
        self._size = 0
        self._last_stamp = b""
        self._compressing: asyncio.Future[None] | None = None

    # -- blocking (call in a thread) --

    def open(self) -> None:
        """Open LogPath for appending, finishing a compression a crash interrupted."""
        self.files.path.parent.mkdir(parents=True, exist_ok=True)
        if self.files.compress:
            self._finish_compression()
        self._fd = os.open(self.files.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _MODE)
        self._size = os.fstat(self._fd).st_size

    def _finish_compression(self) -> None:
        plain, gz = self.files.rotated(1), self.files.rotated(1, gz=True)
        gz.with_name(gz.name + ".tmp").unlink(missing_ok=True)
        if plain.exists():
            if gz.exists():
                plain.unlink()  # the gzip file was complete: only the removal was missed
            else:
                compress_file(plain, b"")

    def append(self, data: bytes) -> None:
        """Write whole records (the caller keeps them within the rotation limit)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written
        stamp = _last_stamp(data[-256:]) or _last_stamp(data)
        if stamp:
            self._last_stamp = stamp

    def truncate(self, size: int) -> None:
        """Cut LogPath back to `size` (records written after the last saved cursor)."""
        if size < self._size:
            os.ftruncate(self._fd, size)
            self._size = size

    # -- on the event loop --

    @property
    def position(self) -> WritePosition:
        return WritePosition(self._seq, self._size)

    @property
    def inode(self) -> int:
        return os.fstat(self._fd).st_ino

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """What may go into the current file now, and what must wait for a rotation."""
        if self._size >= self.max_size and self._size > 0:
            return b"", data
        need = self.max_size - self._size  # records that start before this go in now
        cut = data.find(b"\n", need - 1) + 1 if need > 0 else 0
        if cut <= 0 or cut >= len(data):
            return data, b""
        return data[:cut], data[cut:]

    async def rotate(self) -> None:
        if self._compressing is not None:
            await self._wait_compression()
        files = self.files
        path = files.path
        fresh = path.with_name(path.name + ".new")
        fresh.unlink(missing_ok=True)
        if files.max_file >= 2:
            gz = files.compress
            files.rotated(files.max_file - 1, gz=gz).unlink(missing_ok=True)
            for k in range(files.max_file - 1, 1, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(files.rotated(k - 1, gz=gz), files.rotated(k, gz=gz))
            files.rotated(1).unlink(missing_ok=True)
            os.link(path, files.rotated(1))
        fd = os.open(fresh, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _MODE)
        os.replace(fresh, path)
        os.close(self._fd)
        self._fd, self._seq, self._size = fd, self._seq + 1, 0
        if files.max_file >= 2 and files.compress:
            loop = asyncio.get_running_loop()
            self._compressing = loop.run_in_executor(None, compress_file, files.rotated(1), self._last_stamp)

    async def _wait_compression(self) -> None:
        assert self._compressing is not None
        try:
            await asyncio.shield(self._compressing)
        except (OSError, zlib.error) as exc:  # the plain file stays: nothing lost
            log.warning("compressing %s failed: %s", self.files.rotated(1), exc)
        self._compressing = None

    async def aclose(self) -> None:
        if self._compressing is not None:
            await self._wait_compression()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
