"""Tar members written into one directory tree through directory fds.

A path is never resolved through anything but a real directory opened with O_NOFOLLOW relative
to its parent's fd, so a symlink planted by the archive itself (or already in the tree) can
never redirect a later member elsewhere. Layer extraction (whiteouts) and `docker cp`
(mounts, owners, no-overwrite rules) are subclasses that adjust the hooks.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile

from dockyard.errors import InvalidArgument
from dockyard.layers.tarformat import CHUNK, clean_name, member_xattrs, set_xattrs, times_ns
from dockyard.linux.fs import remove_tree

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeExtraction:
    """Writes tar members below the directory `root_fd` (taken over and closed)."""

    what = "layer tar"  # for messages: "invalid layer tar: ..."
    scope = "the layer"

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._cached: tuple[str, int] | None = None  # last parent dir: members come grouped
        self._dir_times: list[tuple[str, int, int]] = []
        self.size = 0

    def close(self) -> None:
        self._forget()
        os.close(self._root)

    def _forget(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _invalid(self, message: str) -> InvalidArgument:
        return InvalidArgument(f"invalid {self.what}: {message}")

    # -- hooks ----------------------------------------------------------------------------

    def _owner(self, member: tarfile.TarInfo) -> tuple[int, int]:
        return member.uid, member.gid

    def _mkdir(self, parent: int, name: str) -> None:
        os.mkdir(name, 0o755, dir_fd=parent)
        os.chmod(name, 0o755, dir_fd=parent, follow_symlinks=False)  # whatever the umask

    def _not_a_directory(self, parent: int, name: str, rel: str, create: bool) -> int:
        """`rel` exists but is not a directory we may enter (a symlink, a file)."""
        raise self._invalid(f"{rel} is not a directory inside {self.scope}")

    def _child_dir(self, parent: int, name: str, rel: str, create: bool) -> int:
        try:
            return os.open(name, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise self._invalid(f"{rel} does not exist") from None
            self._mkdir(parent, name)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            return self._not_a_directory(parent, name, rel, create)
        return os.open(name, DIR_FLAGS, dir_fd=parent)

    def _replacing(self, rel: str, old: os.stat_result, member: tarfile.TarInfo | None) -> None:
        """Called before what is at `rel` is replaced by `member` (None: a whiteout)."""

    # -- walking --------------------------------------------------------------------------

    def _dir(self, rel: str, create: bool = True) -> int:
        """An fd for directory `rel` of the tree; owned by the extraction, don't close it."""
        if rel == "":
            return self._root
        if self._cached is not None and self._cached[0] == rel:
            return self._cached[1]
        fd = os.dup(self._root)
        walked = ""
        try:
            for part in rel.split("/"):
                walked = f"{walked}/{part}" if walked else part
                child = self._child_dir(fd, part, walked, create)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self._forget()
        self._cached = (rel, fd)
        return fd

    def _split(self, rel: str) -> tuple[int, str]:
        parent, _, name = rel.rpartition("/")
        return self._dir(parent), name

    def _clear(
        self, rel: str, member: tarfile.TarInfo
    ) -> tuple[int, str, os.stat_result | None]:
        """Make room for `member` at `rel`: remove what sits there unless both are directories
        (they merge). Returns the parent fd, the name in it, and what was there."""
        parent, name = self._split(rel)
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return parent, name, None
        self._replacing(rel, st, member)
        if stat.S_ISDIR(st.st_mode):
            if member.isdir():
                return parent, name, st
            cached = self._cached[0] if self._cached is not None else None
            if cached is not None and (cached == rel or cached.startswith(rel + "/")):
                self._forget()  # its directory is going away (parent is never inside it)
            remove_tree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return parent, name, st

    # -- members --------------------------------------------------------------------------

    def add_entry(self, rel: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        if member.isdir():
            self._directory(rel, member)
        elif member.isreg():
            self._regular(rel, member, archive)
        elif member.issym():
            self._symlink(rel, member)
        elif member.islnk():
            self._hardlink(rel, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._special(rel, member)
        else:
            raise self._invalid(f"{member.name}: unhandled tar header type {member.type!r}")

    def apply_fd_meta(self, fd: int, member: tarfile.TarInfo, rel: str) -> None:
        # chown first: it clears setuid bits and security.capability.
        os.fchown(fd, *self._owner(member))
        set_xattrs(fd, member_xattrs(member, self.what), member.name)
        os.fchmod(fd, member.mode & 0o7777)
        atime, mtime = times_ns(member)
        if member.isdir():
            self._dir_times.append((rel, atime, mtime))  # children would bump it now
        else:
            os.utime(fd, ns=(atime, mtime))

    def _made_directory(self, fd: int, old: os.stat_result | None) -> None:
        """A directory member was created or merged into (`old` is what was there)."""

    def _directory(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, old = self._clear(rel, member)
        if old is None or not stat.S_ISDIR(old.st_mode):
            self._mkdir(parent, name)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        try:
            self._made_directory(fd, old)
            self.apply_fd_meta(fd, member, rel)
        finally:
            os.close(fd)

    def _regular(self, rel: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        parent, name, _ = self._clear(rel, member)
        source = archive.extractfile(member)
        if source is None:
            raise self._invalid(f"{member.name}: no file data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent)
        try:
            while chunk := source.read(CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            self.apply_fd_meta(fd, member, rel)
        finally:
            os.close(fd)
        self.size += member.size

    def _apply_at_meta(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        os.chown(name, *self._owner(member), dir_fd=parent, follow_symlinks=False)
        # xattr calls take no dir fd; the fd's /proc link pins the very directory we hold.
        xattrs = member_xattrs(member, self.what)
        set_xattrs(f"/proc/self/fd/{parent}/{name}", xattrs, member.name)
        if not member.issym():
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=times_ns(member), dir_fd=parent, follow_symlinks=False)

    def _symlink(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, _ = self._clear(rel, member)
        os.symlink(member.linkname, name, dir_fd=parent)
        self._apply_at_meta(parent, name, member)
        self.size += len(os.fsencode(member.linkname))  # a link's size, as dockerd's layer sizes count it

    def _special(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, _ = self._clear(rel, member)
        perm = member.mode & 0o7777
        if member.isfifo():
            os.mkfifo(name, perm, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
            os.mknod(name, kind | perm, device, dir_fd=parent)
        self._apply_at_meta(parent, name, member)

    def _hardlink_target(self, rel: str, member: tarfile.TarInfo) -> str:
        return clean_name(member.linkname, self.what, self.scope)

    def _hardlink(self, rel: str, member: tarfile.TarInfo) -> None:
        target = self._hardlink_target(rel, member)
        if target == rel:
            return
        if target == "":
            raise self._invalid(f"{member.name}: hardlink to the root")
        target_parent_rel, _, target_name = target.rpartition("/")
        # Own fd for the target's directory: the cache holds the link's directory.
        target_dir = os.dup(self._dir(target_parent_rel, create=False))
        try:
            try:
                st = os.stat(target_name, dir_fd=target_dir, follow_symlinks=False)
            except FileNotFoundError:
                raise self._invalid(
                    f"{member.name}: hardlink target {member.linkname} not found in {self.scope}"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise self._invalid(f"{member.name}: hardlink to a directory")
            parent, name, _ = self._clear(rel, member)
            os.link(
                target_name,
                name,
                src_dir_fd=target_dir,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(target_dir)

    def finish(self) -> None:
        """Directory times last: creating their children kept changing them."""
        for rel, atime, mtime in reversed(self._dir_times):
            if rel == "":
                os.utime(self._root, ns=(atime, mtime))
                continue
            parent_rel, _, name = rel.rpartition("/")
            try:
                parent = self._dir(parent_rel, create=False)
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except (InvalidArgument, FileNotFoundError, NotADirectoryError):
                continue  # replaced or removed later in the stream
            if stat.S_ISDIR(st.st_mode):
                os.utime(name, ns=(atime, mtime), dir_fd=parent, follow_symlinks=False)
