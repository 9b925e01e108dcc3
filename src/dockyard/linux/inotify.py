"""inotify(7) on a directory: wake a waiter when a file in it changes, without polling."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from pathlib import Path

from dockyard.errors import Internal

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC


class DirectoryWatch:
    """Events on the entries of one directory; `changed()` returns after the next one.

    Events are not told apart: a waiter looks at the files again after each wake-up,
    so a burst of writes costs one wake-up, and an event for another file a spurious one.
    """

    def __init__(self, directory: Path, mask: int = IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE) -> None:
        fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise Internal(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        if _libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise Internal(f"inotify_add_watch {directory}: {os.strerror(err)}")
        self._fd = fd
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """End the current wait, or the next one, early (from the event loop thread)."""
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def drain(self) -> None:
        """Forget the events seen so far (call before looking at the files)."""
        while True:
            try:
                if not os.read(self._fd, 65536):
                    return
            except BlockingIOError:
                return

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for an event after the last drain(), a wake(), or `timeout` seconds."""
        if self._woken:
            self._woken = False
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._waiter = ready

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self._fd, wake)
        try:
            async with asyncio.timeout(timeout):
                await ready
        except TimeoutError:
            pass
        finally:
            self._waiter = None
            self._woken = False
            loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            os.close(fd)
            return
        # Closing an inotify instance waits for the kernel's SRCU grace period (10-20 ms
        # measured here when two close in a row): off the loop, not on the exit path.
        loop.run_in_executor(None, os.close, fd)
