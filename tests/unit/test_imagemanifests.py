"""model/imagemanifests: the Manifests[] entries of an image, from its index or manifest."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.imagemanifests import LocalImage, ManifestKind, summaries
from dockyard.model.manifests import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    decode_platform,
)

D = "sha256:" + "d" * 64
A, B, C = ("sha256:" + c * 64 for c in "abc")
AMD = Platform("linux", "amd64")
MANIFEST = Manifest(OCI_MANIFEST, Descriptor("cfg", "sha256:" + "e" * 64, 100),
                    (Descriptor("layer", "sha256:" + "f" * 64, 1000), Descriptor("layer", "sha256:" + "1" * 64, 24)))  # fmt: skip
HERE = LocalImage(MANIFEST, 500, AMD, 7000, ("c1",))


def test_one_manifest_takes_its_platform_from_the_image() -> None:
    [entry] = summaries(Descriptor(DOCKER_MANIFEST, A, 500), MANIFEST, {A: HERE}.get)
    assert entry.id == A and entry.kind is ManifestKind.IMAGE and entry.available
    assert entry.descriptor.platform == AMD and entry.platform == AMD
    assert (entry.content_size, entry.unpacked_size, entry.total_size) == (1624, 7000, 8624)
    assert entry.containers == ("c1",)


def test_an_index_lists_every_entry_in_order() -> None:
    index = Index(OCI_INDEX, (
        Descriptor(OCI_MANIFEST, A, 500, AMD),
        Descriptor(OCI_MANIFEST, B, 400, Platform("linux", "arm64", "v8")),
        Descriptor(OCI_MANIFEST, C, 300, Platform("unknown", "unknown"),
                   (("vnd.docker.reference.type", "attestation-manifest"), ("vnd.docker.reference.digest", A))),
        Descriptor("application/vnd.example+json", D, 10),
    ))  # fmt: skip
    here, there, attestation, unknown = summaries(Descriptor(OCI_INDEX, D, 900), index, {A: HERE}.get)
    assert here.available and here.platform == AMD
    assert not there.available and there.kind is ManifestKind.IMAGE and there.platform == Platform("linux", "arm64", "v8")
    assert there.total_size == 0
    assert attestation.kind is ManifestKind.ATTESTATION and attestation.attests == A and not attestation.available
    assert unknown.kind is ManifestKind.UNKNOWN


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"os":"linux","architecture":"arm64","variant":"v8"}', Platform("linux", "arm64", "v8")),
        ('{"os":"linux","architecture":"amd64","os.version":"x"}', AMD),
    ],
)
def test_decode_platform(text: str, expected: Platform) -> None:
    assert decode_platform(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("linux/amd64", "failed to parse platform"),
        ('["linux"]', "failed to parse platform"),
        ('{"os":"linux"}', "both OS and Architecture must be provided"),
        ('{"variant":"v8"}', "optional platform fields provided, but OS and Architecture are missing"),
    ],
)
def test_decode_platform_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        decode_platform(text)
