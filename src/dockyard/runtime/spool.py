"""conmon's k8s-file log, used as a spool in the exec root, read from a saved cursor.

conmon writes `<dir>/ctr.log` with `--log-size-max`: when the file would pass that size,
conmon opens `ctr.log.tmp` and renames it over `ctr.log` (conmon's reopen_k8s_file), after
closing the old file. The reader therefore:
- holds the file it reads by a hard link, `ctr.log.shipping`, as well as by its fd: the
  old file survives conmon's rename even while the daemon is down, and is finished first;
- switches to the new `ctr.log` only once the path names another file and its own is read
  to the end (nothing more can be written to it then);
- keeps its place in `ctr.log.cursor` (the spool file's inode and offset, and LogPath's
  inode and size after the records shipped so far), rewritten in place after each write;
- punches the consumed part out of the spool file, so the exec root (tmpfs) holds only
  what is not shipped yet, while conmon's own limit bounds the spool if nobody reads.

Everything here blocks: call it from a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dockyard.linux.sparse import PAGE, punch_hole

log = logging.getLogger(__name__)

SPOOL_NAME = "ctr.log"
# conmon's --log-size-max for the spool. While the daemon is up the spool holds only what
# is not shipped yet; while it is down, conmon keeps at least this much before its second
# rotation would drop the middle file: lines beyond that are what a long absence costs.
SPOOL_MAX = 16 * 1024 * 1024
BLOCK = 1 << 20
_CURSOR_SIZE = 84  # four fixed-width numbers: rewritten in place by one pwrite


@dataclass(frozen=True)
class Cursor:
    spool_inode: int
    spool_offset: int
    log_inode: int
    log_size: int

    def encode(self) -> bytes:
        return b"%20d %20d %20d %20d\n" % (self.spool_inode, self.spool_offset, self.log_inode, self.log_size)

    @staticmethod
    def decode(data: bytes) -> Cursor | None:
        parts = data.split()
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            return None
        a, b, c, d = (int(p) for p in parts)
        return Cursor(a, b, c, d)


class Spool:
    """The reading side of one container's spool directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_NAME
        self.held = directory / (SPOOL_NAME + ".shipping")
        self.cursor_path = directory / (SPOOL_NAME + ".cursor")
        self._fd = -1
        self._inode = 0
        self._offset = 0
        self._punched = 0
        self._cursor_fd = -1
        self.punching = True

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def inode(self) -> int:
        return self._inode

    def exists(self) -> bool:
        return self.path.exists() or self.held.exists()

    def open(self) -> Cursor | None:
        """Take up where the saved cursor left off; the saved cursor is returned."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cursor_fd = os.open(self.cursor_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        saved = Cursor.decode(os.pread(self._cursor_fd, _CURSOR_SIZE, 0))
        for candidate in (self.held, self.path):
            try:
                fd = os.open(candidate, os.O_RDWR | os.O_CLOEXEC)  # RDWR: to punch holes
            except FileNotFoundError:
                continue
            self._take(fd)
            if candidate is self.path:
                self._hold()
            if saved is not None and saved.spool_inode == self._inode:
                self._offset = self._punched = saved.spool_offset
            elif saved is not None and candidate is self.path and saved.spool_offset:
                log.warning("%s: the spool was replaced while nobody read it; lines may be lost", self.directory)
            break
        return saved

    def _take(self, fd: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._inode, self._offset, self._punched = fd, os.fstat(fd).st_ino, 0, 0

    def _hold(self) -> None:
        """Link the file being read as `ctr.log.shipping` (replacing the previous one)."""
        partial = self.held.with_name(self.held.name + ".tmp")
        partial.unlink(missing_ok=True)
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N links the open file itself, even if
        # conmon renamed another over ctr.log meanwhile. os.link uses plain link(2), which
        # does not follow, unless a dir fd is given: hence the (unused) src_dir_fd.
        root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.link(f"/proc/self/fd/{self._fd}", partial, src_dir_fd=root, follow_symlinks=True)
        except FileNotFoundError:
            return  # already replaced and unlinked: the fd alone keeps it readable
        finally:
            os.close(root)
        os.replace(partial, self.held)

    def read(self, *, final: bool = False) -> bytes:
        """The whole lines after the offset, about a block of them (b"" when none yet).
        `final`: the writer is gone, so a last line without its newline is taken too."""
        if self._fd < 0:
            return b""
        data = os.pread(self._fd, BLOCK, self._offset)
        cut = data.rfind(b"\n") + 1
        if final and cut < len(data) and len(data) < BLOCK:
            return data + b"\n"
        return data[:cut]

    def consumed(self, length: int) -> None:
        """`length` bytes after the offset are shipped (in the read chunk's terms: a final
        chunk's added newline counts for nothing)."""
        self._offset = min(self._offset + length, os.fstat(self._fd).st_size)

    def replaced(self) -> bool:
        """Whether conmon writes another file now (or a first file appeared)."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False
        return inode != self._inode

    def switch(self) -> None:
        """Go on to the file conmon writes now; call once the current one is read to its end."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        self._take(fd)
        self._hold()

    def save(self, log_inode: int, log_size: int) -> None:
        """Record how far the records got, then give back the spool space they used."""
        cursor = Cursor(self._inode, self._offset, log_inode, log_size)
        os.pwrite(self._cursor_fd, cursor.encode(), 0)
        upto = self._offset // PAGE * PAGE
        if self.punching and upto > self._punched:
            if not punch_hole(self._fd, self._punched, upto - self._punched):
                self.punching = False
            self._punched = upto

    def close(self) -> None:
        for fd in (self._fd, self._cursor_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._cursor_fd = -1

    def remove(self) -> None:
        """Delete the spool once everything in it is shipped (or the container is gone)."""
        self.close()
        for path in (self.path, self.held, self.cursor_path, self.path.with_name(SPOOL_NAME + ".tmp")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
