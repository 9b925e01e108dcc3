"""The manifests behind a local image, as dockerd 28's multi-platform image store lists them
(`GET /images/json?manifests=1`, `ImageManifestSummary`): one entry per manifest of the index
the image was pulled by (or the one manifest), each available or not, image or attestation."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.model.manifests import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
)


class ManifestKind(enum.Enum):
    IMAGE = "image"
    ATTESTATION = "attestation"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LocalImage:
    """What the store holds for one manifest: its parsed document and the image it made."""

    manifest: Manifest
    manifest_size: int
    platform: Platform
    unpacked_size: int
    containers: tuple[str, ...]


@dataclass(frozen=True)
class ManifestSummary:
    descriptor: Descriptor  # as the index lists it (with platform and annotations)
    kind: ManifestKind
    available: bool  # config and every layer are here
    content_size: int  # manifest, config and layer blobs as the registry has them
    unpacked_size: int  # the layers unpacked (images only)
    platform: Platform | None = None  # images only
    containers: tuple[str, ...] = ()  # images only
    attests: str = ""  # attestations only: the manifest digest they are about

    @property
    def id(self) -> str:
        return self.descriptor.digest

    @property
    def total_size(self) -> int:
        return self.content_size + self.unpacked_size


def summaries(
    top: Descriptor, document: Manifest | Index, local: Callable[[str], LocalImage | None]
) -> tuple[ManifestSummary, ...]:
    """The entries for an image named by `top` (an index or a manifest); `local(digest)` says
    what is here for a manifest digest."""
    if isinstance(document, Manifest):
        found = local(top.digest)
        descriptor = top if found is None else Descriptor(top.media_type, top.digest, top.size, found.platform)
        return (_image(descriptor, found),)
    return tuple(_entry(d, local) for d in document.manifests)


def _entry(descriptor: Descriptor, local: Callable[[str], LocalImage | None]) -> ManifestSummary:
    if descriptor.attestation:
        return ManifestSummary(descriptor, ManifestKind.ATTESTATION, False, 0, 0, attests=descriptor.attests)
    if descriptor.media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        return ManifestSummary(descriptor, ManifestKind.UNKNOWN, False, 0, 0)
    return _image(descriptor, local(descriptor.digest))


def _image(descriptor: Descriptor, found: LocalImage | None) -> ManifestSummary:
    if found is None:
        return ManifestSummary(descriptor, ManifestKind.IMAGE, False, 0, 0, platform=descriptor.platform)
    m = found.manifest
    content = found.manifest_size + m.config.size + sum(layer.size for layer in m.layers)
    return ManifestSummary(
        descriptor, ManifestKind.IMAGE, True, content, found.unpacked_size,
        platform=descriptor.platform or found.platform, containers=found.containers,
    )  # fmt: skip
