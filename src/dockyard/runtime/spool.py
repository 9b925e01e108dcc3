"""conmon's k8s-file log, used as a spool in the exec root, read from a saved cursor.

conmon writes `<dir>/ctr.log` with `--log-size-max`: when the file would pass that size,
conmon closes it, opens `ctr.log.tmp` and renames it over `ctr.log` (conmon's
reopen_k8s_file). A file nobody holds is gone at that rename. So the reader:
- holds every spool file it has seen by a hard link, `ctr.log.held.<n>` (n counts up), as
  well as by an fd: a file survives conmon's renames, also while the daemon is down, and
  the files are read in order. It looks for a new `ctr.log` before each read, so a burst
  that makes conmon rotate several times before the shipper catches up loses nothing
  (up to MAX_HELD files; past that, new files are left to conmon and their lines lost);
- moves on from a file only once a newer one exists and its own is read to the end
  (conmon closed it before making the next);
- keeps its place in `ctr.log.cursor` (the spool file's inode and offset, and LogPath's
  inode and size after the records shipped so far), rewritten in place after each write;
- punches the consumed part out of the file it reads, so the exec root (tmpfs) holds only
  what is not shipped yet.

While the daemon is down nobody links conmon's new files: the file being read and the one
conmon writes survive, a file in between does not. Lines are lost only if the container
writes more than SPOOL_MAX (plus the rest of the held file) during the absence.

Everything here blocks: call it from a thread. notice() may also be called from the event
loop (a few syscalls) while a thread reads: the held files are kept under a lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from dockyard.linux.sparse import PAGE, punch_hole

log = logging.getLogger(__name__)

SPOOL_NAME = "ctr.log"
# conmon's --log-size-max for the spool: how much conmon keeps in one file, so what a
# daemon's absence can cost at most is bounded (see above) and so is the exec root's use.
SPOOL_MAX = 16 * 1024 * 1024
MAX_HELD = 8  # spool files held at once: a shipper this far behind drops lines
BLOCK = 1 << 20
_CURSOR_SIZE = 84  # four fixed-width numbers: rewritten in place by one pwrite
_HELD = SPOOL_NAME + ".held."


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


@dataclass(frozen=True)
class _Held:
    number: int  # n of its link's name
    fd: int
    inode: int


class Spool:
    """The reading side of one container's spool directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / SPOOL_NAME
        self.cursor_path = directory / (SPOOL_NAME + ".cursor")
        self._files: list[_Held] = []  # the one being read first, then newer ones
        self._next = 0
        self._offset = 0
        self._punched = 0
        self._cursor_fd = -1
        self._dropping = False
        self._lock = threading.Lock()
        self.punching = True

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def inode(self) -> int:
        return self._files[0].inode if self._files else 0

    @property
    def held(self) -> int:
        return len(self._files)

    def _link(self, number: int) -> Path:
        return self.directory / f"{_HELD}{number}"

    def exists(self) -> bool:
        return self.path.exists() or any(self.directory.glob(_HELD + "*"))

    def open(self) -> Cursor | None:
        """Take up where the saved cursor left off; the saved cursor is returned."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cursor_fd = os.open(self.cursor_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        saved = Cursor.decode(os.pread(self._cursor_fd, _CURSOR_SIZE, 0))
        numbered = []
        for link in self.directory.glob(_HELD + "*"):
            suffix = link.name[len(_HELD) :]
            if suffix.isdigit():
                numbered.append(int(suffix))
        for number in sorted(numbered):
            fd = os.open(self._link(number), os.O_RDWR | os.O_CLOEXEC)  # RDWR: to punch holes
            self._files.append(_Held(number, fd, os.fstat(fd).st_ino))
        self._next = max(numbered, default=-1) + 1
        inodes = [h.inode for h in self._files]
        if saved is not None and saved.spool_inode in inodes:
            # Files before the cursor's were finished (their links not yet removed).
            while self._files[0].inode != saved.spool_inode:
                self._drop_first()
            self._offset = self._punched = saved.spool_offset
        elif saved is not None and saved.spool_offset and not self._files:
            log.warning("%s: the spool was replaced while nobody read it; lines may be lost", self.directory)
        self._notice()
        return saved

    def notice(self) -> None:
        """Hold the file conmon writes now if it is a new one."""
        with self._lock:
            self._notice()

    def _notice(self) -> None:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return
        if any(h.inode == inode for h in self._files):
            return
        if len(self._files) >= MAX_HELD:
            if not self._dropping:
                log.warning("%s: conmon writes faster than the log is shipped: dropping lines", self.directory)
                self._dropping = True
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        inode = os.fstat(fd).st_ino  # perhaps newer still than the one stat saw: fine
        if any(h.inode == inode for h in self._files):
            os.close(fd)
            return
        number = self._next
        self._next += 1
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N links the open file itself, even if
        # conmon renamed another over ctr.log meanwhile. os.link uses plain link(2), which
        # does not follow, unless a dir fd is given: hence the (unused) src_dir_fd.
        root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.link(f"/proc/self/fd/{fd}", self._link(number), src_dir_fd=root, follow_symlinks=True)
        except FileNotFoundError:
            pass  # replaced and unlinked already: the fd alone keeps it readable
        finally:
            os.close(root)
        self._files.append(_Held(number, fd, inode))
        self._dropping = False

    def read(self, *, final: bool = False) -> bytes:
        """The whole lines after the offset, about a block of them (b"" when none yet).
        `final`: the writer is gone, so a last line without its newline is taken too."""
        with self._lock:
            if not self._files:
                return b""
            fd = self._files[0].fd
        data = os.pread(fd, BLOCK, self._offset)  # the first file changes only in advance()
        cut = data.rfind(b"\n") + 1
        if final and cut < len(data) and len(data) < BLOCK:
            return data + b"\n"
        return data[:cut]

    def consumed(self, length: int) -> None:
        """`length` bytes after the offset are shipped (a final chunk's added newline
        counts for nothing)."""
        self._offset = min(self._offset + length, os.fstat(self._files[0].fd).st_size)

    def newer(self) -> bool:
        """Whether a newer file than the one being read exists: that one is complete."""
        return len(self._files) > 1

    def advance(self) -> None:
        """Go on to the next file; call once the current one is read to its end."""
        with self._lock:
            if len(self._files) > 1:
                self._drop_first()
                self._offset = self._punched = 0

    def _drop_first(self) -> None:
        first = self._files.pop(0)
        os.close(first.fd)
        with contextlib.suppress(FileNotFoundError):
            self._link(first.number).unlink()

    def save(self, log_inode: int, log_size: int) -> None:
        """Record how far the records got, then give back the spool space they used."""
        cursor = Cursor(self.inode, self._offset, log_inode, log_size)
        os.pwrite(self._cursor_fd, cursor.encode(), 0)
        upto = self._offset // PAGE * PAGE
        if self.punching and self._files and upto > self._punched:
            if not punch_hole(self._files[0].fd, self._punched, upto - self._punched):
                self.punching = False
            self._punched = upto

    def close(self) -> None:
        for held in self._files:
            os.close(held.fd)
        self._files = []
        if self._cursor_fd >= 0:
            os.close(self._cursor_fd)
            self._cursor_fd = -1

    def remove(self) -> None:
        """Delete the spool once everything in it is shipped (or the container is gone)."""
        self.close()
        doomed = [self.path, self.cursor_path, self.path.with_name(SPOOL_NAME + ".tmp")]
        doomed += list(self.directory.glob(_HELD + "*"))
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
