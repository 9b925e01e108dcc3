"""Layer tars in and out of one overlayfs layer directory (a layer's `diff` dir).

Docker/OCI layer tars mark deletions with whiteout files (`.wh.<name>`, `.wh..wh..opq`);
overlayfs marks them with 0:0 character devices and the `trusted.overlay.opaque` xattr.
`apply_layer_tar` converts the first into the second while extracting, `write_layer_tar`
converts back while archiving. Both are blocking; callers run them in a thread.

Extraction never resolves a path through anything but a real directory opened with
O_NOFOLLOW relative to its parent's fd, so a symlink planted by the layer itself (or already
in `dest`) can never redirect a later member outside `dest`.
"""

from __future__ import annotations

import base64
import errno
import logging
import lzma
import os
import posixpath
import stat
import tarfile
import urllib.parse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Self, cast

from dockyard.errors import Internal, InvalidArgument
from dockyard.linux.fs import remove_tree
from dockyard.streams.compression import Readable, decompressed
from dockyard.streams.digest import DigestingReader, DigestingWriter

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_META_PREFIX = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk etc.): never content
_OVERLAY_XATTR_PREFIX = "trusted.overlay."
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# tarfile keeps its header error classes out of its stubs; these two only mean "archive ended".
_END_OF_ARCHIVE: tuple[type[BaseException], ...] = (
    getattr(tarfile, "EOFHeaderError"),  # noqa: B009
    getattr(tarfile, "EmptyHeaderError"),  # noqa: B009
)


@dataclass(frozen=True)
class AppliedLayer:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream
    size: int  # sum of regular file sizes
    tar_size: int  # bytes in the uncompressed tar stream (what SaveLayer.size wants)


class _BadInput(Exception):
    """The layer stream is not a valid (compressed) tar; surfaces as InvalidArgument."""


class _Guarded:
    """Reads a (decompressing) stream, reporting corrupt or cut data as _BadInput."""

    def __init__(self, source: Readable) -> None:
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._source.read(size)
        except EOFError as exc:
            raise _BadInput("unexpected EOF") from exc
        except (OSError, zlib.error, lzma.LZMAError) as exc:
            raise _BadInput(f"corrupt stream: {exc}") from exc


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile quietly stops at a corrupt header after the first member; Go's reader (and so
    dockerd) fails, and a half-applied layer must not pass as a whole one."""

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(archive)
        except _END_OF_ARCHIVE:
            raise
        except (tarfile.TarError, UnicodeError) as exc:
            raise _BadInput(f"invalid tar header: {exc}") from exc


def _clean(name: str) -> str:
    """Archive path -> path relative to the layer root ("" for the root itself)."""
    path = posixpath.normpath(name.lstrip("/") or ".")
    if path == ".." or path.startswith("../"):
        raise InvalidArgument(f"invalid layer tar: {name!r} points outside the layer")
    return "" if path == "." else path


def _pax_ns(member: tarfile.TarInfo, key: str) -> int | None:
    raw = member.pax_headers.get(key)
    if raw is None:
        return None
    try:
        return int(Decimal(raw) * 1_000_000_000)
    except (InvalidOperation, ValueError):
        return None


def _times_ns(member: tarfile.TarInfo) -> tuple[int, int]:
    # PAX times carry sub-second precision that tarfile's float would round away.
    mtime = _pax_ns(member, "mtime")
    if mtime is None:
        mtime = int(member.mtime) * 1_000_000_000
    atime = _pax_ns(member, "atime")
    return (mtime if atime is None else atime), mtime


def _member_xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            found.append((key[13:], value.encode("utf-8", "surrogateescape")))
        elif key.startswith("LIBARCHIVE.xattr."):
            try:
                data = base64.b64decode(value + "=" * (-len(value) % 4))
            except ValueError as exc:
                raise InvalidArgument(f"invalid layer tar: {member.name}: bad xattr") from exc
            found.append((urllib.parse.unquote(key[17:]), data))
    # Overlay's own xattrs from a tar could redirect lookups; opacity comes from whiteouts.
    return [(k, v) for k, v in found if not k.startswith(_OVERLAY_XATTR_PREFIX)]


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# xattr calls take an fd (the file itself) or a path whose last component must not be followed;
# Python refuses follow_symlinks=False together with an fd, hence isinstance(target, int).
def _set_xattrs(target: int | str, xattrs: list[tuple[str, bytes]], name: str) -> None:
    for key, value in xattrs:
        try:
            os.setxattr(target, key, value, follow_symlinks=isinstance(target, int))
        except OSError as exc:
            # user.* is refused on symlinks and devices, some filesystems lack a namespace:
            # dockerd skips these with a warning as well.
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise
            log.warning("layer member %s: xattr %s not set: %s", name, key, exc)


class _Extraction:
    """Writes tar members into one layer directory through directory fds."""

    def __init__(self, dest: Path) -> None:
        self._root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
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

    def _mkdir(self, parent: int, name: str) -> None:
        os.mkdir(name, 0o755, dir_fd=parent)
        os.chmod(name, 0o755, dir_fd=parent, follow_symlinks=False)  # whatever the umask

    def _child_dir(self, parent: int, name: str, rel: str, create: bool) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise InvalidArgument(f"invalid layer tar: {rel} does not exist") from None
            self._mkdir(parent, name)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not (create and _is_whiteout(st)):
                raise InvalidArgument(
                    f"invalid layer tar: {rel} is not a directory inside the layer"
                ) from exc
            # `.wh.d` then `d/x` in one layer: a new d replacing the lower one, i.e. opaque.
            os.unlink(name, dir_fd=parent)
            self._mkdir(parent, name)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            os.setxattr(fd, OPAQUE_XATTR, b"y")
            return fd
        return os.open(name, _DIR_FLAGS, dir_fd=parent)

    def _dir(self, rel: str, create: bool = True) -> int:
        """An fd for directory `rel` of the layer; owned by the extraction, don't close it."""
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

    def _clear(self, rel: str, keep_dir: bool) -> tuple[int, str, os.stat_result | None]:
        """Make room for `rel`: remove what sits there unless it is a directory we may merge
        into. Returns the parent fd, the name in it, and what was there."""
        parent, name = self._split(rel)
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return parent, name, None
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return parent, name, st
            cached = self._cached[0] if self._cached is not None else None
            if cached is not None and (cached == rel or cached.startswith(rel + "/")):
                self._forget()  # its directory is going away (parent is never inside it)
            remove_tree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return parent, name, st

    def add(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        rel = _clean(member.name)
        parts = rel.split("/") if rel else []
        if any(p.startswith(_META_PREFIX) for p in parts[:-1]):
            return  # inside aufs bookkeeping dirs
        base = parts[-1] if parts else ""
        if base == OPAQUE_MARKER:
            os.setxattr(self._dir(rel.rpartition("/")[0]), OPAQUE_XATTR, b"y")
            return
        if base.startswith(_META_PREFIX):
            return
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(rel, base[len(WHITEOUT_PREFIX) :], member)
            return
        if rel == "":
            if not member.isdir():
                raise InvalidArgument("invalid layer tar: the layer root must be a directory")
            self._apply_fd_meta(self._root, member, "")
            return
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
            raise InvalidArgument(
                f"invalid layer tar: {member.name}: unhandled tar header type {member.type!r}"
            )

    def _whiteout(self, rel: str, target: str, member: tarfile.TarInfo) -> None:
        if target in ("", ".", ".."):
            raise InvalidArgument(f"invalid layer tar: bad whiteout {member.name!r}")
        parent = self._dir(rel.rpartition("/")[0])
        try:
            st = os.stat(target, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            os.mknod(target, stat.S_IFCHR, 0, dir_fd=parent)
            os.chown(target, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            return
        # A whiteout only hides lower layers (OCI); what this layer made stays. An entry here
        # already hides the lower one, except a directory, which must stop merging.
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(target, _DIR_FLAGS, dir_fd=parent)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)

    def _apply_fd_meta(self, fd: int, member: tarfile.TarInfo, rel: str) -> None:
        # chown first: it clears setuid bits and security.capability.
        os.fchown(fd, member.uid, member.gid)
        _set_xattrs(fd, _member_xattrs(member), member.name)
        os.fchmod(fd, member.mode & 0o7777)
        atime, mtime = _times_ns(member)
        if member.isdir():
            self._dir_times.append((rel, atime, mtime))  # children would bump it now
        else:
            os.utime(fd, ns=(atime, mtime))

    def _directory(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, old = self._clear(rel, keep_dir=True)
        if old is None or not stat.S_ISDIR(old.st_mode):
            self._mkdir(parent, name)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        try:
            if old is not None and _is_whiteout(old):
                os.setxattr(fd, OPAQUE_XATTR, b"y")  # re-created after deletion: opaque
            self._apply_fd_meta(fd, member, rel)
        finally:
            os.close(fd)

    def _regular(self, rel: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        parent, name, _ = self._clear(rel, keep_dir=False)
        source = archive.extractfile(member)
        if source is None:
            raise InvalidArgument(f"invalid layer tar: {member.name}: no file data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent)
        try:
            while chunk := source.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            self._apply_fd_meta(fd, member, rel)
        finally:
            os.close(fd)
        self.size += member.size

    def _apply_at_meta(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        # xattr calls take no dir fd; the fd's /proc link pins the very directory we hold.
        _set_xattrs(f"/proc/self/fd/{parent}/{name}", _member_xattrs(member), member.name)
        if not member.issym():
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=_times_ns(member), dir_fd=parent, follow_symlinks=False)

    def _symlink(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, _ = self._clear(rel, keep_dir=False)
        os.symlink(member.linkname, name, dir_fd=parent)
        self._apply_at_meta(parent, name, member)

    def _special(self, rel: str, member: tarfile.TarInfo) -> None:
        parent, name, _ = self._clear(rel, keep_dir=False)
        perm = member.mode & 0o7777
        if member.isfifo():
            os.mkfifo(name, perm, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
            os.mknod(name, kind | perm, device, dir_fd=parent)
        self._apply_at_meta(parent, name, member)

    def _hardlink(self, rel: str, member: tarfile.TarInfo) -> None:
        target = _clean(member.linkname)
        if target == rel:
            return
        if target == "":
            raise InvalidArgument(f"invalid layer tar: {member.name}: hardlink to the root")
        target_parent_rel, _, target_name = target.rpartition("/")
        # Own fd for the target's directory: the cache holds the link's directory.
        target_dir = os.dup(self._dir(target_parent_rel, create=False))
        try:
            try:
                st = os.stat(target_name, dir_fd=target_dir, follow_symlinks=False)
            except FileNotFoundError:
                raise InvalidArgument(
                    f"invalid layer tar: {member.name}: hardlink target {member.linkname} "
                    "not found in the layer"
                ) from None
            if stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(f"invalid layer tar: {member.name}: hardlink to a directory")
            parent, name, _ = self._clear(rel, keep_dir=False)
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
            except (InvalidArgument, FileNotFoundError):
                continue  # replaced or removed later in the stream
            if stat.S_ISDIR(st.st_mode):
                os.utime(name, ns=(atime, mtime), dir_fd=parent, follow_symlinks=False)


def apply_layer_tar(stream: BinaryIO, dest: Path) -> AppliedLayer:
    """Extract a (possibly gzip/bzip2/xz-compressed) layer tar into the layer dir `dest`,
    turning whiteouts into overlayfs form. Returns the diff id of the uncompressed stream.
    On error `dest` is left partly written; the caller discards the layer dir."""
    try:
        plain = decompressed(stream)
    except OSError as exc:
        raise InvalidArgument(f"invalid layer tar: reading layer: {exc}") from exc
    reader = DigestingReader(_Guarded(plain))
    try:
        extraction = _Extraction(dest)
    except OSError as exc:
        raise Internal(f"opening layer directory {dest}: {exc}") from exc
    member_name = ""
    try:
        try:
            # Entered with `with` below, once we know the stream was not empty.
            archive = tarfile.open(fileobj=reader, mode="r|", tarinfo=_StrictTarInfo)  # noqa: SIM115
        except tarfile.ReadError:
            if reader.count:
                raise
            archive = None  # an empty stream is an empty layer, as for Go's tar reader
        if archive is not None:
            with archive:
                for member in archive:
                    member_name = member.name
                    extraction.add(member, archive)
                    # Stream mode keeps every header it has read; a big layer has many.
                    cast(list[tarfile.TarInfo], getattr(archive, "members")).clear()  # noqa: B009
            member_name = ""
        reader.drain()
        extraction.finish()
    except _BadInput as exc:
        raise InvalidArgument(f"invalid layer tar: {exc}") from exc
    except tarfile.TarError as exc:
        message = str(exc)
        if message in ("unexpected end of data", "empty file"):
            message = "unexpected EOF"
        raise InvalidArgument(f"invalid layer tar: {message}") from exc
    except OSError as exc:
        where = f" at {member_name}" if member_name else ""
        raise Internal(f"applying layer to {dest}{where}: {exc}") from exc
    finally:
        extraction.close()
    return AppliedLayer(diff_id=reader.digest(), size=extraction.size, tar_size=reader.count)


class _Archiver:
    """Walks one layer dir (or a stack of them) through dir fds and writes tar entries."""

    def __init__(self, archive: tarfile.TarFile, merged: bool) -> None:
        self._tar = archive
        self._merged = merged
        self._links: dict[tuple[int, int], str] = {}

    def walk(self, rel: str, layers: list[int]) -> None:
        """`layers` are the fds of directory `rel` in each layer that contributes, top first."""
        entries: dict[str, tuple[int, os.stat_result] | None] = {}
        for fd in layers:
            for name in os.listdir(fd):
                if name in entries:
                    continue
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                # Merged (export) view: a whiteout hides the name in every lower layer.
                entries[name] = None if self._merged and _is_whiteout(st) else (fd, st)
            if self._merged and _is_opaque(fd):
                break
        for name in sorted(entries):
            found = entries[name]
            if found is None:
                continue
            fd, st = found
            path = f"{rel}/{name}" if rel else name
            if stat.S_ISDIR(st.st_mode):
                self._directory(path, name, fd, st, layers[layers.index(fd) + 1 :])
            else:
                self._non_directory(path, name, fd, st)

    def _directory(
        self, path: str, name: str, fd: int, st: os.stat_result, lower: list[int]
    ) -> None:
        own = os.open(name, _DIR_FLAGS, dir_fd=fd)
        stack = [own]
        try:
            info = _header(path + "/", os.fstat(own), tarfile.DIRTYPE)
            _add_xattrs(info, own)
            self._tar.addfile(info)
            opaque = _is_opaque(own)
            if opaque and not self._merged:
                marker = _header(f"{path}/{OPAQUE_MARKER}", st, tarfile.REGTYPE)
                marker.mode = stat.S_IMODE(st.st_mode) & 0o777
                self._tar.addfile(marker)
            if self._merged and not opaque:
                # Lower copies merge in until one is hidden or not a directory.
                for low in lower:
                    try:
                        low_st = os.stat(name, dir_fd=low, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISDIR(low_st.st_mode):
                        break
                    stack.append(os.open(name, _DIR_FLAGS, dir_fd=low))
            self.walk(path, stack)
        finally:
            for child in stack:
                os.close(child)

    def _non_directory(self, path: str, name: str, fd: int, st: os.stat_result) -> None:
        if _is_whiteout(st):  # only reached for a single diff dir
            dirname, _, base = path.rpartition("/")
            wh_path = f"{dirname}/{WHITEOUT_PREFIX}{base}" if dirname else WHITEOUT_PREFIX + base
            info = _header(wh_path, st, tarfile.REGTYPE)
            info.mode = 0o600
            self._tar.addfile(info)
            return
        if stat.S_ISSOCK(st.st_mode):
            return  # sockets don't survive a tar; dockerd skips them too
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info = _header(path, st, tarfile.LNKTYPE)
            info.linkname = self._links[key]
            self._tar.addfile(info)
            return
        if stat.S_ISREG(st.st_mode):
            self._regular(path, name, fd)
        else:
            self._special(path, name, fd, st)
        if st.st_nlink > 1:
            self._links[key] = path

    def _regular(self, path: str, name: str, fd: int) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        file_fd = os.open(name, flags, dir_fd=fd)
        with open(file_fd, "rb") as source:
            st = os.fstat(file_fd)  # what we actually opened, not what we listed
            if not stat.S_ISREG(st.st_mode):
                raise Internal(f"archiving layer: {path} changed type while reading")
            info = _header(path, st, tarfile.REGTYPE)
            info.size = st.st_size
            _add_xattrs(info, file_fd)
            self._tar.addfile(info, source)

    def _special(self, path: str, name: str, fd: int, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            info = _header(path, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=fd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info = _header(path, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info = _header(path, st, tarfile.FIFOTYPE)
        else:
            raise Internal(f"archiving layer: {path} has an unknown file type {mode:o}")
        _add_xattrs(info, f"/proc/self/fd/{fd}/{name}")
        self._tar.addfile(info)


def _header(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""  # numeric ids only: names depend on the host's passwd
    info.mtime = st.st_mtime_ns // 1_000_000_000  # whole seconds, as dockerd, for repeatability
    return info


def _add_xattrs(info: tarfile.TarInfo, target: int | str) -> None:
    try:
        names = os.listxattr(target, follow_symlinks=isinstance(target, int))
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    headers: dict[str, str] = {}
    for key in sorted(names):
        if key.startswith(_OVERLAY_XATTR_PREFIX):
            continue
        try:
            value = os.getxattr(target, key, follow_symlinks=isinstance(target, int))
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed meanwhile
            raise
        headers[f"SCHILY.xattr.{key}"] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = headers


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise


def write_layer_tar(src: Path, out: BinaryIO, parent_dirs: Sequence[Path] = ()) -> str:
    """Write a PAX tar of the layer dir `src` to `out`; returns "sha256:<hex>" of the bytes.

    Without `parent_dirs` this is the layer diff (commit, save): overlay whiteouts become
    `.wh.<name>` and opaque dirs get a `.wh..wh..opq` entry. With `parent_dirs` (the lower
    layer dirs, nearest first) it is the merged filesystem with no whiteouts (export).
    Entries are sorted and times truncated to seconds, so equal trees give equal bytes.
    """
    sink = DigestingWriter(out)
    layers: list[int] = []
    try:
        for directory in (src, *parent_dirs):
            layers.append(os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            _Archiver(archive, merged=bool(parent_dirs)).walk("", layers)
    except OSError as exc:
        raise Internal(f"archiving layer {src}: {exc}") from exc
    finally:
        for fd in layers:
            os.close(fd)
    return sink.digest()
