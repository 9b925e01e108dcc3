"""The local driver's directories: `<root>/<name>/_data`, made whole or not at all, and the
filesystem its options name mounted there (blocking: call every method in a thread).

Removal renames the volume's directory aside (`.removing-<hex>-<name>`, a name no volume can
have) before anything is deleted, so a removal cut short never leaves half the data under
the volume's name for a later create to adopt; `sweep` at start-up finishes (or, when the row
is still there, undoes) what a crash interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from dockyard.errors import Internal
from dockyard.linux.fs import remove_tree
from dockyard.linux.mount import is_mounted, mount_points, perform, unmount
from dockyard.model.mountoptions import mount_calls
from dockyard.model.volumes import LocalOptions, mountpoint

log = logging.getLogger(__name__)

_ASIDE = ".removing-"
_HEX = 16  # characters of the random part of a name set aside
_STACKED = 8  # mounts on one _data beyond which unmounting is given up


class LocalVolumes:
    def __init__(self, root: Path) -> None:
        self._root = root

    def mountpoint(self, name: str) -> Path:
        return Path(mountpoint(str(self._root), name))

    def make(self, name: str) -> Path:
        """Create the volume's directories. A failure leaves none. A directory already there
        has no row (the caller holds the names): it is stale, set aside, never adopted."""
        base = self._root / name
        self._root.mkdir(mode=0o701, parents=True, exist_ok=True)
        if os.path.lexists(base):
            log.warning("volume %s: a directory without a volume was there; removing it", name)
            self.remove(name)
        try:
            base.mkdir(mode=0o701)
            data = base / "_data"
            data.mkdir(mode=0o755)
            os.chmod(data, 0o755)  # umask aside: dockerd's _data is 0755
        except OSError as exc:
            with contextlib.suppress(Internal):
                remove_tree(base)
            raise Internal(f"create {name}: {exc.strerror or exc}") from exc
        return data

    # ---- the mounted filesystem ------------------------------------------------------

    def is_mounted(self, name: str) -> bool:
        return is_mounted(str(self.mountpoint(name)))

    def mount(self, name: str, options: LocalOptions) -> None:
        """Mount what `options` name on the volume's `_data`: all of it or nothing (a failed
        propagation or read-only step unmounts the first)."""
        target = str(self.mountpoint(name))
        if not options.device:
            raise Internal(f"error while mounting volume '{target}': missing device in volume options")
        calls = mount_calls(options.device, target, options.type, options.o)
        try:
            for i, call in enumerate(calls):
                try:
                    perform(call)
                except Internal:
                    if i:
                        unmount(target, lazy=True)
                    raise
        except Internal as exc:
            raise Internal(f"error while mounting volume '{target}': failed to mount local volume: {exc.message}") from exc

    def unmount(self, name: str) -> None:
        """Unmount the volume's `_data` (detached: a container's namespace may still hold it)."""
        target = str(self.mountpoint(name))
        for _ in range(_STACKED):  # mounted more than once over (by hand, or a crash between steps)
            if not is_mounted(target):
                return
            unmount(target, lazy=True)
        raise Internal(f"error unmounting volume {name}: {target} is still mounted")

    # ---- removal ---------------------------------------------------------------------

    def set_aside(self, name: str) -> Path | None:
        """Unmount, then rename the volume's directory aside (atomic): where it went, None
        when there was none. After this the name is free and the data no longer under it."""
        self.unmount(name)
        base = self._root / name
        aside = self._root / f"{_ASIDE}{secrets.token_hex(_HEX // 2)}-{name}"
        try:
            os.rename(base, aside)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Internal(f"remove {name}: {exc.strerror or exc}") from exc
        return aside

    def put_back(self, name: str, aside: Path) -> None:
        """Undo `set_aside` (the row could not be deleted)."""
        os.rename(aside, self._root / name)

    def discard(self, aside: Path) -> None:
        """Delete a directory set aside, with all data in it. Nothing may be mounted below:
        the delete would go into a bind-mounted host directory."""
        prefix = os.path.realpath(aside) + "/"
        for point in mount_points():
            if point.startswith(prefix):
                unmount(point, lazy=True)
        remove_tree(aside)

    def remove(self, name: str) -> None:
        """Remove the volume's directories and all data in them."""
        aside = self.set_aside(name)
        if aside is not None:
            self.discard(aside)

    def sweep(self, names: Iterable[str]) -> int:
        """Start-up, `names` the volumes that have rows: a removal set aside but not committed
        (its row is there, its directory is not) is put back; every other directory set aside,
        and every volume directory without a row (a create or removal cut short), goes.
        How many were removed."""
        kept = set(names)
        if not self._root.is_dir():
            return 0
        removed = 0
        for entry in sorted(self._root.iterdir()):
            if entry.name.startswith(_ASIDE):
                name = entry.name[len(_ASIDE) + _HEX + 1 :]
                if name in kept and not os.path.lexists(self._root / name):
                    log.info("volume %s: its removal was not finished; keeping it", name)
                    self.put_back(name, entry)
                    continue
            elif entry.name in kept:
                continue
            else:
                self.unmount(entry.name)
            try:
                self.discard(entry)
                removed += 1
            except Internal:
                log.exception("volume directory %s: could not be removed", entry.name)
        return removed

    def size(self, name: str) -> int:
        """Bytes used under the volume's data, symlinks not followed."""
        total = 0
        for top, _dirs, files in os.walk(self.mountpoint(name)):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(top, f)).st_blocks * 512
        return total
