"""`docker cp` and `docker export`: a container's files in and out as tar, safely.

Every path is looked up by linux/rootpath.py inside the container's root (its bind mounts
included), every file is opened relative to a directory fd with O_NOFOLLOW, and nothing from
the container is executed: the tar is written and read here, decompression is in-process.
Names and errors follow dockerd 28 (daemon/archive_unix.go, go-archive's TarWithOptions and
Unpack) because the CLI rebases what it gets by the stat header it was sent.

All functions block; the engine calls them in a thread (a running container may change its
files meanwhile: what vanishes mid-walk is skipped, as dockerd does).
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from dockyard.errors import Internal, InvalidArgument, NotFound
from dockyard.layers.extraction import TreeExtraction
from dockyard.layers.tarformat import (
    BadInput,
    EntryWriter,
    Guarded,
    clean_name,
    members,
    tar_error_message,
)
from dockyard.linux.rootpath import ContainerRoot, Entry, MountPoint
from dockyard.model.pathstat import (
    PathStat,
    archive_prefix,
    container_abs_path,
    dir_entry_name,
    go_base,
    go_clean,
    go_file_mode,
)
from dockyard.streams.compression import Readable, decompressed
from dockyard.streams.digest import DigestingReader

log = logging.getLogger(__name__)

__all__ = [
    "ContainerFS",
    "ExtractLimits",
    "MountPoint",
    "PathArchive",
    "export_rootfs",
    "extract_archive",
    "open_archive",
    "stat_path",
]

_VANISHED = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EAGAIN)


@dataclass(frozen=True)
class ContainerFS:
    """A container's filesystem as `docker cp` sees it: the mounted rootfs on the host, its
    bind mounts (tmpfs mounts are not listed: dockerd's cp sees the directory beneath), and
    the name the client used (dockerd's messages quote it)."""

    rootfs: Path
    mounts: tuple[MountPoint, ...] = ()
    read_only: bool = False  # HostConfig.ReadonlyRootfs
    label: str = ""

    def open(self) -> ContainerRoot:
        return ContainerRoot(self.rootfs, self.mounts, read_only=self.read_only)


@dataclass(frozen=True)
class ExtractLimits:
    """Sanity bounds for one PUT archive; past them the upload is refused (400)."""

    max_entries: int = 1_000_000
    max_bytes: int | None = None  # regular file bytes; None: as much as the disk takes
    allow_devices: bool = False  # dockerd mknods them; we refuse device nodes by default


def _not_found(fs: ContainerFS, path: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {fs.label}")


def _failed(what: str, path: str, exc: OSError) -> Internal:
    return Internal(f"{what} {path}: {exc.strerror or exc}")


def _path_stat(root: ContainerRoot, entry: Entry, name: str) -> PathStat:
    st = entry.st
    target = root.link_target(entry.path) if stat.S_ISLNK(st.st_mode) else ""
    return PathStat(name, st.st_size, go_file_mode(st.st_mode), st.st_mtime_ns, target)


def stat_path(fs: ContainerFS, path: str) -> PathStat:
    """HEAD /containers/{id}/archive: lstat of `path` inside the container (a final symlink
    is described, with the container path it resolves to as linkTarget)."""
    if not path:
        raise InvalidArgument("path is required")  # dockerd: badParameterError{"path"}
    with fs.open() as root:
        try:
            with root.resolve(path) as entry:
                return _path_stat(root, entry, go_base(path))
        except FileNotFoundError:
            raise _not_found(fs, path) from None
        except OSError as exc:
            raise _failed("lstat", path, exc) from exc


class PathArchive:
    """GET /containers/{id}/archive: the stat of a path (for the header) and a producer of
    its tar. Holds the resolved path open until `write` ends or `close` is called."""

    def __init__(self, root: ContainerRoot, entry: Entry, abs_path: str, stat_: PathStat) -> None:
        self._root: ContainerRoot | None = root
        self._entry = entry
        self._abs = abs_path
        self.stat = stat_

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._root is not None:
            self._entry.close()
            self._root.close()
            self._root = None

    def write(self, out: BinaryIO) -> None:
        """Write the tar to `out`, then close. A directory comes with its content, named
        from filepath.Base of the path (`etc/`, `./` for `P/.`, `/` for the root); anything
        else is one entry named by its basename, a symlink staying a symlink."""
        root = self._root
        if root is None:
            raise Internal("archive already written")
        try:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                walker = _TreeArchiver(root, archive)
                if self._entry.is_dir:
                    fd = self._entry.open_dir()
                    walker.walk(fd, self._entry.path, archive_prefix(self._abs))
                else:
                    walker.single(self._entry, posixpath.basename(self._abs.rstrip("/")))
        except OSError as exc:
            raise _failed("archiving", self._abs, exc) from exc
        finally:
            self.close()


def open_archive(fs: ContainerFS, path: str) -> PathArchive:
    """Resolve and stat `path` for GET archive; raises dockerd's 404 when it is missing."""
    if not path:
        raise InvalidArgument("path is required")
    abs_path = container_abs_path(path)
    root = fs.open()
    try:
        try:
            entry = root.resolve(abs_path)
        except FileNotFoundError:
            raise _not_found(fs, path) from None
        except OSError as exc:
            raise _failed("lstat", abs_path, exc) from exc
        try:
            return PathArchive(root, entry, abs_path, _path_stat(root, entry, go_base(abs_path)))
        except BaseException:
            entry.close()
            raise
    except BaseException:
        root.close()
        raise


def _capability_only(key: str) -> bool:
    # dockerd's tars carry only this xattr; others (security.selinux, trusted.*) would make
    # the CLI's extraction fail on filesystems or users that cannot set them.
    return key == "security.capability"


class _TreeArchiver:
    """Writes a directory tree as the container sees it (bind mounts entered), iteratively:
    one fd per level, entries in name order as Go's WalkDir."""

    def __init__(self, root: ContainerRoot, archive: tarfile.TarFile) -> None:
        self._root = root
        self._entries = EntryWriter(archive, _capability_only)

    def single(self, entry: Entry, name: str) -> None:
        if entry.self_fd is not None:  # a file bind mount
            if stat.S_ISREG(entry.st.st_mode):
                self._entries.regular(name, entry.open_file(os.O_RDONLY | os.O_NONBLOCK))
            return
        assert entry.parent_fd is not None
        self._entries.non_directory(name, entry.parent_fd, entry.name, entry.st)

    def walk(self, top_fd: int, top_path: str, prefix: str | None) -> None:
        """The tree at `top_fd` (taken over). With a `prefix` (cp) the directory itself comes
        first and names are rebased on it; without (export) names are relative, no root."""

        def name_of(rel: str, is_dir: bool) -> str:
            if prefix is None:
                return rel + "/" if is_dir else rel
            return dir_entry_name(prefix, rel, is_dir)

        stack: list[tuple[str, int, str, list[str]]] = []
        try:
            if prefix is not None:
                self._entries.directory(name_of("", True), top_fd)
            stack.append(("", top_fd, top_path, sorted(os.listdir(top_fd), reverse=True)))
            while stack:
                rel, fd, cpath, pending = stack[-1]
                if not pending:
                    os.close(stack.pop()[1])
                    continue
                name = pending.pop()
                child_rel = f"{rel}/{name}" if rel else name
                try:
                    st, mount = self._root.child(fd, cpath, name)
                    if stat.S_ISDIR(st.st_mode):
                        child = self._root.open_child_dir(fd, cpath, name)
                        try:
                            self._entries.directory(name_of(child_rel, True), child)
                            names = sorted(os.listdir(child), reverse=True)
                        except BaseException:
                            os.close(child)
                            raise
                        stack.append((child_rel, child, posixpath.join(cpath, name), names))
                    elif mount is not None:
                        if stat.S_ISREG(st.st_mode):
                            file_fd = self._root.open_mount(mount)
                            try:
                                reopened = os.open(f"/proc/self/fd/{file_fd}", os.O_RDONLY | os.O_CLOEXEC)
                            finally:
                                os.close(file_fd)
                            self._entries.regular(name_of(child_rel, False), reopened)
                    else:
                        self._entries.non_directory(name_of(child_rel, False), fd, name, st)
                except OSError as exc:
                    if exc.errno not in _VANISHED:
                        raise
                    log.debug("archive: skipping %s: %s", child_rel, exc)
        finally:
            for _, fd, _, _ in stack:
                os.close(fd)


def export_rootfs(rootfs: Path, out: BinaryIO) -> None:
    """GET /containers/{id}/export: the whole mounted rootfs (merged view, so no whiteouts;
    bind mounts are not in it, as in dockerd) as a tar with relative names and no root
    entry. The engine mounts a stopped container's rootfs for the duration."""
    try:
        with ContainerRoot(rootfs) as root, root.resolve("/") as entry:
            fd = entry.open_dir()
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                _TreeArchiver(root, archive).walk(fd, "/", None)
    except OSError as exc:
        raise Internal(f"exporting {rootfs}: {exc.strerror or exc}") from exc


class _CopyExtraction(TreeExtraction):
    """Unpacks into one directory of the container as go-archive's Unpack does for cp: no
    whiteout conversion, implied parents 0755 root, no-overwrite rules, owner override;
    bind mounts below the extraction point are entered, read-only ones refused."""

    what = "archive"
    scope = "the extraction directory"

    def __init__(
        self,
        root: ContainerRoot,
        entry: Entry,
        *,
        no_overwrite_dir_non_dir: bool,
        owner: tuple[int, int] | None,
        limits: ExtractLimits,
    ) -> None:
        super().__init__(entry.open_dir())
        self._croot = root
        self._base = entry.path
        self._no_overwrite = no_overwrite_dir_non_dir
        self._owner_override = owner
        self._limits = limits
        self.entries = 0

    def _cpath(self, rel: str) -> str:
        return posixpath.join(self._base, rel) if rel else self._base

    def _owner(self, member: tarfile.TarInfo) -> tuple[int, int]:
        return self._owner_override or (member.uid, member.gid)

    def _child_dir(self, parent: int, name: str, rel: str, create: bool) -> int:
        mount = self._croot.mount_at(self._cpath(rel))
        if mount is None:
            return super()._child_dir(parent, name, rel, create)
        if not self._croot.writable(mount):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), self._cpath(rel))
        if not stat.S_ISDIR(self._croot.mount_stat(mount).st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), self._cpath(rel))
        return self._croot.open_mount(mount)

    def _replacing(self, rel: str, old: os.stat_result, member: tarfile.TarInfo | None) -> None:
        path = self._cpath(rel)
        if self._croot.mount_at(path) is not None and not (
            member is not None and member.isdir()
        ):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        if not self._no_overwrite or member is None:
            return
        if stat.S_ISDIR(old.st_mode) and not member.isdir():
            raise Internal(f'cannot overwrite directory "{path}" with non-directory "{self._base}"')
        if not stat.S_ISDIR(old.st_mode) and member.isdir():
            raise Internal(f'cannot overwrite non-directory "{path}" with directory "{self._base}"')

    def _directory(self, rel: str, member: tarfile.TarInfo) -> None:
        mount = self._croot.mount_at(self._cpath(rel))
        if mount is None:
            super()._directory(rel, member)
            return
        fd = self._child_dir(self._dir(rel.rpartition("/")[0]), "", rel, False)
        try:
            self.apply_fd_meta(fd, member, rel)
        finally:
            os.close(fd)
        self._dir_times.pop()  # a mount's root keeps its times: finish() cannot reach it

    def _symlink(self, rel: str, member: tarfile.TarInfo) -> None:
        # go-archive refuses a relative link that points out of the extraction directory
        # (an absolute one is taken as inside it). We never follow links either way.
        if not member.linkname.startswith("/"):
            parent = posixpath.dirname(self._cpath(rel))
            target = go_clean(posixpath.join(parent, member.linkname))
            if self._base != "/" and target != self._base and not target.startswith(self._base + "/"):
                raise InvalidArgument(
                    f'invalid symlink "{self._cpath(rel)}" -> "{member.linkname}"'
                )
        super()._symlink(rel, member)

    def _special(self, rel: str, member: tarfile.TarInfo) -> None:
        if not member.isfifo() and not self._limits.allow_devices:
            raise InvalidArgument(
                f"{member.name}: device nodes cannot be copied into a container"
            )
        super()._special(rel, member)

    def add(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        self.entries += 1
        if self.entries > self._limits.max_entries:
            raise InvalidArgument(f"archive has more than {self._limits.max_entries} entries")
        limit = self._limits.max_bytes
        if member.isreg() and limit is not None and self.size + member.size > limit:
            raise InvalidArgument(f"archive holds more than {self._limits.max_bytes} bytes")
        rel = clean_name(member.name, self.what, self.scope)
        if rel == "":
            if member.isdir():
                return  # the extraction directory itself: kept as it is (go-archive)
            raise Internal(f'cannot overwrite directory "{self._base}" with non-directory')
        self.add_entry(rel, member, archive)


def extract_archive(
    fs: ContainerFS,
    path: str,
    stream: Readable,
    *,
    no_overwrite_dir_non_dir: bool = False,
    owner: tuple[int, int] | None = None,
    limits: ExtractLimits = ExtractLimits(),
) -> int:
    """PUT /containers/{id}/archive: unpack a (gzip/bzip2/xz or plain) tar into the
    directory `path` (symlinks followed inside the container). `owner` (uid, gid) overrides
    the tar's owners: dockerd does so for copyUIDGID when the container has a User, with
    that user's ids from the container's passwd/group; otherwise the tar's ids are kept.
    Returns the number of entries. A failure mid-way leaves what was written (as dockerd)."""
    if not path:
        raise InvalidArgument("path is required")
    abs_path = go_clean("/" + path)
    try:
        plain = decompressed(stream)
    except OSError as exc:
        raise InvalidArgument(f"invalid archive: {exc}") from exc
    reader = DigestingReader(Guarded(plain))
    with fs.open() as root:
        try:
            entry = root.resolve(abs_path, follow=True)
        except FileNotFoundError:
            raise _not_found(fs, path) from None
        except OSError as exc:
            raise _failed("lstat", abs_path, exc) from exc
        with entry:
            if not entry.is_dir:
                raise InvalidArgument("extraction point is not a directory")
            if not root.writable(entry.mount):
                if entry.mount is not None:
                    raise InvalidArgument("mounted volume is marked read-only")
                raise InvalidArgument("container rootfs is marked read-only")
            try:
                extraction = _CopyExtraction(
                    root,
                    entry,
                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                    owner=owner,
                    limits=limits,
                )
            except OSError as exc:
                raise _failed("opening", entry.path, exc) from exc
            member_name = ""
            try:
                for member, archive in members(reader, lambda: reader.count):
                    member_name = member.name
                    extraction.add(member, archive)
                extraction.finish()
            except BadInput as exc:
                raise InvalidArgument(f"invalid archive: {exc}") from exc
            except tarfile.TarError as exc:
                raise InvalidArgument(f"invalid archive: {tar_error_message(exc)}") from exc
            except OSError as exc:
                where = posixpath.join(entry.path, member_name) if member_name else entry.path
                raise _failed("extracting", where, exc) from exc
            finally:
                extraction.close()
            return extraction.entries
