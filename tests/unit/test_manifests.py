"""Manifests, indexes and the platform choice (model/manifests.py)."""

from __future__ import annotations

import json

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.manifests import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Index,
    Manifest,
    Platform,
    choose,
    parse_manifest,
    parse_platform,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _manifest(media_type: str | None = DOCKER_MANIFEST, layer_type: str = "application/vnd.docker.image.rootfs.diff.tar.gzip") -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D1, "size": 10},
        "layers": [{"mediaType": layer_type, "digest": D2, "size": 20}],
    }
    if media_type:
        doc["mediaType"] = media_type
    return json.dumps(doc).encode()


def _index(*entries: tuple[str, dict[str, str], dict[str, str] | None]) -> Index:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": p, **({"annotations": a} if a else {})}
        for d, p, a in entries
    ]}).encode()  # fmt: skip
    parsed = parse_manifest(raw)
    assert isinstance(parsed, Index)
    return parsed


def test_schema2_manifest() -> None:
    m = parse_manifest(_manifest())
    assert isinstance(m, Manifest)
    assert m.config.digest == D1 and [layer.digest for layer in m.layers] == [D2]


def test_oci_manifest_without_media_type_is_told_by_its_keys() -> None:
    m = parse_manifest(_manifest(None, "application/vnd.oci.image.layer.v1.tar+zstd"))
    assert isinstance(m, Manifest) and m.media_type == OCI_MANIFEST


def test_content_type_used_when_the_document_has_none() -> None:
    m = parse_manifest(_manifest(None), DOCKER_MANIFEST + "; charset=utf-8")
    assert isinstance(m, Manifest) and m.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "invalid manifest"),
        (b"[]", "not a JSON object"),
        (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema 1 has been removed"),
        (_manifest(layer_type="application/x-foo"), "unsupported media type application/x-foo"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": {"digest": "sha256:12", "size": 1}, "layers": []}).encode(),
         "bad digest"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": {"digest": D1, "size": -1}, "layers": []}).encode(), "bad size"),
        (json.dumps({"mediaType": OCI_INDEX}).encode(), "no manifests"),
        (b" " * (4 << 20) + b"{}", "manifest too big"),
    ],
)
def test_bad_manifests(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_manifest(raw)


def test_choose_platform() -> None:
    index = _index(
        (D1, {"os": "linux", "architecture": "arm64", "variant": "v8"}, None),
        (D2, {"os": "linux", "architecture": "amd64"}, None),
        (D3, {"os": "unknown", "architecture": "unknown"}, {"vnd.docker.reference.type": "attestation-manifest"}),
    )
    assert choose(index, Platform("linux", "amd64")).digest == D2
    assert choose(index, parse_platform("linux/arm64")).digest == D1
    assert choose(index, parse_platform("aarch64")).digest == D1
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        choose(index, parse_platform("linux/s390x"))
    with pytest.raises(NotFound):
        choose(index, Platform("unknown", "unknown"))  # attestations are never chosen


def test_arm_variants() -> None:
    index = _index(
        (D1, {"os": "linux", "architecture": "arm", "variant": "v6"}, None),
        (D2, {"os": "linux", "architecture": "arm", "variant": "v7"}, None),
    )
    assert choose(index, parse_platform("linux/arm")).digest == D2  # arm means arm/v7
    assert choose(index, parse_platform("linux/arm/v6")).digest == D1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("arm64", Platform("linux", "arm64", "v8")),
        ("linux", Platform("linux", "amd64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "/amd64"])
def test_bad_platform(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid platform format"):
        parse_platform(text)
