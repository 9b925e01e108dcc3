"""Small filesystem operations with crash-safe semantics."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = False) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Trash:
    """Deleting a tree takes milliseconds; renaming it away takes microseconds.

    `discard` renames a directory into the trash (same filesystem) so it is gone from
    its place at once; `empty` deletes what the trash holds, off the request path.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._emptying = threading.Lock()

    def discard(self, path: Path) -> None:
        try:
            os.rename(path, self.root / f"{path.name}-{secrets.token_hex(4)}")
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(path, ignore_errors=True)  # another filesystem: delete in place

    def empty(self) -> None:
        with self._emptying:
            for entry in self.root.iterdir():
                shutil.rmtree(entry, ignore_errors=True)
