"""Registry manifests: Docker schema 2 and OCI image manifests, manifest lists and OCI
indexes, parsed from their JSON; and the choice of one platform's manifest from an index."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.references import is_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# What dockerd's pull asks for, in its order.
ACCEPT = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)

# Layer media types a pull can apply: tar, gzip, zstd (foreign and non-distributable too).
LAYER_TYPES = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})  # fmt: skip

# dockerd's limit on a manifest's size (distribution's maxManifestBodySize is 4 MiB).
MAX_MANIFEST_BYTES = 4 << 20
MAX_CONFIG_BYTES = 8 << 20

# Attestation manifests (BuildKit's provenance/SBOM) name their subject with this annotation.
_REFERENCE_TYPE = "vnd.docker.reference.type"
_REFERENCE_DIGEST = "vnd.docker.reference.digest"


class ManifestKind(enum.Enum):
    IMAGE = "image"
    INDEX = "index"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()  # as the document lists them

    def annotation(self, key: str) -> str:
        return next((v for k, v in self.annotations if k == key), "")

    @property
    def attestation(self) -> bool:
        """BuildKit's provenance/SBOM manifests in an index: kept and listed, never run."""
        return self.annotation(_REFERENCE_TYPE) == "attestation-manifest"

    @property
    def attests(self) -> str:
        """The manifest digest an attestation is about."""
        return self.annotation(_REFERENCE_DIGEST)


@dataclass(frozen=True)
class Manifest:
    """An image manifest (schema 2 or OCI): its config and layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    """A manifest list or OCI index: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


def normalize_platform(p: Platform) -> Platform:
    """As containerd's platforms.Normalize: aliases, and the default variants arm64/v8, arm/v7."""
    os_ = p.os.lower() or "linux"
    arch = _ARCH_ALIASES.get(p.architecture.lower(), p.architecture.lower())
    variant = p.variant.lower()
    if p.architecture.lower() == "armel":
        variant = variant or "v6"
    if arch == "arm64" and variant in ("", "8"):
        variant = "v8"
    elif arch == "arm" and variant == "":
        variant = "v7"
    elif arch == "arm" and variant in ("5", "6", "7", "8"):
        variant = "v" + variant
    return Platform(os_, arch, variant)


def parse_platform(text: str) -> Platform:
    """`--platform linux/arm64/v8`, `linux`, `arm64` (an architecture alone means linux)."""
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3 or not all(parts):
        raise InvalidArgument(f'"{text}": invalid platform format')
    if len(parts) == 1:
        first = parts[0].lower()
        if first in ("linux", "windows", "darwin", "freebsd"):
            return normalize_platform(Platform(first, "amd64"))
        return normalize_platform(Platform("linux", first))
    return normalize_platform(Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else ""))


def decode_platform(text: str) -> Platform:
    """The JSON ocispec.Platform of `platform=`/`platforms=` on inspect, history, rmi, save
    and load (API 1.48+), checked as dockerd's httputils.DecodePlatform checks it."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"failed to parse platform: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument("failed to parse platform: not a JSON object")
    os_name, arch, variant = (str(doc.get(k) or "") for k in ("os", "architecture", "variant"))
    if not os_name and not arch and (variant or doc.get("os.version") or doc.get("os.features")):
        raise InvalidArgument("optional platform fields provided, but OS and Architecture are missing")
    if not os_name or not arch:
        raise InvalidArgument("both OS and Architecture must be provided")
    return Platform(os_name, arch, variant)


def matches(wanted: Platform, offered: Platform) -> bool:
    w, o = normalize_platform(wanted), normalize_platform(offered)
    return w.os == o.os and w.architecture == o.architecture and (not w.variant or w.variant == o.variant)


def choose(index: Index, wanted: Platform) -> Descriptor:
    """The manifest of `wanted` in an index, as dockerd picks it: attestations never, the
    first exact match (variant included), else the first of the same os/architecture."""
    candidates = [d for d in index.manifests if d.platform is not None and not d.attestation]
    norm = normalize_platform(wanted)
    exact = [d for d in candidates if d.platform is not None and normalize_platform(d.platform) == norm]
    if exact:
        return exact[0]
    loose = [d for d in candidates if d.platform is not None and matches(wanted, d.platform)]
    if loose:
        return loose[0]
    if not wanted.variant:
        same_arch = [d for d in candidates if d.platform is not None
                     and normalize_platform(d.platform).os == norm.os
                     and normalize_platform(d.platform).architecture == norm.architecture]  # fmt: skip
        if same_arch:
            return same_arch[0]
    raise NotFound(f"no matching manifest for {norm} in the manifest list entries")


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: not a JSON object")
    return doc


def _descriptor(doc: Any, what: str) -> Descriptor:
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: descriptor is not an object")
    digest = doc.get("digest")
    size = doc.get("size")
    if not isinstance(digest, str) or not is_digest(digest) or not digest.startswith("sha256:"):
        raise InvalidArgument(f"invalid {what}: bad digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"invalid {what}: bad size {size!r}")
    platform = None
    p = doc.get("platform")
    if isinstance(p, dict):
        platform = Platform(str(p.get("os") or ""), str(p.get("architecture") or ""), str(p.get("variant") or ""))
    raw_annotations = doc.get("annotations")
    annotations = tuple(
        (str(k), str(v)) for k, v in (raw_annotations.items() if isinstance(raw_annotations, dict) else ())
    )
    return Descriptor(str(doc.get("mediaType") or ""), digest, size, platform, annotations)


def parse_manifest(raw: bytes, content_type: str = "") -> Manifest | Index:
    """A manifest or index as a registry served it. The document's own mediaType wins over
    the Content-Type; OCI documents may carry neither, and are told apart by their keys."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise InvalidArgument(f"manifest too big: {len(raw)} bytes (at most {MAX_MANIFEST_BYTES})")
    doc = _object(raw, "manifest")
    media_type = str(doc.get("mediaType") or "") or content_type.split(";")[0].strip()
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise InvalidArgument(
            "support for Docker Image Format v1 and Docker Image manifest version 2, schema 1 has been removed"
        )
    if media_type not in (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX):
        if "manifests" in doc:
            media_type = OCI_INDEX
        elif "layers" in doc or "config" in doc:
            media_type = OCI_MANIFEST
        else:
            raise InvalidArgument(f"unsupported media type {media_type or 'of an unknown manifest'}")
    if media_type in (DOCKER_MANIFEST_LIST, OCI_INDEX):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise InvalidArgument("invalid manifest list: no manifests")
        return Index(media_type, tuple(_descriptor(m, "manifest list") for m in entries))
    config = _descriptor(doc.get("config"), "manifest config")
    if config.media_type not in (DOCKER_CONFIG, OCI_CONFIG, ""):
        raise InvalidArgument(f"unsupported media type {config.media_type}")
    layers_doc = doc.get("layers")
    if not isinstance(layers_doc, list):
        raise InvalidArgument("invalid manifest: no layers")
    layers = tuple(_descriptor(layer, "manifest layer") for layer in layers_doc)
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise InvalidArgument(f"unsupported media type {layer.media_type}")
    return Manifest(media_type, config, layers)
