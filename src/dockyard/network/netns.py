"""Network namespaces made ahead of time, so a container start does not wait for one.

The kernel takes several milliseconds to build a network namespace. A small pool
keeps a few ready (loopback up), each pinned by a bind mount of its nsfs inode at
<exec-root>/netns/<name>; the runtime joins one by path. Releasing unmounts and
unlinks it; the kernel tears the namespace down once its last process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import os
import secrets
import socket
import struct
import threading
from pathlib import Path
from types import TracebackType

from dockyard.errors import Internal
from dockyard.linux import mount as linux_mount
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]


def _loopback_up() -> None:
    """`ip link set lo up` in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def create_netns(path: Path) -> None:
    """Make a new network namespace pinned at `path` (blocking, a few milliseconds).

    unshare() moves only the calling thread, so the work runs in a thread of its
    own that ends afterwards: nothing else in the daemon changes namespace.
    """
    errors: list[BaseException] = []

    def work() -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise Internal(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
            _loopback_up()
            path.touch(mode=0o444)
            linux_mount.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path), "none", MS_BIND)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=work, name="netns")
    worker.start()
    worker.join()
    if errors:
        with contextlib.suppress(OSError):
            path.unlink()
        raise errors[0]


def release_netns(path: Path) -> None:
    linux_mount.unmount(str(path), lazy=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class NetnsPool(Component):
    """Keeps `size` namespaces ready; `take` hands one out and starts a refill."""

    def __init__(self, root: Path, size: int = 2) -> None:
        self.root = root
        self._size = size
        self._ready: list[Path] = []
        self._refilling = False
        self._filling: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks = Tasks("netns")
        root.mkdir(parents=True, exist_ok=True)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """At shutdown: the spare namespaces go; those of running containers stay."""
        self._closing = True
        if self._filling is not None and not self._filling.done():
            # Not cancelled: its thread would finish the namespace anyway, and leave it mounted.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._filling)
        try:
            await super().__aexit__(kind, exc, tb)
        finally:
            ready, self._ready = self._ready, []
            for path in ready:
                await asyncio.to_thread(release_netns, path)

    def keep_only(self, in_use: set[str]) -> None:
        """Release namespaces nobody uses (left by a previous daemon), then fill up."""
        for entry in self.root.iterdir():
            if str(entry) not in in_use and entry not in self._ready:
                release_netns(entry)
        self._refill()

    def _new_path(self) -> Path:
        return self.root / secrets.token_hex(8)

    async def take(self) -> Path:
        if self._ready:
            path = self._ready.pop()
        else:
            path = self._new_path()
            await asyncio.to_thread(create_netns, path)
        self._refill()
        return path

    def _refill(self) -> None:
        if self._refilling or not self._tasks.active or len(self._ready) >= self._size:
            return
        self._refilling = True
        self._filling = self._tasks.spawn(self._fill(), "fill")

    async def _fill(self) -> None:
        try:
            while not self._closing and len(self._ready) < self._size:
                path = self._new_path()
                await asyncio.to_thread(create_netns, path)
                self._ready.append(path)
        finally:
            self._refilling = False

    async def release(self, path: str) -> None:
        if path:
            await asyncio.to_thread(release_netns, Path(path))
