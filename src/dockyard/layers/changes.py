"""`docker diff`: a container's changes, read from its overlayfs upper directory.

dockerd 28's overlay2 compares the container's mounted view with its parent's (naive diff,
go-archive ChangesDirs). The result is the same when computed from the upper dir alone, which
only holds what changed: an entry there is Added when the image (the lower layers) has no
such path, Modified when it has one whose stat differs as dockerd's statDifferent sees it
(mode, owner, rdev, and for non-directories size and mtime; security.capability too), and
a whiteout (0:0 character device) is a Deletion. An opaque directory hides the image's
copy: what the image had there and the upper lacks is Deleted. A directory with a change
inside is reported Modified, as dockerd does. Walked iteratively, one fd per level.

dockerd's parent layer is the "-init" layer, whose paths (/proc, /etc/hosts, ...) never show
up as changes; `init_paths` plays that part for paths runc or the daemon create.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import Internal
from dockyard.layers.tarformat import is_whiteout
from dockyard.layers.tarlayer import is_opaque
from dockyard.linux.rootpath import DIR_FLAGS
from dockyard.model.filechanges import ChangeKind, FileChange, sorted_changes

_CAPABILITY = "security.capability"

# dockerd's initlayer.Setup: what every container's parent layer holds (kind by path).
INIT_PATHS: Mapping[str, str] = {
    "/dev": "dir",
    "/dev/pts": "dir",
    "/dev/shm": "dir",
    "/dev/console": "file",
    "/proc": "dir",
    "/sys": "dir",
    "/etc": "dir",
    "/etc/resolv.conf": "file",
    "/etc/hosts": "file",
    "/etc/hostname": "file",
    "/etc/mtab": "symlink",
    "/.dockerenv": "file",
}


def _kind(st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "file"


def _capability(dir_fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", _CAPABILITY, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return None
        raise


def _same_time(a: int, b: int) -> bool:
    # go-archive's sameFsTime: tar extraction may have dropped the nanoseconds of one side.
    return a == b or (a // 1_000_000_000 == b // 1_000_000_000 and (a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0))


def stat_differs(old: os.stat_result, new: os.stat_result) -> bool:
    """go-archive's statDifferent (size and mtime are no measure of change for directories)."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (
        new.st_mode,
        new.st_uid,
        new.st_gid,
        new.st_rdev,
    ):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size


@dataclass
class _Dir:
    path: str
    upper: int  # fd in the upper dir (owned)
    lower: list[int]  # the image's copies of this directory, top first (owned)
    hides_lower: bool  # the container's view shows only the upper copy (opaque here or above)
    added: bool  # the image has no such directory: everything inside is added
    pending: list[str] = field(default_factory=list)
    reported: bool = False
    changed: bool = False

    def close(self) -> None:
        os.close(self.upper)
        for fd in self.lower:
            os.close(fd)


def _lower_lookup(lower: list[int], name: str) -> tuple[os.stat_result, list[int]] | None:
    """`name` in the image's merged view of a directory: its stat and, for a directory, the
    fds of its copies (top first, cut below an opaque one). None if absent or whited out."""
    for index, fd in enumerate(lower):
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if is_whiteout(st):
            return None
        if not stat.S_ISDIR(st.st_mode):
            return st, []
        chain: list[int] = []
        try:
            for low in lower[index:]:
                try:
                    low_st = os.stat(name, dir_fd=low, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISDIR(low_st.st_mode):
                    break  # a file or whiteout hides everything below
                chain.append(os.open(name, DIR_FLAGS, dir_fd=low))
                if is_opaque(chain[-1]):
                    break
        except BaseException:
            for child in chain:
                os.close(child)
            raise
        return st, chain
    return None


def _lower_names(lower: list[int]) -> set[str]:
    seen: dict[str, bool] = {}
    for fd in lower:
        for name in os.listdir(fd):
            if name not in seen:
                seen[name] = not is_whiteout(os.stat(name, dir_fd=fd, follow_symlinks=False))
    return {name for name, present in seen.items() if present}


class _Diff:
    def __init__(self, init_paths: Mapping[str, str]) -> None:
        self.out: list[FileChange] = []
        self._init = init_paths

    def _emit(self, frame: _Dir, path: str, kind: ChangeKind) -> None:
        self.out.append(FileChange(path, kind))
        frame.changed = True

    def entry(self, frame: _Dir, name: str) -> _Dir | None:
        """Judge one upper entry of `frame`; a directory to descend into, if any."""
        path = posixpath.join(frame.path, name)
        st = os.stat(name, dir_fd=frame.upper, follow_symlinks=False)
        if is_whiteout(st):
            if not frame.added and not frame.hides_lower and _lower_lookup(frame.lower, name):
                self._emit(frame, path, ChangeKind.DELETED)
            return None
        found = None if frame.added else _lower_lookup(frame.lower, name)
        lower_st, chain = found if found is not None else (None, [])
        try:
            if lower_st is None and self._init.get(path) == _kind(st):
                reported = False  # in dockerd's init layer: not a change of this container
                added = False
            elif lower_st is None:
                self._emit(frame, path, ChangeKind.ADDED)
                reported = added = True
            else:
                reported = stat_differs(lower_st, st) or (
                    not stat.S_ISDIR(st.st_mode)
                    and _capability(frame.upper, name) != _capability_in(frame.lower, name)
                )
                if reported:
                    self._emit(frame, path, ChangeKind.MODIFIED)
                added = not stat.S_ISDIR(lower_st.st_mode)
            if not stat.S_ISDIR(st.st_mode):
                for fd in chain:
                    os.close(fd)
                return None
            upper = os.open(name, DIR_FLAGS, dir_fd=frame.upper)
        except BaseException:
            for fd in chain:
                os.close(fd)
            raise
        child = _Dir(path, upper, chain, frame.hides_lower or is_opaque(upper), added)
        child.reported = reported
        return child

    def deletions(self, frame: _Dir, upper_names: list[str]) -> None:
        """In a directory that hides the image's copy, what only the image had is deleted."""
        if frame.added or not frame.hides_lower or not frame.lower:
            return
        for name in sorted(_lower_names(frame.lower) - set(upper_names)):
            self._emit(frame, posixpath.join(frame.path, name), ChangeKind.DELETED)


def _capability_in(lower: list[int], name: str) -> bytes | None:
    for fd in lower:
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        return _capability(fd, name)
    return None


def container_changes(
    upper: Path, lowers: Sequence[Path], init_paths: Mapping[str, str] = INIT_PATHS
) -> tuple[FileChange, ...]:
    """The changes of a container whose writable layer is `upper` over the image layer dirs
    `lowers` (top first), in tree order. Needs no mount; reads only."""
    diff = _Diff(init_paths)
    stack: list[_Dir] = []
    try:
        lower_fds: list[int] = []
        root = _Dir("/", os.open(upper, DIR_FLAGS & ~os.O_NOFOLLOW), lower_fds, False, False)
        stack.append(root)
        for directory in lowers:
            lower_fds.append(os.open(directory, DIR_FLAGS & ~os.O_NOFOLLOW))
            if is_opaque(lower_fds[-1]):
                break
        root.hides_lower = is_opaque(root.upper)
        root.pending = sorted(os.listdir(root.upper), reverse=True)
        diff.deletions(root, root.pending)
        while stack:
            frame = stack[-1]
            if not frame.pending:
                stack.pop()
                frame.close()
                if stack and frame.changed:
                    stack[-1].changed = True
                    if not frame.reported:
                        diff.out.append(FileChange(frame.path, ChangeKind.MODIFIED))
                continue
            child = diff.entry(frame, frame.pending.pop())
            if child is not None:
                stack.append(child)
                child.pending = sorted(os.listdir(child.upper), reverse=True)
                diff.deletions(child, child.pending)
    except OSError as exc:
        raise Internal(f"listing changes of {upper}: {exc}") from exc
    finally:
        for frame in stack:
            frame.close()
    return sorted_changes(diff.out)
