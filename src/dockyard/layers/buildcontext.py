"""A build's context on disk, and COPY/ADD from it (or from an image) into a mounted rootfs.

The uploaded tar is unpacked by our own extraction (layers/containerfs.py: no `..`, no
absolute names, no writing through links). Sources are looked up under the context root with
symlinks resolved inside it (linux/rootpath.py) and the last one never followed: a link that
points out of the context is copied as the link, never as the file it names. What COPY adds
is written as a tar and unpacked into the target rootfs the same careful way.

Every function blocks; the engine runs them in a thread.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.layers.containerfs import ContainerFS, extract_archive
from dockyard.linux.rootpath import ContainerRoot
from dockyard.model.ignorepatterns import Pattern, can_skip_dir, is_ignored
from dockyard.streams.compression import Compression, sniff

_WILDCARD = re.compile(r"[*?\[]")


def unpack_context(spooled: Path, root: Path) -> None:
    """The context tar (plain, gzip, bzip2 or xz) into the empty directory `root`."""
    root.mkdir(mode=0o700)
    with spooled.open("r+b") as f:
        head = f.read(512)
        if not head:
            return  # an empty body: a build with no context
        if sniff(head) is Compression.NONE:
            # The CLI's tar for `-f -` (or a Dockerfile outside the context) ends right after
            # its last file's data, unpadded; Go's reader takes that as the end, and so do we.
            size = f.seek(0, os.SEEK_END)
            f.write(b"\0" * (-size % 512 + 1024))
        f.seek(0)
        try:
            extract_archive(ContainerFS(root, label="context"), "/", f)
        except InvalidArgument as exc:
            raise InvalidArgument(f"failed to read the build context: {exc.message}") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidArgument(f"failed to read the build context: {exc}") from None


def read_context_file(root: Path, name: str, limit: int = 4 << 20) -> bytes | None:
    """A file of the context (the Dockerfile, .dockerignore), looked up inside it."""
    with ContainerRoot(root, ()) as croot:
        try:
            return croot.read_file("/" + name.lstrip("/"), limit)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise InvalidArgument(f"reading {name} from the build context: {exc.strerror}") from None


def remove_ignored(root: Path, patterns: tuple[Pattern, ...], keep: frozenset[str]) -> None:
    """Drop what .dockerignore leaves out (the CLI did already; other clients may not)."""
    if not patterns:
        return
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top
        for name in list(dirs):
            rel = posixpath.join(rel_top, name)
            if can_skip_dir(rel, patterns):
                shutil.rmtree(os.path.join(top, name))
                dirs.remove(name)
        for name in files:
            rel = posixpath.join(rel_top, name)
            if rel not in keep and is_ignored(rel, patterns):
                os.unlink(os.path.join(top, name))


# --- sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    rel: str  # path under the source root, "" for the root itself
    host: Path  # where it is on the host (symlink-free up to the last part)
    st: os.stat_result
    remote: bool = False  # fetched from a URL by ADD: copied as is, never unpacked

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def _clean(path: str) -> str:
    return posixpath.normpath("/" + path).lstrip("/")


def _lookup(root: Path, rel: str) -> Source:
    with ContainerRoot(root, ()) as croot, croot.resolve("/" + rel) as entry:
        path = entry.path.lstrip("/")
    host = root / path if path else root
    return Source(path, host, os.lstat(host))


def _walk_all(root: Path) -> Iterator[str]:
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        rel_top = "" if rel_top == "." else rel_top
        dirs.sort()
        for name in (*sorted(dirs), *sorted(files)):
            yield posixpath.join(rel_top, name)


def _match(pattern: str, rel: str) -> bool:
    """Go's filepath.Match: wildcards stay within one path element."""
    parts, names = pattern.split("/"), rel.split("/")
    return len(parts) == len(names) and all(fnmatch.fnmatchcase(n, p) for p, n in zip(parts, names, strict=True))


def find_sources(root: Path, given: str, *, in_context: bool, instruction: str) -> list[Source]:
    """The sources one COPY/ADD argument names (a glob may name several)."""
    if in_context and (given.startswith("../") or given == ".." or posixpath.normpath(given).startswith("../")):
        raise InvalidArgument(f"{instruction} failed: forbidden path outside the build context: {given} ()")
    rel = _clean(given)
    if _WILDCARD.search(rel):
        found = [_lookup(root, r) for r in _walk_all(root) if _match(rel, r)]
        if not found:
            raise InvalidArgument(f"{instruction} failed: no source files were specified")
        return found
    try:
        return [_lookup(root, rel)]
    except (FileNotFoundError, NotADirectoryError):
        where = "build context or excluded by .dockerignore" if in_context else "the source image"
        raise NotFound(
            f"{instruction} failed: file not found in {where}: stat {rel or '.'}: file does not exist"
        ) from None


def _entries(source: Source) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(path below the source, host path, lstat) of a source and everything under it."""
    yield "", source.host, source.st
    if source.is_dir:
        for rel in _walk_all(source.host):
            host = source.host / rel
            yield rel, host, os.lstat(host)


def checksum(sources: list[Source]) -> str:
    """A digest of what COPY would add (names, modes, owners, link targets, contents; not
    times), the classic cache's key for COPY and ADD."""
    h = hashlib.sha256()
    for source in sources:
        for rel, host, st in _entries(source):
            h.update(f"{source.rel}/{rel}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(host).encode())
            elif stat.S_ISREG(st.st_mode):
                with host.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\0")
    return h.hexdigest()


def is_local_archive(source: Source) -> bool:
    """ADD unpacks a local tar (compressed or not) instead of copying it."""
    if not stat.S_ISREG(source.st.st_mode):
        return False
    with source.host.open("rb") as f:
        head = f.read(512)
    if sniff(head) is not Compression.NONE:
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


# --- into the rootfs ------------------------------------------------------------------


@dataclass(frozen=True)
class CopyPlan:
    sources: tuple[Source, ...]
    dest: str  # absolute, in the target; a trailing "/" kept
    owner: tuple[int, int] | None  # --chown; None: as in the source (root for the context)
    chmod: int | None
    unpack_archives: bool = False  # ADD


def _header(name: str, host: Path, st: os.stat_result, plan: CopyPlan, from_context: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    mode = stat.S_IMODE(st.st_mode)
    if plan.chmod is not None:
        mode = plan.chmod
    info.mode = mode
    uid, gid = plan.owner if plan.owner is not None else ((0, 0) if from_context else (st.st_uid, st.st_gid))
    info.uid, info.gid = uid, gid
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(host)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    else:
        raise InvalidArgument(f"{name}: only files, directories and links can be copied")
    return info


def _exists_dir(croot: ContainerRoot, path: str) -> bool | None:
    try:
        with croot.resolve(path, follow=True) as entry:
            return entry.is_dir
    except (FileNotFoundError, NotADirectoryError):
        return None


def copy_into(rootfs: Path, plan: CopyPlan, spool: BinaryIO, *, from_context: bool) -> None:
    """Add the plan's sources at its destination in the mounted `rootfs`, with dockerd's
    rules: a directory's contents go into the destination; a file goes to the destination,
    or into it when it ends with "/" or is a directory there; ADD unpacks local archives."""
    dest = plan.dest
    as_dir = dest.endswith("/")
    with ContainerRoot(rootfs, ()) as croot:
        dest_is_dir = _exists_dir(croot, dest)
    base = posixpath.normpath(dest).lstrip("/")
    archives: list[Source] = []
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dir_made = False

        def make_dest_dir() -> None:
            nonlocal dir_made
            if dest_is_dir is None and not dir_made and base:
                info = tarfile.TarInfo(base)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                if plan.owner is not None:
                    info.uid, info.gid = plan.owner
                tar.addfile(info)
            dir_made = True

        for source in plan.sources:
            if source.is_dir:
                make_dest_dir()
                for rel, host, st in _entries(source):
                    if not rel:
                        continue
                    info = _header(posixpath.join(base, rel) if base else rel, host, st, plan, from_context)
                    if info.isreg():
                        with host.open("rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                continue
            if plan.unpack_archives and not source.remote and is_local_archive(source):
                archives.append(source)
                continue
            if as_dir or dest_is_dir:
                make_dest_dir()
                name = posixpath.join(base, posixpath.basename(source.rel) or "file")
            else:
                if not base:
                    raise InvalidArgument("cannot copy a file to /: the destination must be a directory")
                name = base
            info = _header(name, source.host, source.st, plan, from_context)
            if info.isreg():
                with source.host.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        if archives:
            make_dest_dir()
    spool.seek(0)
    fs = ContainerFS(rootfs, label="build")
    extract_archive(fs, "/", spool)
    for source in archives:
        with source.host.open("rb") as f:
            extract_archive(fs, "/" + base, f, owner=plan.owner)


def make_dir(rootfs: Path, path: str) -> None:
    """WORKDIR: the directory is made (root's, 0755) if the image lacks it."""
    with ContainerRoot(rootfs, ()) as root:
        try:
            with root.resolve(path, follow=True):
                return
        except (FileNotFoundError, NotADirectoryError):
            pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(info)
    buf.seek(0)
    extract_archive(ContainerFS(rootfs, label="build"), "/", buf)
