"""`docker cp`, `docker diff`, `docker export`: a container's files in and out.

Every path is resolved inside the container's root, bind mounts included (layers/
containerfs.py, linux/rootpath.py); nothing from the container is executed. A stopped
container's root filesystem is mounted for as long as a copy reads it (engine/rootfs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.events import EventBus
from dockyard.engine.rootfs import RootfsMounts
from dockyard.engine.table import ContainerTable
from dockyard.engine.transfer import Body, spool, stream_from_thread
from dockyard.errors import Conflict, InvalidArgument
from dockyard.layers.changes import container_changes
from dockyard.layers.containerfs import (
    ContainerFS,
    MountPoint,
    export_rootfs,
    extract_archive,
    open_archive,
    stat_path,
)
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.rootpath import ContainerRoot
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.events import attributes_of
from dockyard.model.filechanges import FileChange
from dockyard.model.mounts import host_source, staged_paths
from dockyard.model.pathstat import PathStat
from dockyard.runtime.users import parse_group, parse_passwd, resolve_user


@dataclass(frozen=True)
class PathArchiveStream:
    stat: PathStat
    chunks: AsyncIterator[bytes]


class ArchiveService:
    def __init__(
        self,
        table: ContainerTable,
        mounts: RootfsMounts,
        dirs: LayerDirs,
        diff_dirs: Callable[[str], list[str]],
        files: Callable[[str], ContainerFiles],
        events: EventBus,
        tmp_dir: Path,
    ) -> None:
        self._table = table
        self._mounts = mounts
        self._dirs = dirs
        self._diff_dirs = diff_dirs  # image id -> its layer directories, top first
        self._files = files
        self._events = events
        self._tmp = tmp_dir

    def _fs(self, c: Container, rootfs: Path, label: str) -> ContainerFS:
        """The container as `docker cp` sees it: its root, its bind mounts and the host
        files the daemon mounts in (tmpfs mounts are not seen, as with dockerd)."""
        files = self._files(c.id)
        h = c.spec.host
        binds = []
        for index, m in enumerate(h.all_mounts):
            if m.type not in ("bind", "volume", "image"):
                continue
            source = host_source(m, files.volumes_root)
            if m.staged:
                # An image or a volume's part is there as a start staged it (engine/staging.py),
                # only while the container runs; a stopped one's is not mounted (yet).
                paths = staged_paths(str(files.bundle / "mounts"), index)
                source = paths.part if m.subpath else paths.image
                if not os.path.exists(source):
                    continue
            binds.append(MountPoint(m.destination, source, m.read_only or m.type == "image"))
        own = [
            MountPoint("/etc/resolv.conf", str(files.resolv)),
            MountPoint("/etc/hostname", str(files.hostname)),
            MountPoint("/etc/hosts", str(files.hosts)),
        ]
        taken = {m.destination for m in binds}
        return ContainerFS(rootfs, (*binds, *(m for m in own if m.destination not in taken)), h.readonly_rootfs, label)

    @staticmethod
    def _check_path(path: str) -> None:
        if "\0" in path:  # the kernel's paths end at a NUL: refused, not cut short
            raise InvalidArgument(f"invalid path {path!r}: it holds a NUL byte")

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        self._events.publish("container", action, c.id, attributes_of(c, **extra))

    async def stat(self, ref: str, path: str) -> PathStat:
        self._check_path(path)
        c = self._table.resolve(ref)
        async with self._mounts.lease(c) as rootfs:
            return await asyncio.to_thread(stat_path, self._fs(c, rootfs, ref), path)

    async def archive(self, ref: str, path: str) -> PathArchiveStream:
        """GET archive: the stat (for the header) now, the tar as it is read; the root
        filesystem stays mounted until the stream ends."""
        self._check_path(path)
        c = self._table.resolve(ref)
        rootfs = await self._mounts.acquire(c)
        try:
            source = await asyncio.to_thread(open_archive, self._fs(c, rootfs, ref), path)
        except BaseException:
            await self._mounts.release(c)
            raise

        async def chunks() -> AsyncIterator[bytes]:
            try:
                # aclosing: the producer thread has let go of the files before they close
                tar = stream_from_thread(source.write, "cp-archive")
                async with contextlib.aclosing(tar):
                    async for chunk in tar:
                        yield chunk
            finally:
                source.close()
                await self._mounts.release(c)

        self._emit(c, "archive-path", path=path)
        return PathArchiveStream(source.stat, chunks())

    async def extract(self, ref: str, path: str, body: Body, *, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
        """PUT archive: unpack an uploaded tar into the directory `path` in the container."""
        self._check_path(path)
        c = self._table.resolve(ref)
        spooled = await spool(body, self._tmp, "cp")
        try:
            async with self._mounts.lease(c) as rootfs:
                fs = self._fs(c, rootfs, ref)

                def work() -> int:
                    owner = self._owner(fs, c.spec.user) if copy_uid_gid and c.spec.user else None
                    with spooled.open("rb") as stream:
                        return extract_archive(
                            fs, path, stream, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, owner=owner
                        )

                await asyncio.to_thread(work)
        finally:
            spooled.unlink(missing_ok=True)
        self._emit(c, "extract-to-dir", path=path)

    @staticmethod
    def _owner(fs: ContainerFS, user: str) -> tuple[int, int]:
        """copyUIDGID: the container user's ids, from its own account files."""
        with ContainerRoot(fs.rootfs, fs.mounts) as root:
            passwd = (root.read_file("/etc/passwd") or b"").decode(errors="replace")
            group = (root.read_file("/etc/group") or b"").decode(errors="replace")
        resolved = resolve_user(user, parse_passwd(passwd), parse_group(group), ())
        return resolved.uid, resolved.gid

    async def changes(self, ref: str) -> tuple[FileChange, ...]:
        c = self._table.resolve(ref)
        upper = self._dirs.diff(c.rw_layer)
        lowers = [Path(p) for p in self._diff_dirs(c.image_id)]
        return await asyncio.to_thread(container_changes, upper, lowers)

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        c = self._table.resolve(ref)
        if c.state.status is ContainerStatus.DEAD:
            raise Conflict(f"You cannot export container {c.id} which is Dead")

        async def chunks() -> AsyncIterator[bytes]:
            async with self._mounts.lease(c) as rootfs:
                tar = stream_from_thread(lambda out: export_rootfs(rootfs, out), "export")
                async with contextlib.aclosing(tar):  # the producer lets go before the unmount
                    async for chunk in tar:
                        yield chunk

        self._emit(c, "export")
        return chunks()
