"""Small filesystem operations with crash-safe semantics, and trees removed without recursion.

A container controls the shape of what it leaves behind: a directory 1,000 deep makes Python's
recursive `shutil.rmtree` and `os.walk` raise RecursionError (and its paths can outgrow PATH_MAX).
Everything here that visits a tree walks it iteratively through directory fds, one at a time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import Internal

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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


def overwrite(path: Path, data: bytes) -> None:
    """Replace a file's content in place: a file bind-mounted into a running container
    (its /etc/hosts, /etc/resolv.conf) keeps its inode, so a rename would go unseen there."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _first_subdir(fd: int) -> str | None:
    """Unlink every non-directory in the directory `fd`; the name of one subdirectory left."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
    return None


def remove_tree(path: Path | str, *, dir_fd: int | None = None) -> None:
    """`rm -rf path` (relative to `dir_fd` if given), depth-first through one directory fd
    at a time, however deep the tree.

    Going back up opens `..` and checks it is the directory we came from, so a tree that
    changes under us (it should not: nothing runs in it any more) makes us stop, not stray.
    """
    try:
        top = os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path, dir_fd=dir_fd)
        return
    try:
        fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    trail: list[tuple[str, tuple[int, int]]] = []  # (name in parent, parent identity) per level
    try:
        while True:
            child = _first_subdir(fd)
            if child is not None:
                try:
                    child_fd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                trail.append((child, _identity(os.fstat(fd))))
                os.close(fd)
                fd = child_fd
                continue
            if not trail:
                break
            name, parent_id = trail.pop()
            parent_fd = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent_fd
            if _identity(os.fstat(fd)) != parent_id:
                raise Internal(f"removing {path}: the tree changed while it was being removed")
            os.rmdir(name, dir_fd=fd)
    except OSError as exc:
        raise Internal(f"removing {path}: {exc}") from exc
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path, dir_fd=dir_fd)


def _list(fd: int) -> tuple[list[os.stat_result], list[str]]:
    files, subdirs = [], []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.name)
                else:
                    files.append(entry.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue
    return files, subdirs


def walk_files(top: Path) -> Iterator[os.stat_result]:
    """lstat of every non-directory under `top` (symlinks not followed), depth-first through
    one directory fd at a time: no recursion, no path length limit."""
    try:
        fd = os.open(top, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return
    # Per level entered: its subdirectories still to visit, and its identity.
    levels: list[tuple[list[str], tuple[int, int]]] = []
    try:
        files, subdirs = _list(fd)
        yield from files
        levels.append((subdirs, _identity(os.fstat(fd))))
        while levels:
            pending, _ = levels[-1]
            if not pending:
                levels.pop()
                if levels:
                    parent_fd = os.open("..", _DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = parent_fd
                    if _identity(os.fstat(fd)) != levels[-1][1]:
                        raise Internal(f"walking {top}: the tree changed while it was being read")
                continue
            try:
                child = os.open(pending.pop(), _DIR_FLAGS, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                continue
            os.close(fd)
            fd = child
            files, subdirs = _list(fd)
            yield from files
            levels.append((subdirs, _identity(os.fstat(fd))))
    finally:
        os.close(fd)


class Trash:
    """Deleting a tree takes milliseconds; renaming it away takes microseconds.

    `discard` renames a directory into the trash (same filesystem) so it is gone from
    its place at once; `empty` deletes what the trash holds, off the request path. A tree
    that cannot be deleted stays in the trash (logged) and is tried again next time: it
    never stops the daemon.
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
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise Internal(f"cannot move {path} to the trash: {exc}") from exc
            remove_tree(path)  # another filesystem: delete in place

    def empty(self) -> int:
        """Delete what the trash holds (blocking); the number of entries left behind."""
        left = 0
        with self._emptying:
            for entry in self.root.iterdir():
                try:
                    remove_tree(entry)
                except Internal as exc:
                    left += 1
                    log.error("trash: %s (will try again)", exc.message)
        return left


class SpaceReserve:
    """A file that holds some disk space back, given up the moment the disk is full: then
    the database can still record the state changes (an exit, a removal) that free space.
    It is taken again once there is room."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def take(self) -> bool:
        """Hold the space (blocking); False when the disk has not that much room to spare."""
        if self.path.exists():
            return True
        st = os.statvfs(self.path.parent)
        if st.f_bavail * st.f_frsize < 2 * self.size:
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        return True

    def give_up(self) -> bool:
        """Free the space; False if there was none held."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
