"""Copy-up: an empty volume first mounted over a directory of the image gets its content.

As dockerd: owner, mode and times kept, symlinks copied as links (never followed), fifos and
device nodes made again, sockets skipped. The image's path is resolved inside the container's
root (linux/rootpath.py), so a symlink in the image cannot point the copy at the host; the
volume side is walked by fds made here, with O_NOFOLLOW and O_EXCL. Hard links inside the
copied tree stay links (one inode), as dockerd's copy keeps them: the first copy's directory
is held by an fd, so linking to it never walks a path. Blocking: call it in a thread.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import Internal
from dockyard.linux.fs import remove_tree
from dockyard.linux.rootpath import DIR_FLAGS, ContainerRoot

_CHUNK = 1 << 20


@dataclass
class _Links:
    """Inodes of the image seen with more than one link: where their first copy went."""

    first: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)  # -> (dir fd, name)
    fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def copy_up(rootfs: Path, path: str, data: Path) -> bool:
    """Copy the directory `path` of the container's rootfs into the volume directory `data`
    when that is empty; False when there was nothing to do."""
    dst = os.open(data, DIR_FLAGS)
    try:
        if os.listdir(dst):
            return False
        with ContainerRoot(rootfs) as root:
            try:
                entry = root.resolve(path, follow=True)
            except OSError:
                return False  # not in the image (or a loop): the mount point is made empty
            with entry:
                if not entry.is_dir:
                    return False
                src = entry.open_dir()
        links = _Links()
        try:
            _copy_tree(src, dst, links)
            _copy_attributes(os.fstat(src), dst)
        except OSError:
            for name in os.listdir(dst):  # all or nothing: an empty volume is copied again next time
                remove_tree(name, dir_fd=dst)
            raise
        finally:
            links.close()
            os.close(src)
    except OSError as exc:
        raise Internal(f"copying image content at {path} into volume: {exc}") from exc
    finally:
        os.close(dst)
    return True


def _copy_attributes(st: os.stat_result, fd: int) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after the chown, which clears set-id bits
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_tree(src: int, dst: int, links: _Links) -> None:
    held: int | None = None  # this directory's fd, kept for links to the copies made in it
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            continue  # nothing to copy
        inode = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            if inode in links.first:
                first_dir, first_name = links.first[inode]
                os.link(first_name, name, src_dir_fd=first_dir, dst_dir_fd=dst, follow_symlinks=False)
                continue
            if held is None:
                held = os.dup(dst)
                links.fds.append(held)
            links.first[inode] = (held, name)
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            child_src = os.open(name, DIR_FLAGS, dir_fd=src)
            try:
                child_dst = os.open(name, DIR_FLAGS, dir_fd=dst)
                try:
                    _copy_tree(child_src, child_dst, links)
                    _copy_attributes(st, child_dst)
                finally:
                    os.close(child_dst)
            finally:
                os.close(child_src)
        elif stat.S_ISREG(mode):
            _copy_file(name, st, src, dst)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(name: str, st: os.stat_result, src: int, dst: int) -> None:
    rfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        wfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst)
        try:
            remaining = st.st_size
            while remaining > 0:
                try:
                    n = os.copy_file_range(rfd, wfd, min(remaining, _CHUNK))
                except OSError:
                    n = os.write(wfd, os.read(rfd, min(remaining, _CHUNK)))  # EXDEV and kin
                if n == 0:
                    break  # the file shrank under us
                remaining -= n
            _copy_attributes(st, wfd)
        finally:
            os.close(wfd)
    finally:
        os.close(rfd)
