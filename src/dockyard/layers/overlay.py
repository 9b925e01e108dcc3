"""Layer directories on disk, and the overlayfs mounts that stack them.

Each layer is `overlay/<cache_id>/diff`. A container's writable layer adds
`work/` and `merged/` beside its `diff/`. Cache ids are short so that the mount
options of a deep image stay under the kernel's one-page limit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import Internal
from dockyard.layers.tarlayer import AppliedLayer, apply_layer_tar
from dockyard.linux import mount as linux_mount
from dockyard.linux.fs import Trash, remove_tree, walk_files

_PAGE = 4096


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI ChainID: the layer's identity given everything beneath it."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    parent: str | None = None
    for diff in diff_ids:
        parent = chain_id(parent, diff)
        out.append(parent)
    return out


class LayerDirs:
    """Blocking filesystem work on layer directories; callers run it in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "empty").mkdir(exist_ok=True)

    def diff(self, cache_id: str) -> Path:
        return self.root / cache_id / "diff"

    def merged(self, cache_id: str) -> Path:
        return self.root / cache_id / "merged"

    def new_cache_id(self) -> str:
        return secrets.token_hex(10)

    def extract(self, cache_id: str, stream: BinaryIO) -> AppliedLayer:
        """Unpack a layer tar into a new layer directory; the directory is removed on failure."""
        target = self.diff(cache_id)
        target.mkdir(parents=True)
        try:
            return apply_layer_tar(stream, target)
        except BaseException:
            self.remove(cache_id)
            raise

    def create_rw(self, cache_id: str) -> None:
        base = self.root / cache_id
        for sub in ("diff", "work", "merged"):
            (base / sub).mkdir(parents=True, exist_ok=True)

    def _unmounted(self, cache_id: str) -> Path | None:
        """The layer's directory, detached from any mount; None if it is gone already."""
        base = self.root / cache_id
        if not base.exists():
            return None
        linux_mount.unmount(str(base / "merged"), lazy=True)
        return base

    def remove(self, cache_id: str) -> None:
        base = self._unmounted(cache_id)
        if base is None:
            return
        remove_tree(base)

    def size(self, cache_id: str) -> int:
        """Bytes of files and symlinks (their targets' length) in a layer's diff directory,
        hard links counted once: dockerd's DiffSize."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for st in walk_files(self.diff(cache_id)):
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        return total

    def discard(self, cache_id: str, trash: Trash) -> None:
        """Like remove, but moves the directory to the trash to be deleted later."""
        base = self._unmounted(cache_id)
        if base is not None:
            trash.discard(base)

    def mount(self, rw_cache_id: str, lower_cache_ids: Sequence[str]) -> Path:
        """Mount a container's rootfs: its writable layer over the image layers (top first)."""
        base = self.root / rw_cache_id
        merged = base / "merged"
        lowers = [str(self.diff(c)) for c in lower_cache_ids] or [str(self.root / "empty")]
        options = f"lowerdir={':'.join(lowers)},upperdir={base / 'diff'},workdir={base / 'work'}"
        if len(options) >= _PAGE:
            raise Internal(f"too many layers to mount ({len(lowers)})")
        if os.path.ismount(merged):
            return merged
        linux_mount.mount("overlay", str(merged), "overlay", 0, options)
        return merged

    def unmount(self, rw_cache_id: str) -> None:
        merged = self.merged(rw_cache_id)
        try:
            linux_mount.unmount(str(merged))
        except Internal:
            pass  # busy (a reader still holds a file): detached below, gone once it lets go
        if os.path.ismount(merged):
            linux_mount.unmount(str(merged), lazy=True)
