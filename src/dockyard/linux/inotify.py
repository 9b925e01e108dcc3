"""inotify(7) on directories: wake a waiter when a file in one changes, without polling.

One inotify instance serves every watch of the daemon. Instances are few (the kernel's
fs.inotify.max_user_instances is 128 per user, shared with every other program of root)
and closing one waits for an SRCU grace period (10-20 ms here); watches are cheap (the
limit is ~190,000) and go away without a wait. An instance per container's log shipper
ran out at 64 running containers.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import Internal

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000  # the watch is gone (removed, or its directory deleted)
_IN_MASK_ADD = 0x20000000
CHANGES = IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE

_HEAD = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def parse_events(data: bytes) -> Iterator[tuple[int, int]]:
    """(watch descriptor, mask) of each event in what one read(2) of the instance returned."""
    offset = 0
    while offset + _HEAD.size <= len(data):
        wd, mask, _cookie, name_len = _HEAD.unpack_from(data, offset)
        yield wd, mask
        offset += _HEAD.size + name_len


class Inotify:
    """The daemon's inotify instance: `watch()` a directory, `close()` at the end.

    Created on the event loop that uses it; every method runs on that loop."""

    def __init__(self) -> None:
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise Internal(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self._fd = fd
        self._by_wd: dict[int, list[DirectoryWatch]] = {}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self.dispatch)

    def watch(self, directory: Path, mask: int = CHANGES) -> DirectoryWatch:
        """Watch the entries of `directory` for the events in `mask`."""
        # Two watches of one directory share the kernel's watch: IN_MASK_ADD widens its
        # mask to their union (never narrowed again: dispatch filters by each one's mask).
        wd = _libc.inotify_add_watch(self._fd, os.fsencode(directory), mask | _IN_MASK_ADD)
        if wd < 0:
            raise Internal(f"inotify_add_watch {directory}: {os.strerror(ctypes.get_errno())}")
        watch = DirectoryWatch(self, mask, int(wd))
        self._by_wd.setdefault(watch.wd, []).append(watch)
        return watch

    def dispatch(self) -> None:
        """Read every pending event and mark the watches it concerns."""
        while True:
            try:
                data = os.read(self._fd, 65536)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            for wd, mask in parse_events(data):
                if mask & IN_Q_OVERFLOW:  # events were lost: everyone looks again
                    for watches in self._by_wd.values():
                        for w in watches:
                            w.notify()
                    continue
                for w in self._by_wd.get(wd, ()):
                    if mask & (w.mask | IN_IGNORED):
                        w.notify()
                if mask & IN_IGNORED:
                    self._by_wd.pop(wd, None)

    def release(self, watch: DirectoryWatch) -> None:
        watches = self._by_wd.get(watch.wd)
        if watches is None or watch not in watches:
            return  # its directory was deleted: the kernel dropped the watch already
        watches.remove(watch)
        if watches:
            return  # the others keep the kernel's watch (with a mask that may be wider)
        del self._by_wd[watch.wd]
        if self._fd >= 0:
            _libc.inotify_rm_watch(self._fd, watch.wd)  # EINVAL if the kernel dropped it meanwhile

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._by_wd.clear()


class DirectoryWatch:
    """Events on the entries of one directory; `changed()` returns after the next one.

    Events are not told apart: a waiter looks at the files again after each wake-up,
    so a burst of writes costs one wake-up, and an event for another file a spurious one.
    """

    def __init__(self, inotify: Inotify, mask: int, wd: int) -> None:
        self._inotify = inotify
        self.mask = mask
        self.wd = wd
        self._pending = False  # an event came since the last drain()
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def notify(self) -> None:
        self._pending = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def wake(self) -> None:
        """End the current wait, or the next one, early (from the event loop thread)."""
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def drain(self) -> None:
        """Forget the events seen so far (call before looking at the files)."""
        self._inotify.dispatch()  # what the kernel holds for us is "seen so far" too
        self._pending = False

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for an event after the last drain(), a wake(), or `timeout` seconds."""
        if self._woken or self._pending:
            self._woken = False
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = ready
        try:
            async with asyncio.timeout(timeout):
                await ready
        except TimeoutError:
            pass
        finally:
            self._waiter = None
            self._woken = False

    def close(self) -> None:
        if self.wd >= 0:
            self._inotify.release(self)
            self.wd = -1
