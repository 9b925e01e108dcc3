"""Mount staging: the sources a start prepares on the host before the runtime binds them in.

Two kinds of mount need more than a path handed to the runtime:
- `--mount type=image`: the image's filesystem, read-only. Its layer directories stacked by
  an overlay with lower layers only (read-only by construction); a one-layer image is a
  read-only bind of its layer.
- a Subpath (VolumeOptions.Subpath, ImageOptions.Subpath): one directory or file of the
  volume or image. The path is resolved inside the source (linux/rootpath.py), never by the
  kernel from a string, so a symlink planted in a volume cannot lead the mount out of it; the
  file found is bound through its fd, so a swap after the check cannot either.

Each lives under the container's run dir (`<bundle>/mounts/<n>/`, model/mounts.staged_paths),
made at start and undone when the container exits, when a start fails, before `rm` removes
the bundle, and at daemon start-up for a container not running. Undoing reads the mount
table, not memory: what a crashed daemon staged is found the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from dockyard.engine.bundles import ContainerFiles
from dockyard.errors import Internal, InvalidArgument, NotFound
from dockyard.linux import mount as linux_mount
from dockyard.linux.rootpath import ContainerRoot
from dockyard.model.containers import Container
from dockyard.model.mounts import MountSpec, StagedPaths, host_source, staged_paths

log = logging.getLogger(__name__)

_PAGE = 4096  # the kernel's limit for one mount's options


class MountStaging:
    def __init__(self, files: Callable[[str], ContainerFiles], image_layers: Callable[[str], list[str]]) -> None:
        self._files = files
        self._image_layers = image_layers  # image id -> its layer directories, top first (NotFound when gone)

    async def stage(self, c: Container) -> dict[str, str]:
        """Prepare every staged mount of `c`: destination -> the host path to give the
        runtime. A failure leaves nothing staged."""
        if not any(m.staged for m in c.spec.host.all_mounts):
            return {}
        files = self._files(c.id)
        layers = {
            m.image_id: self._image_layers(m.image_id) for m in c.spec.host.all_mounts if m.type == "image"
        }
        try:
            return await asyncio.to_thread(_stage_all, c, files, layers)
        except BaseException:
            await self.release(c)
            raise

    async def release(self, c: Container) -> None:
        """Undo whatever is staged for `c` (nothing staged: nothing to do)."""
        root = self._files(c.id).bundle / "mounts"
        # Shielded: a release runs in cleanup, often of a cancelled task.
        await asyncio.shield(asyncio.to_thread(unstage, root))


def _stage_all(c: Container, files: ContainerFiles, layers: Mapping[str, list[str]]) -> dict[str, str]:
    root = files.bundle / "mounts"
    unstage(root)  # what an earlier run left, should anything have
    out: dict[str, str] = {}
    for index, m in enumerate(c.spec.host.all_mounts):
        if not m.staged:
            continue
        paths = staged_paths(str(root), index)
        Path(paths.base).mkdir(parents=True, exist_ok=True)
        if m.type == "image":
            _mount_image(paths, layers[m.image_id])
            source = paths.image
        else:
            source = host_source(m, files.volumes_root)
        out[m.destination] = _bind_subpath(source, m, paths) if m.subpath else source
    return out


def _mount_image(paths: StagedPaths, layers: list[str]) -> None:
    target = paths.image
    os.mkdir(target, 0o755)
    if len(layers) > 1:
        options = f"lowerdir={':'.join(layers)}"
        if len(options) >= _PAGE:
            raise Internal(f"too many layers to mount ({len(layers)})")
        linux_mount.mount("overlay", target, "overlay", linux_mount.MS_RDONLY, options)
        return
    source = layers[0] if layers else _empty_dir(paths)
    linux_mount.mount(source, target, "", linux_mount.MS_BIND)
    linux_mount.mount("", target, "", linux_mount.MS_BIND | linux_mount.MS_REMOUNT | linux_mount.MS_RDONLY)


def _empty_dir(paths: StagedPaths) -> str:
    """What an image without layers mounts: nothing."""
    os.mkdir(paths.empty, 0o555)
    return paths.empty


def _bind_subpath(base: str, m: MountSpec, paths: StagedPaths) -> str:
    """Bind `m.subpath` of the directory `base` at the staged path, in dockerd's words when
    it does not exist or leads out of `base`."""
    combined = os.path.join(base, m.subpath)
    # dockerd's check first, for its words: symlinks followed as the host would.
    resolved_base = os.path.realpath(base)
    resolved = os.path.realpath(combined)
    if not os.path.lexists(resolved):
        raise NotFound(f"cannot access path {combined}: lstat {combined}: no such file or directory")
    if os.path.commonpath([resolved_base, resolved]) != resolved_base:
        raise InvalidArgument(
            f"path concatenation escapes the base directory, base: {resolved_base}, subpath: {m.subpath}"
        )
    # The bind itself: resolved again inside `base` by fds, whatever changed meanwhile.
    try:
        with ContainerRoot(base) as inside, inside.resolve(m.subpath, follow=True) as entry:
            fd = entry.open_dir() if entry.is_dir else entry.open_file(os.O_PATH)
    except OSError as exc:
        raise NotFound(f"cannot access path {combined}: {exc.strerror or exc}") from exc
    try:
        target = paths.part
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        linux_mount.mount(f"/proc/self/fd/{fd}", target, "", linux_mount.MS_BIND)
    finally:
        os.close(fd)
    if m.type == "image":
        # A bind of a read-only mount is writable unless made read-only itself.
        linux_mount.mount("", target, "", linux_mount.MS_BIND | linux_mount.MS_REMOUNT | linux_mount.MS_RDONLY)
    return target


def _mounts_under(root: str) -> list[str]:
    prefix = os.path.realpath(root).rstrip("/") + "/"  # mountinfo shows paths with symlinks resolved
    return [point for point in linux_mount.mount_points() if point.startswith(prefix)]


def unstage(root: Path) -> None:
    """Unmount everything under `root` (deepest first) and remove the staging directories.
    Blocking. Never removes what it could not unmount: a mount still there (of a volume's
    part, say) is an error, not a tree to delete."""
    if not root.exists():
        return
    for _ in range(8):  # stacked mounts on one point need one unmount each
        points = _mounts_under(str(root))
        if not points:
            break
        for point in sorted(points, key=len, reverse=True):
            linux_mount.unmount(point, lazy=True)
    left = _mounts_under(str(root))
    if left:
        raise Internal(f"staged mounts could not be unmounted: {', '.join(left)}")
    for entry in sorted(root.iterdir()):
        for item in (entry / "part", entry / "image", entry / "empty"):
            with contextlib.suppress(FileNotFoundError):
                if item.is_dir() and not item.is_symlink():
                    item.rmdir()
                else:
                    item.unlink()
        with contextlib.suppress(FileNotFoundError):
            entry.rmdir()
    with contextlib.suppress(FileNotFoundError):
        root.rmdir()
    log.debug("unstaged the mounts under %s", root)
