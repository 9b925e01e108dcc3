"""What `docker cp` learns about a container path, and the path rules it relies on.

The CLI decides how to copy from the `X-Docker-Container-Path-Stat` header: a PathStat whose
`mode` is Go's `os.FileMode` (type bits high, permission bits low), not a Unix st_mode. The
path helpers mirror Go's `path.Clean`/`filepath.Base` and moby's archive naming, because the
CLI rebases the tar it receives by exactly those rules.
"""

from __future__ import annotations

import enum
import stat
from dataclasses import dataclass
from datetime import UTC, datetime


class GoMode(enum.IntFlag):
    """Go's os.FileMode type and special bits (io/fs)."""

    DIR = 1 << 31
    APPEND = 1 << 30
    EXCLUSIVE = 1 << 29
    TEMPORARY = 1 << 28
    SYMLINK = 1 << 27
    DEVICE = 1 << 26
    NAMED_PIPE = 1 << 25
    SOCKET = 1 << 24
    SETUID = 1 << 23
    SETGID = 1 << 22
    CHAR_DEVICE = 1 << 21
    STICKY = 1 << 20
    IRREGULAR = 1 << 19


_TYPE_BITS: dict[int, int] = {
    stat.S_IFDIR: GoMode.DIR,
    stat.S_IFLNK: GoMode.SYMLINK,
    stat.S_IFBLK: GoMode.DEVICE,
    stat.S_IFCHR: GoMode.DEVICE | GoMode.CHAR_DEVICE,
    stat.S_IFIFO: GoMode.NAMED_PIPE,
    stat.S_IFSOCK: GoMode.SOCKET,
    stat.S_IFREG: 0,
}


def go_file_mode(st_mode: int) -> int:
    """A Unix st_mode as Go's os.FileMode (what `os.Lstat(...).Mode()` returns on Linux)."""
    mode = st_mode & 0o777
    mode |= _TYPE_BITS.get(stat.S_IFMT(st_mode), GoMode.IRREGULAR)
    if st_mode & stat.S_ISUID:
        mode |= GoMode.SETUID
    if st_mode & stat.S_ISGID:
        mode |= GoMode.SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GoMode.STICKY
    return int(mode)


def go_time(ns: int) -> str:
    """Go's time.Time JSON form (RFC 3339, fraction without trailing zeros), in UTC."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{base}{fraction}Z"


@dataclass(frozen=True)
class PathStat:
    """dockerd's container.PathStat for one container path (the entry itself, not followed)."""

    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime_ns: int
    link_target: str = ""  # for a symlink: the container path it finally resolves to

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GoMode.DIR)

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode & GoMode.SYMLINK)


def go_clean(path: str) -> str:
    """Go's path.Clean: lexical, `..` at the root stays at the root, "" becomes "."."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def go_base(path: str) -> str:
    """Go's filepath.Base: the last element, trailing slashes ignored; "/" and "." kept."""
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _names_current_dir(path: str) -> bool:
    return go_base(path) == "."


def preserve_trailing(cleaned: str, original: str) -> str:
    """moby's PreserveTrailingDotOrSeparator: keep a trailing `/.` or `/` that cleaning
    removed; both ask for a directory's content (`/.`) or assert a directory (`/`)."""
    if not _names_current_dir(cleaned) and _names_current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


def container_abs_path(path: str) -> str:
    """The absolute container path dockerd works on for GET/PUT archive (`filepath.Join("/",
    path)` with the trailing `/` or `/.` kept)."""
    return preserve_trailing(go_clean("/" + path), path)


def archive_prefix(abs_path: str) -> str:
    """The name prefix of a directory's entries in a GET archive tar (`docker cp c:/etc .`
    gets `etc/`, `etc/passwd`; `/etc/.` gets `./`, `./passwd`; `/` gets `/`, `/etc/`).

    dockerd tars the directory with IncludeSourceDir and renames its leading `.` to
    filepath.Base(abs_path) ("/" renames it to nothing)."""
    base = go_base(abs_path)
    return "" if base == "/" else base


def dir_entry_name(prefix: str, rel: str, is_dir: bool) -> str:
    """The tar name of the entry `rel` ("" for the directory itself) under `prefix`."""
    name = f"{prefix}/{rel}" if rel else prefix
    if is_dir and not name.endswith("/"):
        name += "/"
    return name
