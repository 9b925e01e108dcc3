"""Container root filesystems: mounted while anyone needs them, unmounted after the last.

A running container holds its overlay mount; so does a `docker cp` or `export` of a stopped
one for as long as it reads. Counting the holders in one place means an exit during a copy
does not pull the filesystem from under it, and a copy never leaves a mount behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from dockyard.layers.overlay import LayerDirs
from dockyard.model.containers import Container


class RootfsMounts:
    def __init__(self, dirs: LayerDirs, layers_of: Callable[[str], list[str]]) -> None:
        self._dirs = dirs
        self._layers_of = layers_of  # image id -> its layer directories, top first
        self._holders: dict[str, int] = {}
        # One lock for every mount and unmount: each takes a millisecond or two, and one
        # lock cannot be dropped while someone still waits on it.
        self._lock = asyncio.Lock()

    async def acquire(self, c: Container) -> Path:
        """Mount (or share the mount of) `c`'s root filesystem: where it is on the host."""
        async with self._lock:
            if self._holders.get(c.rw_layer, 0) == 0:
                path = await asyncio.to_thread(self._dirs.mount, c.rw_layer, self._layers_of(c.image_id))
            else:
                path = self._dirs.merged(c.rw_layer)
            self._holders[c.rw_layer] = self._holders.get(c.rw_layer, 0) + 1
            return path

    def adopt(self, c: Container) -> None:
        """A container found running at start-up already holds its mount."""
        self._holders[c.rw_layer] = self._holders.get(c.rw_layer, 0) + 1

    async def release(self, c: Container) -> None:
        """One holder less; the last one unmounts (so does a release nobody counted: a
        container that ended while the daemon was away)."""
        async with self._lock:
            left = self._holders.get(c.rw_layer, 0) - 1
            if left > 0:
                self._holders[c.rw_layer] = left
                return
            self._holders.pop(c.rw_layer, None)
            # Shielded: a release runs in cleanup, often of a cancelled task (a client that
            # hung up); the unmount must happen all the same, not be dropped from the queue.
            await asyncio.shield(asyncio.to_thread(self._dirs.unmount, c.rw_layer))

    @contextlib.asynccontextmanager
    async def lease(self, c: Container) -> AsyncIterator[Path]:
        path = await self.acquire(c)
        try:
            yield path
        finally:
            await self.release(c)
