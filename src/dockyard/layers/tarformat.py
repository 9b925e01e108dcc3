"""The tar format as dockerd reads and writes it, shared by layer tars and `docker cp`.

Reading: a strict header reader (a corrupt header is an error, as in Go, not an early end),
member names cleaned as Go's filepath.Clean does, PAX times and xattrs. Writing: headers from
an lstat with numeric owners and whole-second times, xattrs as SCHILY records.
"""

from __future__ import annotations

import base64
import errno
import logging
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Self, cast

from dockyard.errors import InvalidArgument
from dockyard.model.pathstat import go_clean
from dockyard.streams.compression import CORRUPT, Readable

log = logging.getLogger(__name__)

OVERLAY_XATTR_PREFIX = "trusted.overlay."
CHUNK = 1 << 20
STREAM_BUFFER = 1 << 20  # tarfile's stream mode reads 10 KiB at a time otherwise

# tarfile keeps its header error classes out of its stubs; these two only mean "archive ended".
_END_OF_ARCHIVE: tuple[type[BaseException], ...] = (
    getattr(tarfile, "EOFHeaderError"),  # noqa: B009
    getattr(tarfile, "EmptyHeaderError"),  # noqa: B009
)

XattrFilter = Callable[[str], bool]


class BadInput(Exception):
    """The stream is not a valid (compressed) tar; callers surface it as InvalidArgument."""


class Guarded:
    """Reads a (decompressing) stream, reporting corrupt or cut data as BadInput."""

    def __init__(self, source: Readable) -> None:
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._source.read(size)
        except EOFError as exc:
            raise BadInput("unexpected EOF") from exc
        except CORRUPT as exc:
            raise BadInput(f"corrupt stream: {exc}") from exc


class StrictTarInfo(tarfile.TarInfo):
    """tarfile quietly stops at a corrupt header after the first member; Go's reader (and so
    dockerd) fails, and a half-applied archive must not pass as a whole one."""

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(archive)
        except _END_OF_ARCHIVE:
            raise
        except (tarfile.TarError, UnicodeError) as exc:
            raise BadInput(f"invalid tar header: {exc}") from exc


def members(reader: Readable, count: Callable[[], int]) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The members of a plain tar stream, in order, with the archive to read their data from.
    An empty stream is an empty archive (as for Go's reader); `count` says whether anything
    was read before tarfile gave up on the first header."""
    try:
        # Closed by the `with` below once we know the stream was not empty.
        archive = tarfile.open(  # noqa: SIM115
            fileobj=cast(BinaryIO, reader), mode="r|", tarinfo=StrictTarInfo, bufsize=STREAM_BUFFER
        )
    except tarfile.ReadError:
        if count():
            raise
        return
    with archive:
        for member in archive:
            yield member, archive
            # Stream mode keeps every header it has read; a big archive has many.
            cast(list[tarfile.TarInfo], getattr(archive, "members")).clear()  # noqa: B009


def tar_error_message(exc: tarfile.TarError) -> str:
    message = str(exc)
    return "unexpected EOF" if message in ("unexpected end of data", "empty file") else message


def clean_name(name: str, what: str = "layer tar", scope: str = "the layer") -> str:
    """Archive path -> path relative to the extraction root ("" for the root itself), by Go's
    rule: Clean keeps a leading `..` of a relative name (refused), and `/../x` is `/x`."""
    path = go_clean(name or ".")
    if path == ".." or path.startswith("../"):
        raise InvalidArgument(f"invalid {what}: {name!r} points outside {scope}")
    path = path.lstrip("/")
    return "" if path == "." else path


def _pax_ns(member: tarfile.TarInfo, key: str) -> int | None:
    raw = member.pax_headers.get(key)
    if raw is None:
        return None
    try:
        return int(Decimal(raw) * 1_000_000_000)
    except (InvalidOperation, ValueError):
        return None


def times_ns(member: tarfile.TarInfo) -> tuple[int, int]:
    # PAX times carry sub-second precision that tarfile's float would round away.
    mtime = _pax_ns(member, "mtime")
    if mtime is None:
        mtime = int(member.mtime) * 1_000_000_000
    atime = _pax_ns(member, "atime")
    return (mtime if atime is None else atime), mtime


def member_xattrs(member: tarfile.TarInfo, what: str = "layer tar") -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            found.append((key[13:], value.encode("utf-8", "surrogateescape")))
        elif key.startswith("LIBARCHIVE.xattr."):
            try:
                data = base64.b64decode(value + "=" * (-len(value) % 4))
            except ValueError as exc:
                raise InvalidArgument(f"invalid {what}: {member.name}: bad xattr") from exc
            found.append((urllib.parse.unquote(key[17:]), data))
    # Overlay's own xattrs from a tar could redirect lookups; opacity comes from whiteouts.
    return [(k, v) for k, v in found if not k.startswith(OVERLAY_XATTR_PREFIX)]


# xattr calls take an fd (the file itself) or a path whose last component must not be followed;
# Python refuses follow_symlinks=False together with an fd, hence isinstance(target, int).
def set_xattrs(target: int | str, xattrs: list[tuple[str, bytes]], name: str) -> None:
    for key, value in xattrs:
        try:
            os.setxattr(target, key, value, follow_symlinks=isinstance(target, int))
        except OSError as exc:
            # user.* is refused on symlinks and devices, some filesystems lack a namespace:
            # dockerd skips these with a warning as well.
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise
            log.warning("tar member %s: xattr %s not set: %s", name, key, exc)


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def header(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""  # numeric ids only: names depend on the host's passwd
    info.mtime = st.st_mtime_ns // 1_000_000_000  # whole seconds, as dockerd, for repeatability
    return info


def all_but_overlay(key: str) -> bool:
    return not key.startswith(OVERLAY_XATTR_PREFIX)


def add_xattrs(info: tarfile.TarInfo, target: int | str, keep: XattrFilter = all_but_overlay) -> None:
    try:
        names = os.listxattr(target, follow_symlinks=isinstance(target, int))
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    headers: dict[str, str] = {}
    for key in sorted(names):
        if not keep(key):
            continue
        try:
            value = os.getxattr(target, key, follow_symlinks=isinstance(target, int))
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed meanwhile
            raise
        headers[f"SCHILY.xattr.{key}"] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = headers


class EntryWriter:
    """Adds one filesystem object (named in a directory fd) to a tar, with hardlinks found by
    inode and file data read from what was actually opened."""

    def __init__(self, archive: tarfile.TarFile, keep_xattr: XattrFilter = all_but_overlay) -> None:
        self.tar = archive
        self._keep = keep_xattr
        self._links: dict[tuple[int, int], str] = {}

    def directory(self, name: str, fd: int) -> None:
        info = header(name if name.endswith("/") else name + "/", os.fstat(fd), tarfile.DIRTYPE)
        add_xattrs(info, fd, self._keep)
        self.tar.addfile(info)

    def non_directory(self, name: str, dir_fd: int, entry: str, st: os.stat_result) -> None:
        """`entry` in `dir_fd` (already lstat'ed as `st`) as the tar member `name`."""
        if stat.S_ISSOCK(st.st_mode):
            return  # sockets don't survive a tar; dockerd skips them too
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info = header(name, st, tarfile.LNKTYPE)
            info.linkname = self._links[key]
            self.tar.addfile(info)
            return
        if stat.S_ISREG(st.st_mode):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            self.regular(name, os.open(entry, flags, dir_fd=dir_fd))
        else:
            self.special(name, dir_fd, entry, st)
        if st.st_nlink > 1:
            self._links[key] = name

    def regular(self, name: str, file_fd: int) -> None:
        """A regular file from its fd (taken over and closed)."""
        with open(file_fd, "rb") as source:
            st = os.fstat(file_fd)  # what we actually opened, not what we listed
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EAGAIN, f"{name} changed type while reading")
            info = header(name, st, tarfile.REGTYPE)
            info.size = st.st_size
            add_xattrs(info, file_fd, self._keep)
            self.tar.addfile(info, _Exactly(source, st.st_size))

    def special(self, name: str, dir_fd: int, entry: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            info = header(name, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(entry, dir_fd=dir_fd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info = header(name, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info = header(name, st, tarfile.FIFOTYPE)
        else:
            raise OSError(errno.EINVAL, f"{name} has an unknown file type {mode:o}")
        add_xattrs(info, f"/proc/self/fd/{dir_fd}/{entry}", self._keep)
        self.tar.addfile(info)


class _Exactly:
    """A file cut or padded to the size its header announced: a file growing or shrinking
    while it is archived (a running container) must not break the tar framing."""

    def __init__(self, source: Readable, size: int) -> None:
        self._source = source
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._source.read(want)
        if not data:
            data = b"\0" * want  # shrank: pad, as tar readers expect the announced size
        self._left -= len(data)
        return data
