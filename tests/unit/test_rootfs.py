"""engine.rootfs.RootfsMounts: mounted while held, unmounted after the last holder, always."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import cast

from dockyard.engine.rootfs import RootfsMounts
from dockyard.layers.overlay import LayerDirs
from dockyard.model.containers import Container, ContainerSpec, ContainerState


class _Dirs:
    """What RootfsMounts asks of LayerDirs, counted (the kernel part is tested elsewhere)."""

    def __init__(self) -> None:
        self.mounted: dict[str, int] = {}
        self.unmounts = 0
        self.slow = threading.Event()

    def mount(self, rw: str, lowers: list[str]) -> Path:
        self.mounted[rw] = self.mounted.get(rw, 0) + 1
        return Path("/merged") / rw

    def merged(self, rw: str) -> Path:
        return Path("/merged") / rw

    def unmount(self, rw: str) -> None:
        self.slow.wait(1)
        self.unmounts += 1
        self.mounted[rw] = 0


def _container() -> Container:
    return Container("c" * 64, "c", "2026-12-01T00:00:00Z", "sha256:i", ContainerSpec("busybox", "h"),
                     ContainerState(), "runc", "rw1")  # fmt: skip


def test_shared_while_held_and_unmounted_after_the_last() -> None:
    async def main() -> _Dirs:
        dirs = _Dirs()
        dirs.slow.set()
        mounts = RootfsMounts(cast(LayerDirs, dirs), lambda image: [])
        c = _container()
        await mounts.acquire(c)
        async with mounts.lease(c):
            assert dirs.mounted == {"rw1": 1}  # the second holder shares the mount
        assert dirs.unmounts == 0
        await mounts.release(c)
        return dirs

    dirs = asyncio.run(main())
    assert dirs.unmounts == 1 and dirs.mounted == {"rw1": 0}


def test_a_release_in_a_cancelled_task_still_unmounts() -> None:
    """A client hanging up cancels the stream whose cleanup releases the mount: the unmount
    must run even when it was still waiting for a worker thread."""

    async def main() -> _Dirs:
        import concurrent.futures

        dirs = _Dirs()
        dirs.slow.set()
        loop = asyncio.get_running_loop()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(pool)
        busy = threading.Event()
        blocker = loop.run_in_executor(None, busy.wait, 5)  # the only worker is taken
        mounts = RootfsMounts(cast(LayerDirs, dirs), lambda image: [])
        c = _container()
        dirs.mounted["rw1"] = 1  # held by a container found running
        mounts.adopt(c)
        releasing = asyncio.ensure_future(mounts.release(c))
        await asyncio.sleep(0.05)  # the unmount waits in the executor's queue
        releasing.cancel()
        busy.set()
        await blocker
        await asyncio.sleep(0.1)
        pool.shutdown(wait=True)
        return dirs

    assert asyncio.run(main()).unmounts == 1
