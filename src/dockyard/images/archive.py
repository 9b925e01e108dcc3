"""Reading `docker save` / `docker load` archives.

Reading accepts what docker 20.10 writes (`<id>/layer.tar`, `<hex>.json`, `manifest.json`,
shared layers as tar links between members), what docker 25+ writes (an OCI image layout
plus `manifest.json`), what dockerd's containerd store and skopeo write (an OCI image layout,
maybe with `manifest.json`, with indexes, gzip/zstd layers). archive_writer.py writes.

Blocking file I/O throughout; callers run these in a thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform as host_platform
import posixpath
import re
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from dockyard.errors import Internal, InvalidArgument, NotFound
from dockyard.model.manifests import Index, Platform, choose, matches, parse_manifest
from dockyard.streams.compression import CORRUPT, Compression, Readable, decompressed, sniff

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"
LAYOUT_FILE = "oci-layout"
REPOSITORIES_FILE = "repositories"

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_MANIFEST_TYPES = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
_INDEX_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})
_MAX_JSON = 32 << 20  # configs, manifests, indexes: metadata, never this big
_MAX_LINK_HOPS = 16
_MAX_INDEX_DEPTH = 4
_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
           "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}  # fmt: skip


# ---- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveImage:
    config: bytes  # the image config blob, byte for byte
    config_digest: str  # "sha256:<hex>", verified against `config`
    repo_tags: tuple[str, ...]  # familiar "name:tag" as found; still untrusted input
    layers: tuple[str, ...]  # member names for Archive.open_layer, in rootfs order
    parent: str = ""  # manifest.json's Parent ("sha256:<hex>"), unchecked: the loader decides


@dataclass(frozen=True)
class ArchiveMember:
    """Where one tar member's data sits in the archive file."""

    kind: Literal["file", "symlink", "hardlink", "other"]
    offset: int
    size: int
    linkname: str


class ArchiveMemberReader(io.RawIOBase):
    """The data of one tar member, read straight from the archive file. With `expect`, its
    bytes must hash to that digest: reading the last byte of a mismatched blob raises."""

    def __init__(
        self, path: Path, name: str, offset: int, size: int, expect: str | None = None
    ) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the reader
        self._file.seek(offset)
        self._name = name
        self._left = size
        self._expect = expect
        self._hash = hashlib.sha256() if expect else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if not self._left or not len(view):
            return 0
        got = self._file.readinto(view[: min(len(view), self._left)])
        if not got:
            raise InvalidArgument(f"invalid archive: unexpected EOF in {self._name}")
        self._left -= got
        if self._hash is not None:
            self._hash.update(view[:got])
            if not self._left and "sha256:" + self._hash.hexdigest() != self._expect:
                raise InvalidArgument(
                    f"invalid archive: blob {self._name} does not match its digest {self._expect}"
                )
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


@dataclass(frozen=True)
class Archive:
    """A scanned archive file. Holds no open file: every `open_layer` opens its own."""

    path: Path
    images: tuple[ArchiveImage, ...]
    members: Mapping[str, ArchiveMember] = field(repr=False, compare=False)

    def open_layer(self, member: str) -> BinaryIO:
        """Stream one layer blob as stored (maybe compressed). Close it; `with` works."""
        wanted = _norm(member)
        name, entry = _resolve(self.members, wanted)
        # An OCI layout names a blob by its digest: hold the bytes to it as they stream.
        hex_name = wanted.removeprefix("blobs/sha256/")
        expect = "sha256:" + hex_name if hex_name != wanted and _HEX64.fullmatch(hex_name) else None
        return io.BufferedReader(
            ArchiveMemberReader(self.path, name, entry.offset, entry.size, expect), _CHUNK
        )


def _norm(name: str) -> str:
    path = posixpath.normpath(name.lstrip("/") or ".")
    if path == ".." or path.startswith("../"):
        raise InvalidArgument(f"invalid archive: path {name!r} points outside the archive")
    return path


def _resolve(members: Mapping[str, ArchiveMember], name: str) -> tuple[str, ArchiveMember]:
    """Follow tar symlinks/hardlinks between members (20.10 shares layers that way)."""
    current = name
    for _ in range(_MAX_LINK_HOPS):
        entry = members.get(current)
        if entry is None:
            raise InvalidArgument(f"invalid archive: {name} not found in the archive")
        if entry.kind == "file":
            return current, entry
        if entry.kind == "symlink":
            current = _norm(posixpath.join(posixpath.dirname(current), entry.linkname))
        elif entry.kind == "hardlink":
            current = _norm(entry.linkname)
        else:
            raise InvalidArgument(f"invalid archive: {name} is not a regular file")
    raise InvalidArgument(f"invalid archive: too many links resolving {name}")


def _scan(tar_path: Path) -> dict[str, ArchiveMember]:
    total = tar_path.stat().st_size
    members: dict[str, ArchiveMember] = {}
    if total == 0:
        return members  # dockerd reads an empty upload as an empty tar
    try:
        with tarfile.open(tar_path, mode="r:") as archive:
            for info in archive:
                kind: Literal["file", "symlink", "hardlink", "other"] = "other"
                if info.isreg() and not info.sparse:
                    kind = "file"
                elif info.issym():
                    kind = "symlink"
                elif info.islnk():
                    kind = "hardlink"
                try:
                    name = _norm(info.name)
                except InvalidArgument:
                    continue  # never referenced: manifest paths are normalized the same way
                members[name] = ArchiveMember(kind, info.offset_data, info.size, info.linkname)
    except tarfile.ReadError as exc:
        if str(exc) in ("unexpected end of data", "truncated header"):
            raise InvalidArgument("invalid archive: unexpected EOF") from exc
        raise InvalidArgument(f"invalid archive: not a tar archive ({exc})") from exc
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid archive: {exc}") from exc
    for name, entry in members.items():
        if entry.kind == "file" and entry.offset + entry.size > total:
            raise InvalidArgument(f"invalid archive: unexpected EOF in {name}")
    return members


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_sha256(digest: str) -> bool:
    return digest.startswith("sha256:") and _HEX64.fullmatch(digest[7:]) is not None


def _loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InvalidArgument(f"invalid archive: failed to decode {what}: {exc}") from exc


class _Reader:
    """Turns a scanned archive into ArchiveImages (one pass over its JSON documents)."""

    def __init__(
        self, tar_path: Path, members: Mapping[str, ArchiveMember], wanted: Platform, strict: bool
    ) -> None:
        self._path = tar_path
        self._members = members
        self._wanted = wanted  # picks one manifest out of an index
        self._strict = strict  # asked for: every image loaded must be of that platform

    def _fits(self, config: bytes, digest: str) -> bool:
        """Whether an image is loaded: all are, unless a platform was asked for."""
        if not self._strict:
            return True
        doc = _as_dict(_loads(config, f"image config {digest}"))
        offered = Platform(str(doc.get("os") or ""), str(doc.get("architecture") or ""),
                           str(doc.get("variant") or ""))  # fmt: skip
        return matches(self._wanted, offered)

    def read(self, name: str) -> bytes:
        real, entry = _resolve(self._members, _norm(name))
        if entry.size > _MAX_JSON:
            raise InvalidArgument(f"invalid archive: {name} is too large ({entry.size} bytes)")
        with ArchiveMemberReader(self._path, real, entry.offset, entry.size) as reader:
            data = bytearray()
            while len(data) < entry.size:
                chunk = reader.read(entry.size - len(data))
                if not chunk:
                    raise InvalidArgument(f"invalid archive: unexpected EOF in {name}")
                data += chunk
        return bytes(data)

    def _check_layers(self, config: bytes, digest: str, layers: list[str]) -> None:
        doc = _loads(config, f"image config {digest}")
        rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list):
            raise InvalidArgument(f"invalid archive: image config {digest} has no rootfs")
        if len(diff_ids) != len(layers):
            raise InvalidArgument(
                "invalid manifest, layers length mismatch: "
                f"expected {len(layers)}, got {len(diff_ids)}"
            )
        for layer in layers:
            _resolve(self._members, layer)  # present now, not half way through a load

    def from_manifest(self) -> list[ArchiveImage]:
        doc = _loads(self.read(MANIFEST_FILE), MANIFEST_FILE)
        if doc is None:
            raise InvalidArgument("invalid manifest, manifest cannot be null (but can be [])")
        if not isinstance(doc, list):
            raise InvalidArgument(f"invalid archive: {MANIFEST_FILE} is not a list")
        images = []
        for item in doc:
            if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
                raise InvalidArgument(f"invalid archive: bad entry in {MANIFEST_FILE}")
            tags = item.get("RepoTags") or []
            layers = item.get("Layers") or []
            if not _all_str(tags) or not _all_str(layers):
                raise InvalidArgument(f"invalid archive: bad entry in {MANIFEST_FILE}")
            config_name = item["Config"]
            config = self.read(config_name)
            digest = sha256_digest(config)
            # The name carries the digest in both layouts: "<hex>.json" or "blobs/sha256/<hex>".
            claimed = posixpath.basename(config_name).removesuffix(".json")
            claimed = claimed.removeprefix("sha256:")
            if _HEX64.fullmatch(claimed) and claimed != digest[7:]:
                raise InvalidArgument(
                    f"invalid archive: config {config_name} does not match its digest {digest}"
                )
            if not self._fits(config, digest):
                continue
            names = [_norm(layer) for layer in layers]
            self._check_layers(config, digest, names)
            parent = item.get("Parent")
            parent = parent if isinstance(parent, str) and is_sha256(parent) else ""
            images.append(ArchiveImage(config, digest, tuple(tags), tuple(names), parent))
        return images

    def _blob(self, descriptor: object, what: str) -> tuple[str, bytes]:
        name = _blob_name(descriptor, what)
        data = self.read(name)
        if sha256_digest(data)[7:] != posixpath.basename(name):
            raise InvalidArgument(f"invalid archive: {what} {name} does not match its digest")
        return name, data

    def _image_manifest(self, descriptor: object, depth: int) -> dict[str, Any]:
        """Descriptor -> image manifest, choosing our platform out of indexes."""
        if depth > _MAX_INDEX_DEPTH:
            raise InvalidArgument("invalid archive: image indexes nested too deep")
        name, data = self._blob(descriptor, "manifest")
        doc = _loads(data, name)
        if not isinstance(doc, dict):
            raise InvalidArgument(f"invalid archive: {name} is not an object")
        media = _as_dict(descriptor).get("mediaType") or doc.get("mediaType")
        if media in _MANIFEST_TYPES or (media is None and "config" in doc):
            return doc
        if media not in _INDEX_TYPES and not (media is None and "manifests" in doc):
            raise InvalidArgument(f"invalid archive: unsupported media type {media}")
        index = parse_manifest(data)
        if not isinstance(index, Index):
            raise InvalidArgument(f"invalid archive: {name} is not an image index")
        try:
            chosen = choose(index, self._wanted)
        except NotFound:
            raise NotFound(f"requested platform ({self._wanted}) not found") from None
        for candidate in doc.get("manifests") or ():
            if _as_dict(candidate).get("digest") == chosen.digest:
                return self._image_manifest(candidate, depth + 1)
        raise Internal(f"chosen manifest {chosen.digest} not in {name}")  # choose picks from these

    def from_index(self) -> list[ArchiveImage]:
        doc = _loads(self.read(INDEX_FILE), INDEX_FILE)
        descriptors = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(descriptors, list):
            raise InvalidArgument(f"invalid archive: {INDEX_FILE} has no manifests")
        found: dict[str, tuple[bytes, list[str], tuple[str, ...]]] = {}
        for descriptor in descriptors:
            manifest = self._image_manifest(descriptor, 0)
            _, config = self._blob(manifest.get("config"), "config")
            digest = sha256_digest(config)
            layer_list = manifest.get("layers") or []
            if not isinstance(layer_list, list):
                raise InvalidArgument("invalid archive: manifest layers is not a list")
            layers = tuple(_blob_name(layer, "layer") for layer in layer_list)
            tags = _annotation_tags(_as_dict(descriptor).get("annotations"))
            if not self._fits(config, digest):
                continue
            if digest in found:  # one index entry per tag of the same image
                found[digest][1].extend(t for t in tags if t not in found[digest][1])
                continue
            self._check_layers(config, digest, list(layers))
            found[digest] = (config, list(tags), layers)
        return [
            ArchiveImage(config, digest, tuple(tags), layers)
            for digest, (config, tags, layers) in found.items()
        ]


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _all_str(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _blob_name(descriptor: object, what: str) -> str:
    digest = _as_dict(descriptor).get("digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise InvalidArgument(f"invalid archive: {what} descriptor without a sha256 digest")
    if not _HEX64.fullmatch(digest[7:]):
        raise InvalidArgument(f"invalid archive: bad digest {digest!r}")
    return f"blobs/sha256/{digest[7:]}"


def _familiar(ref: str) -> str | None:
    """A full reference from an annotation -> "name:tag" as manifest.json spells it."""
    if "@" in ref:
        return None  # digests are not tags
    for prefix in ("docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            rest = ref.removeprefix("library/")
            if "/" not in rest.split(":", 1)[0]:
                ref = rest
            break
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return f"{ref}:latest"
    return ref if name else None


def _annotation_tags(annotations: object) -> list[str]:
    if not isinstance(annotations, dict):
        return []
    full = annotations.get(ANNOTATION_IMAGE_NAME)
    ref = annotations.get(ANNOTATION_REF_NAME)
    if not isinstance(full, str) or not full:
        # A bare tag ("latest", as dockerd writes) names nothing; a reference does.
        full = ref if isinstance(ref, str) and ("/" in ref or ":" in ref) else None
    tag = _familiar(full) if full else None
    return [tag] if tag else []


def host_architecture() -> str:
    machine = host_platform.machine().lower()
    return _ARCHES.get(machine, machine)


def _decompress_in_place(tar_path: Path) -> None:
    with open(tar_path, "rb") as probe:
        if sniff(probe.read(10)) is Compression.NONE:
            return
        # Members are read by offset later, so the plain tar must exist as a file.
        partial = tar_path.with_name(tar_path.name + ".plain")
        probe.seek(0)
        try:
            spool_archive(probe, partial)
            os.replace(partial, tar_path)
        finally:
            partial.unlink(missing_ok=True)


def read_archive(tar_path: Path, *, platform: Platform | None = None) -> Archive:
    """Scan a `docker save` tar. A gzip/bzip2/xz/zstd-compressed file (`docker load` takes
    those) is first replaced by its plain tar in place. Without `platform`, every image of
    manifest.json is read, and linux/<host arch> picked out of OCI indexes. With it, only
    images of that platform: none is dockerd's NotFound "requested platform (...) not found"."""
    try:
        _decompress_in_place(tar_path)
        members = _scan(tar_path)
    except OSError as exc:
        raise Internal(f"reading image archive {tar_path}: {exc}") from exc
    wanted = platform or Platform("linux", host_architecture())
    reader = _Reader(tar_path, members, wanted, platform is not None)
    try:
        images: list[ArchiveImage] = []
        if MANIFEST_FILE in members:
            images = reader.from_manifest()
        if INDEX_FILE in members and (MANIFEST_FILE not in members or (platform and not images)):
            # manifest.json lists one platform per image; the index may hold the asked one.
            images = reader.from_index()
        elif MANIFEST_FILE not in members:
            raise InvalidArgument(f"invalid archive: does not contain a {MANIFEST_FILE}")
    except OSError as exc:
        raise Internal(f"reading image archive {tar_path}: {exc}") from exc
    if platform is not None and not images:
        raise NotFound(f"requested platform ({platform}) not found")
    return Archive(tar_path, tuple(images), members)


def spool_archive(stream: BinaryIO, dest: Path) -> None:
    """Copy an uploaded archive to `dest` as a plain tar, undoing gzip/bzip2/xz on the way
    (`docker load` accepts compressed archives); read_archive wants random access."""
    with decompressed(stream) as source:
        _copy_plain(source, dest)


def _copy_plain(source: Readable, dest: Path) -> None:
    try:
        out = open(dest, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise Internal(f"spooling image archive to {dest}: {exc}") from exc
    with out:
        while True:
            try:
                chunk = source.read(_CHUNK)
            except EOFError as exc:
                raise InvalidArgument("invalid archive: unexpected EOF") from exc
            except CORRUPT as exc:
                # gzip/bz2 report corrupt data as OSError, like a failing upload stream.
                raise InvalidArgument(f"invalid archive: {exc}") from exc
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise Internal(f"spooling image archive to {dest}: {exc}") from exc


# ---- writing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveLayer:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar; verified while writing
    size: int  # exact byte length of that tar (AppliedLayer.tar_size), not the content size
    open: Callable[[], BinaryIO]  # the uncompressed layer tar; closed after use
    verified: bool = False  # `open`'s stream checks size and diff id itself (a tar-split replay)


@dataclass(frozen=True)
class SaveImage:
    config: bytes
    config_digest: str
    repo_tags: tuple[str, ...]  # "name:tag", familiar ("busybox:latest") or fully qualified
    layers: tuple[SaveLayer, ...]
    parent: str = ""  # the parent image's id, when that image is saved too (manifest.json's Parent)
