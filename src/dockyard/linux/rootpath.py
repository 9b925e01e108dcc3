"""Container paths resolved inside the container's root, as the container itself sees them.

The daemon reads and writes a container's files from the host (`docker cp`, archive, user
lookups), where a symlink the container planted (`/etc -> /`, `x -> ../../../etc`) would lead
a string-joined path out of the rootfs (CVE-2018-15664). Here every component is opened
relative to its parent's fd with O_NOFOLLOW, and symlinks are expanded by us: an absolute
target restarts at the container's root, `..` never climbs above it, and a symlink swapped in
mid-walk makes the open fail instead of being followed by the kernel.

openat2(RESOLVE_IN_ROOT) would do the walk in one call, but not the second half of the job: the
container's bind mounts are not in the rootfs the daemon mounted (runc makes them in the
container's own mount namespace). The mount table maps a destination to its host source, and
the walk steps into that source's root when it reaches the destination, so `cp` into a bind
mount works and `..` or a symlink leaves it back into the container, never into the host.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from dockyard.errors import Internal
from dockyard.model.pathstat import go_clean

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40  # the kernel's limit for one lookup (ELOOP past it)
_MAX_SCOPE_LINKS = 255  # moby's FollowSymlinkInScope limit


@dataclass(frozen=True)
class MountPoint:
    """One of the container's mounts seen from the host: `destination` in the container is
    `source` on the host (a directory or a single file)."""

    destination: str
    source: str
    read_only: bool = False


def _loop(path: str) -> OSError:
    return OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)


def components(path: str) -> list[str]:
    """A path's components; a trailing `/` becomes a final "." (it asks for a directory)."""
    parts = [p for p in path.split("/") if p]
    if path.endswith("/") and parts:
        parts.append(".")
    return parts


@dataclass
class _Level:
    """One directory on the resolved path: its fd (owned), container path and mount."""

    name: str
    fd: int
    path: str
    mount: MountPoint | None


class Entry:
    """A resolved container path. The object is `name` in the directory `parent_fd`, or, for
    `/`, a mount's root or a directory reached by `.`/`..`, the fd `self_fd` itself.
    Owns its fds: use it as a context manager."""

    def __init__(
        self,
        path: str,
        st: os.stat_result,
        mount: MountPoint | None,
        *,
        parent_fd: int | None = None,
        name: str = "",
        self_fd: int | None = None,
    ) -> None:
        self.path = path
        self.st = st
        self.mount = mount
        self.parent_fd = parent_fd
        self.name = name
        self.self_fd = self_fd

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self.parent_fd, self.self_fd):
            if fd is not None:
                os.close(fd)
        self.parent_fd = self.self_fd = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def open_dir(self) -> int:
        """A new O_RDONLY fd of this directory (never following a symlink)."""
        if self.self_fd is not None:
            return os.open(".", DIR_FLAGS, dir_fd=self.self_fd)
        assert self.parent_fd is not None
        return os.open(self.name, DIR_FLAGS, dir_fd=self.parent_fd)

    def open_file(self, flags: int = os.O_RDONLY) -> int:
        """A new fd of this non-directory, opened without following a symlink."""
        if self.self_fd is not None:
            # A file bind mount: the O_PATH fd pins it; reopening through /proc is exact.
            return os.open(f"/proc/self/fd/{self.self_fd}", flags | os.O_CLOEXEC)
        assert self.parent_fd is not None
        return os.open(self.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.parent_fd)


class ContainerRoot:
    """A container's filesystem as the container sees it: `rootfs` (the mounted overlay on
    the host) plus its bind mounts. Blocking; use it from a thread, as a context manager."""

    def __init__(
        self, rootfs: Path | str, mounts: Sequence[MountPoint] = (), *, read_only: bool = False
    ) -> None:
        self.read_only = read_only
        self._mounts: dict[str, MountPoint] = {}
        for m in mounts:
            self._mounts[go_clean("/" + m.destination)] = m
        self._mount_fds: dict[str, int] = {}
        self._fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for dest, m in self._mounts.items():
                # The source is the host path the user asked to mount: trusted, followed as
                # the kernel followed it when the container started.
                self._mount_fds[dest] = os.open(m.source, os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            self.close()
            raise Internal(f"opening mount source: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._mount_fds.values():
            os.close(fd)
        self._mount_fds.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- mounts ---------------------------------------------------------------------------

    def mount_at(self, path: str) -> MountPoint | None:
        """The mount whose destination is exactly `path`."""
        return self._mounts.get(path)

    def mount_stat(self, mount: MountPoint) -> os.stat_result:
        return os.fstat(self._mount_fds[go_clean("/" + mount.destination)])

    def open_mount(self, mount: MountPoint) -> int:
        """A new fd of a mount's root: O_RDONLY for a directory, O_PATH for a file."""
        fd = self._mount_fds[go_clean("/" + mount.destination)]
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return os.open(".", DIR_FLAGS, dir_fd=fd)
        return os.dup(fd)

    def writable(self, mount: MountPoint | None) -> bool:
        return not mount.read_only if mount is not None else not self.read_only

    def child(
        self, parent_fd: int, parent_path: str, name: str
    ) -> tuple[os.stat_result, MountPoint | None]:
        """lstat of `name` in a directory being walked, or the stat of the mount there."""
        mount = self.mount_at(posixpath.join(parent_path, name))
        if mount is not None:
            return self.mount_stat(mount), mount
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False), None

    def open_child_dir(self, parent_fd: int, parent_path: str, name: str) -> int:
        mount = self.mount_at(posixpath.join(parent_path, name))
        if mount is not None:
            return self.open_mount(mount)
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)

    # -- lookups --------------------------------------------------------------------------

    def _root_level(self) -> _Level:
        return _Level("", os.open(".", DIR_FLAGS, dir_fd=self._fd), "/", None)

    def resolve(self, path: str, *, follow: bool = False) -> Entry:
        """Look `path` up as the kernel would inside the container (`..` and symlinks in the
        container's terms): intermediate symlinks are followed, the last one only with
        `follow` or a trailing `/` or `/.`. Raises FileNotFoundError, NotADirectoryError or
        OSError(ELOOP) like the kernel; the Entry returned is the caller's to close."""
        todo = deque(components(path))
        stack = [self._root_level()]
        links = 0
        try:
            while todo:
                part = todo.popleft()
                last = not todo
                top = stack[-1]
                if part in (".", ".."):
                    if part == ".." and len(stack) > 1:
                        os.close(stack.pop().fd)
                    if last:
                        return self._dir_entry(stack)
                    continue
                child_path = posixpath.join(top.path, part)
                mount = self.mount_at(child_path)
                if mount is not None:
                    fd = self.open_mount(mount)
                    st = os.fstat(fd)
                    if last:
                        return Entry(child_path, st, mount, self_fd=fd)
                    if not stat.S_ISDIR(st.st_mode):
                        os.close(fd)
                        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", child_path)
                    stack.append(_Level(part, fd, child_path, mount))
                    continue
                st = os.stat(part, dir_fd=top.fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and (follow or not last):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise _loop(path)
                    target = os.readlink(part, dir_fd=top.fd)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop().fd)
                    todo.extendleft(reversed(components(target)))
                    continue
                if last:
                    return Entry(
                        child_path, st, top.mount, parent_fd=os.dup(top.fd), name=part
                    )
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "Not a directory", child_path)
                try:
                    fd = os.open(part, DIR_FLAGS, dir_fd=top.fd)
                except OSError as exc:
                    if exc.errno != errno.ELOOP:
                        raise
                    # Swapped for a symlink since the stat: look at it again, counted.
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise _loop(path) from exc
                    todo.appendleft(part)
                    continue
                stack.append(_Level(part, fd, child_path, top.mount))
            return self._dir_entry(stack)
        finally:
            for level in stack:
                os.close(level.fd)

    def _dir_entry(self, stack: list[_Level]) -> Entry:
        top = stack[-1]
        fd = os.dup(top.fd)
        return Entry(top.path, os.fstat(fd), top.mount, self_fd=fd)

    def link_target(self, path: str) -> str:
        """moby's FollowSymlinkInScope(path, "/"): the container path `path` finally names,
        with every symlink expanded in the container's root; components that do not exist
        are taken as they are (a dangling link still has a target)."""
        todo = deque(components(go_clean("/" + path)))
        names: list[str] = []
        fds: list[int | None] = []  # fd of each existing directory in names; None past that
        links = 0
        try:
            while todo:
                part = todo.popleft()
                if part == ".":
                    continue
                if part == "..":
                    if names:
                        names.pop()
                        fd = fds.pop()
                        if fd is not None:
                            os.close(fd)
                    continue
                parent = self._fd if not fds else fds[-1]
                child_path = "/" + "/".join([*names, part])
                if parent is None:
                    names.append(part)
                    fds.append(None)
                    continue
                mount = self.mount_at(child_path)
                if mount is not None:
                    st = self.mount_stat(mount)
                    names.append(part)
                    fds.append(self.open_mount(mount) if stat.S_ISDIR(st.st_mode) else None)
                    continue
                try:
                    st = os.stat(part, dir_fd=parent, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    names.append(part)
                    fds.append(None)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_SCOPE_LINKS:
                        raise _loop(path)
                    target = os.readlink(part, dir_fd=parent)
                    if target.startswith("/"):
                        for fd in fds:
                            if fd is not None:
                                os.close(fd)
                        names.clear()
                        fds.clear()
                    todo.extendleft(reversed(components(target)))
                    continue
                names.append(part)
                if stat.S_ISDIR(st.st_mode):
                    try:
                        fds.append(os.open(part, DIR_FLAGS, dir_fd=parent))
                    except OSError:
                        fds.append(None)
                else:
                    fds.append(None)
            return "/" + "/".join(names)
        finally:
            for fd in fds:
                if fd is not None:
                    os.close(fd)

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """The first `limit` bytes of a regular file at `path` (symlinks followed inside the
        root), or None if there is none: for the container's /etc/passwd and /etc/group."""
        try:
            with self.resolve(path, follow=True) as entry:
                if not stat.S_ISREG(entry.st.st_mode):
                    return None
                fd = entry.open_file(os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read(limit)
