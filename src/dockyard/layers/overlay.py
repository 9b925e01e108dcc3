"""Layer directories on disk, and the overlayfs mounts that stack them.

Each layer is `overlay/<cache_id>/diff`, with `tar-split` beside it (and `tar-split.extra`
when the tar replaced its own files): what rebuilds the layer's exact tar. A container's
writable layer adds `work/` and `merged/` beside its `diff/`. Cache ids are short so that the mount
options of a deep image stay under the kernel's one-page limit.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

from dockyard.errors import Internal, InvalidArgument
from dockyard.layers.tarlayer import AppliedLayer, SplitOutput, apply_layer_tar
from dockyard.layers.tarreplay import EXTRA_NAME, INDEX_NAME, TarReplay, index_header
from dockyard.linux import mount as linux_mount
from dockyard.linux.fs import Trash, remove_tree, walk_files

_PAGE = 4096
_REPLAY_BUFFER = 1 << 20


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

    def extract(self, cache_id: str, stream: BinaryIO, expected_diff: str | None = None) -> AppliedLayer:
        """Unpack a layer tar into a new layer directory with its tar-split index; the
        directory is removed on failure, or when the tar's digest is not `expected_diff`."""
        base = self.root / cache_id
        target = self.diff(cache_id)
        target.mkdir(parents=True)
        try:
            partial = base / f"{INDEX_NAME}.partial"
            # No fsync: the layer's files are not synced either (nor are dockerd's), a killed
            # daemon loses nothing the kernel holds, and after a power cut `system check`
            # finds an index that lost its bytes. A sync here also flushed every dirty page
            # of the pull with it (ext4's ordered journal): 16 ms and more per layer.
            with partial.open("w+b") as index, (base / EXTRA_NAME).open("w+b") as extra:
                applied = apply_layer_tar(stream, target, SplitOutput(index, extra))
                kept = extra.tell() > 0
            if not kept:
                (base / EXTRA_NAME).unlink()
            if expected_diff is not None and applied.diff_id != expected_diff:
                raise InvalidArgument(
                    f"layer verification failed: expected diff id {expected_diff}, got {applied.diff_id}"
                )
            partial.rename(base / INDEX_NAME)
            return applied
        except BaseException:
            self.remove(cache_id)
            raise

    def has_index(self, cache_id: str) -> bool:
        return (self.root / cache_id / INDEX_NAME).is_file()

    def tar_size(self, cache_id: str) -> int:
        """The exact length of the layer's tar, from its index (raises BrokenLayer)."""
        return index_header(self.root / cache_id / INDEX_NAME).tar_size

    def index_digest(self, cache_id: str) -> str:
        """The diff id the layer's index rebuilds (raises BrokenLayer)."""
        return index_header(self.root / cache_id / INDEX_NAME).digest

    def open_tar(self, cache_id: str, diff_id: str) -> BinaryIO:
        """The layer's tar as it was applied, rebuilt and verified while read. Buffered: a
        read returns all it asks for (tarfile counts a short read as the end)."""
        return cast(BinaryIO, io.BufferedReader(TarReplay(self.root / cache_id, diff_id), _REPLAY_BUFFER))

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
