"""Layer tars in and out of one overlayfs layer directory (a layer's `diff` dir).

Docker/OCI layer tars mark deletions with whiteout files (`.wh.<name>`, `.wh..wh..opq`);
overlayfs marks them with 0:0 character devices and the `trusted.overlay.opaque` xattr.
`apply_layer_tar` converts the first into the second while extracting, `write_layer_tar`
converts back while archiving. Both are blocking; callers run them in a thread.

Extraction (layers/extraction.py) never resolves a path through anything but a real directory
opened with O_NOFOLLOW relative to its parent's fd, so a symlink planted by the layer itself
(or already in `dest`) can never redirect a later member outside `dest`. Archiving walks the
tree iteratively, one directory fd per level: a container's 1,000-deep tree commits fine.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import Internal, InvalidArgument
from dockyard.layers.extraction import DIR_FLAGS, TreeExtraction
from dockyard.layers.tarformat import (
    BadInput,
    EntryWriter,
    Guarded,
    clean_name,
    header,
    is_whiteout,
    members,
    tar_error_message,
)
from dockyard.layers.tarreplay import open_file_in
from dockyard.layers.tarsplit import BadIndex, Recorder
from dockyard.streams.compression import CHUNK, decompressed
from dockyard.streams.digest import DigestingReader, DigestingWriter

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_META_PREFIX = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk etc.): never content


@dataclass(frozen=True)
class AppliedLayer:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream
    size: int  # sum of regular file sizes
    tar_size: int  # bytes in the uncompressed tar stream (what SaveLayer.size wants)


def _set_opaque(fd: int) -> None:
    os.setxattr(fd, OPAQUE_XATTR, b"y")


class _LayerExtraction(TreeExtraction):
    """Whiteouts become 0:0 character devices, opaque markers the opaque xattr. With a
    tar-split recorder, each regular file's data is announced to it as held by the file."""

    def __init__(self, root_fd: int, recorder: Recorder | None = None) -> None:
        super().__init__(root_fd)
        self._recorder = recorder
        self._fresh = ""  # the path whose new reference the recorder holds already

    def _regular(self, rel: str, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        recorder = self._recorder
        if recorder is None or member.issparse():
            super()._regular(rel, member, archive)
            return
        if recorder.referenced(rel):  # the same path earlier in this tar: keep its bytes
            with open(open_file_in(self._root, rel), "rb") as f:
                recorder.preserve(rel, f)
        # Before its data is read: the recorder cuts it out of what passes through.
        recorder.content(member.offset_data, member.size, rel)
        self._fresh = rel
        try:
            super()._regular(rel, member, archive)
        finally:
            self._fresh = ""

    def _replacing(self, rel: str, old: os.stat_result, member: tarfile.TarInfo | None) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        removed_dir = stat.S_ISDIR(old.st_mode) and (member is None or not member.isdir())
        doomed = recorder.referenced_under(rel) if removed_dir else []
        if rel != self._fresh and recorder.referenced(rel):
            doomed.append(rel)
        for path in doomed:
            with open(open_file_in(self._root, path), "rb") as f:
                recorder.preserve(path, f)

    def _not_a_directory(self, parent: int, name: str, rel: str, create: bool) -> int:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not (create and is_whiteout(st)):
            return super()._not_a_directory(parent, name, rel, create)
        # `.wh.d` then `d/x` in one layer: a new d replacing the lower one, i.e. opaque.
        os.unlink(name, dir_fd=parent)
        self._mkdir(parent, name)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        _set_opaque(fd)
        return fd

    def _made_directory(self, fd: int, old: os.stat_result | None) -> None:
        if old is not None and is_whiteout(old):
            _set_opaque(fd)  # re-created after deletion: opaque

    def add(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        rel = clean_name(member.name)
        parts = rel.split("/") if rel else []
        if any(p.startswith(_META_PREFIX) for p in parts[:-1]):
            return  # inside aufs bookkeeping dirs
        base = parts[-1] if parts else ""
        if base == OPAQUE_MARKER:
            _set_opaque(self._dir(rel.rpartition("/")[0]))
            return
        if base.startswith(_META_PREFIX):
            return
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(rel, base[len(WHITEOUT_PREFIX) :], member)
            return
        if rel == "":
            if not member.isdir():
                raise InvalidArgument("invalid layer tar: the layer root must be a directory")
            self.apply_fd_meta(self._root, member, "")
            return
        self.add_entry(rel, member, archive)

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
            fd = os.open(target, DIR_FLAGS, dir_fd=parent)
            try:
                _set_opaque(fd)
            finally:
                os.close(fd)


@dataclass(frozen=True)
class SplitOutput:
    """Where the tar-split index of an applied layer goes (layers/tarsplit.py)."""

    index: BinaryIO
    extra: BinaryIO


def apply_layer_tar(stream: BinaryIO, dest: Path, split: SplitOutput | None = None) -> AppliedLayer:
    """Extract a (possibly gzip/bzip2/xz-compressed) layer tar into the layer dir `dest`,
    turning whiteouts into overlayfs form. Returns the diff id of the uncompressed stream.
    With `split`, records the index that rebuilds the exact tar from `dest`.
    On error `dest` is left partly written; the caller discards the layer dir."""
    try:
        plain = decompressed(stream)
    except OSError as exc:
        raise InvalidArgument(f"invalid layer tar: reading layer: {exc}") from exc
    digesting = DigestingReader(Guarded(plain))
    recorder = Recorder(digesting, split.index, split.extra) if split is not None else None
    reader = recorder or digesting
    try:
        extraction = _LayerExtraction(
            os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), recorder
        )
    except OSError as exc:
        raise Internal(f"opening layer directory {dest}: {exc}") from exc
    member_name = ""
    try:
        for member, archive in members(reader, lambda: digesting.count):
            member_name = member.name
            extraction.add(member, archive)
        member_name = ""
        while reader.read(CHUNK):  # the digest covers the whole stream (tar padding included)
            pass
        extraction.finish()
        if recorder is not None:
            recorder.finish(digesting.digest())
    except BadIndex as exc:
        raise Internal(f"recording the layer index: {exc}") from exc
    except BadInput as exc:
        raise InvalidArgument(f"invalid layer tar: {exc}") from exc
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid layer tar: {tar_error_message(exc)}") from exc
    except OSError as exc:
        where = f" at {member_name}" if member_name else ""
        raise Internal(f"applying layer to {dest}{where}: {exc}") from exc
    finally:
        extraction.close()
    return AppliedLayer(diff_id=digesting.digest(), size=extraction.size, tar_size=digesting.count)


def is_opaque(fd: int) -> bool:
    """Does this overlay directory hide what the layers beneath hold under its name?"""
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise


@dataclass
class _Frame:
    """One directory being archived: its fd in each contributing layer (top first, owned
    except at the top level) and the names still to visit."""

    rel: str
    layers: list[int]
    pending: list[tuple[str, int, os.stat_result]] = field(default_factory=list)


class _Archiver:
    """Walks one layer dir (or a stack of them) through dir fds and writes tar entries."""

    def __init__(self, archive: tarfile.TarFile, merged: bool) -> None:
        self._entries = EntryWriter(archive)
        self._tar = archive
        self._merged = merged

    def _listing(self, layers: list[int]) -> list[tuple[str, int, os.stat_result]]:
        """The entries of one directory, sorted by name, each from its topmost layer."""
        entries: dict[str, tuple[int, os.stat_result] | None] = {}
        for fd in layers:
            for name in os.listdir(fd):
                if name in entries:
                    continue
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                # Merged (export) view: a whiteout hides the name in every lower layer.
                entries[name] = None if self._merged and is_whiteout(st) else (fd, st)
            if self._merged and is_opaque(fd):
                break
        found = [(name, *entry) for name, entry in entries.items() if entry is not None]
        return sorted(found, key=lambda item: item[0], reverse=True)  # popped from the end

    def walk(self, layers: list[int]) -> None:
        stack = [_Frame("", layers, self._listing(layers))]
        try:
            while stack:
                frame = stack[-1]
                if not frame.pending:
                    stack.pop()
                    if stack:  # the top level's fds belong to the caller
                        for fd in frame.layers:
                            os.close(fd)
                    continue
                name, fd, st = frame.pending.pop()
                path = f"{frame.rel}/{name}" if frame.rel else name
                if not stat.S_ISDIR(st.st_mode):
                    self._non_directory(path, name, fd, st)
                    continue
                lower = frame.layers[frame.layers.index(fd) + 1 :]
                child = self._enter(path, name, fd, st, lower)
                try:
                    child.pending = self._listing(child.layers)
                except BaseException:
                    for child_fd in child.layers:
                        os.close(child_fd)
                    raise
                stack.append(child)
        finally:
            for frame in stack[1:]:
                for fd in frame.layers:
                    os.close(fd)

    def _enter(self, path: str, name: str, fd: int, st: os.stat_result, lower: list[int]) -> _Frame:
        own = os.open(name, DIR_FLAGS, dir_fd=fd)
        stack = [own]
        try:
            self._entries.directory(path, own)
            opaque = is_opaque(own)
            if opaque and not self._merged:
                marker = header(f"{path}/{OPAQUE_MARKER}", st, tarfile.REGTYPE)
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
                    stack.append(os.open(name, DIR_FLAGS, dir_fd=low))
        except BaseException:
            for child in stack:
                os.close(child)
            raise
        return _Frame(path, stack)

    def _non_directory(self, path: str, name: str, fd: int, st: os.stat_result) -> None:
        if is_whiteout(st):  # only reached for a single diff dir
            dirname, _, base = path.rpartition("/")
            wh_path = f"{dirname}/{WHITEOUT_PREFIX}{base}" if dirname else WHITEOUT_PREFIX + base
            info = header(wh_path, st, tarfile.REGTYPE)
            info.mode = 0o600
            self._tar.addfile(info)
            return
        self._entries.non_directory(path, fd, name, st)


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
            _Archiver(archive, merged=bool(parent_dirs)).walk(layers)
    except OSError as exc:
        raise Internal(f"archiving layer {src}: {exc}") from exc
    finally:
        for fd in layers:
            os.close(fd)
    return sink.digest()
