"""The local driver's directories: `<root>/<name>/_data`, made whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from dockyard.errors import Internal
from dockyard.model.volumes import mountpoint


class LocalVolumes:
    def __init__(self, root: Path) -> None:
        self._root = root

    def mountpoint(self, name: str) -> Path:
        return Path(mountpoint(str(self._root), name))

    def make(self, name: str) -> Path:
        """Create the volume's directories (blocking: call in a thread). A failure leaves none."""
        base = self._root / name
        try:
            self._root.mkdir(mode=0o701, parents=True, exist_ok=True)
            base.mkdir(mode=0o701)
            data = base / "_data"
            data.mkdir(mode=0o755)
            os.chmod(data, 0o755)  # umask aside: dockerd's _data is 0755
        except FileExistsError:
            return base / "_data"  # a row went missing but the data did not: keep it
        except OSError as exc:
            with contextlib.suppress(OSError):
                shutil.rmtree(base)
            raise Internal(f"create {name}: {exc.strerror or exc}") from exc
        return data

    def remove(self, name: str) -> None:
        """Remove the volume's directories and all data in them (blocking)."""
        base = self._root / name
        try:
            shutil.rmtree(base)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise Internal(f"remove {name}: {exc.strerror or exc}") from exc

    def size(self, name: str) -> int:
        """Bytes used under the volume's data (blocking), symlinks not followed."""
        total = 0
        for top, _dirs, files in os.walk(self.mountpoint(name)):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(top, f)).st_blocks * 512
        return total
