"""Writing `docker save` archives in the layout dockerd 25+ writes: an OCI image layout
(`oci-layout`, `index.json`, `blobs/sha256/...`) that also carries the legacy `manifest.json`
and `repositories`, so dockerd 20.10 loads it too.

As dockerd 28 (image/tarexport/save.go): layers are the uncompressed tars under their diff
ids, one OCI manifest per image, an index entry per tag annotated with the full name and the
tag. Unlike it: every entry has mtime 0 (equal images save to equal bytes), the legacy v1
layer configs nobody reads are left out, and an untagged image is in index.json whatever
else is saved with it. Blocking I/O; callers run it in a thread.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from typing import Any, BinaryIO

from dockyard.errors import Internal
from dockyard.images.archive import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_FILE,
    LAYOUT_FILE,
    MANIFEST_FILE,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_MANIFEST,
    REPOSITORIES_FILE,
    SaveImage,
    SaveLayer,
    is_sha256,
    sha256_digest,
)
from dockyard.streams.digest import DigestingReader


def _split_tag(ref: str) -> tuple[str, str]:
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def _qualified_name(name: str) -> str:
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if sep else f"docker.io/library/{name}"


def _familiar_name(name: str) -> str:
    if not name.startswith("docker.io/"):
        return name
    name = name.removeprefix("docker.io/")
    official = name.removeprefix("library/")
    return official if "/" not in official else name


def _json(doc: object, newline: bool = False) -> bytes:
    # Compact like Go's json.Marshal; manifest.json/repositories end in "\n" (json.Encoder).
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n" if newline else text).encode()


def _descriptor(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": sha256_digest(data), "size": len(data)}


def _tar_info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0  # fixed, so equal images save to equal bytes
    info.uname = info.gname = ""
    return info


_COPY_BUFFER = 1 << 20


def _write_layer(archive: tarfile.TarFile, layer: SaveLayer) -> None:
    name = f"blobs/sha256/{layer.diff_id[7:]}"
    with layer.open() as source:
        reader = source if layer.verified else DigestingReader(source)
        archive.addfile(_tar_info(name, layer.size), reader)
        if reader.read(1):  # also where a verifying stream reports a mismatch
            raise Internal(f"layer {layer.diff_id} is longer than its size {layer.size}")
    if isinstance(reader, DigestingReader) and reader.digest() != layer.diff_id:
        raise Internal(f"layer {layer.diff_id} content has digest {reader.digest()}")


def write_archive(out: BinaryIO, images: Sequence[SaveImage]) -> None:
    """Stream a docker 25+ style save archive of `images` to `out`.

    Small documents are built first so every entry can go out in sorted path order (as
    dockerd's tar of its staging dir); each blob is written once however many images share
    it; layers are copied straight from SaveLayer.open, never held in memory. If a layer's
    bytes don't hash to its diff id this raises Internal with `out` half written.
    """
    small: dict[str, bytes] = {}  # blob hex -> bytes (configs, manifests)
    layers: dict[str, SaveLayer] = {}  # blob hex -> layer
    index: list[dict[str, Any]] = []
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        if sha256_digest(image.config) != image.config_digest:
            raise Internal(f"image config does not match its id {image.config_digest}")
        small[image.config_digest[7:]] = image.config
        for layer in image.layers:
            if not is_sha256(layer.diff_id):
                raise Internal(f"bad layer digest {layer.diff_id!r}")
            if layer.size < 0:
                raise Internal(f"layer {layer.diff_id} has no size; the manifest needs it")
            layers.setdefault(layer.diff_id[7:], layer)
        oci_manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": {
                    "mediaType": MEDIA_OCI_CONFIG,
                    "digest": image.config_digest,
                    "size": len(image.config),
                },
                "layers": [
                    {"mediaType": MEDIA_OCI_LAYER, "digest": layer.diff_id, "size": layer.size}
                    for layer in image.layers
                ],
            }
        )
        small[sha256_digest(oci_manifest)[7:]] = oci_manifest
        untagged = _descriptor(MEDIA_OCI_MANIFEST, oci_manifest)
        repo_tags: list[str] = []
        for ref in image.repo_tags:
            if "@" in ref:
                continue  # dockerd saves tags only
            name, tag = _split_tag(ref)
            familiar = _familiar_name(name)
            if f"{familiar}:{tag}" in repo_tags:
                continue
            repo_tags.append(f"{familiar}:{tag}")
            index.append(
                untagged
                | {
                    "annotations": {
                        ANNOTATION_IMAGE_NAME: f"{_qualified_name(name)}:{tag}",
                        ANNOTATION_REF_NAME: tag,
                    }
                }
            )
            if image.layers:
                # dockerd 25+ records the top layer's diff id here (20.10: its v1 layer id).
                repositories.setdefault(familiar, {})[tag] = image.layers[-1].diff_id[7:]
        if not repo_tags:
            index.append(untagged)  # still loadable through index.json
        item: dict[str, Any] = {
            "Config": f"blobs/sha256/{image.config_digest[7:]}",
            "RepoTags": repo_tags or None,
            "Layers": [f"blobs/sha256/{layer.diff_id[7:]}" for layer in image.layers],
        }
        if image.parent:
            item["Parent"] = image.parent
        manifest.append(item)
    tail = {
        INDEX_FILE: _json({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}),
        MANIFEST_FILE: _json(manifest, newline=True),
        LAYOUT_FILE: b'{"imageLayoutVersion": "1.0.0"}',
    }
    if repositories:
        tail[REPOSITORIES_FILE] = _json(repositories, newline=True)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_COPY_BUFFER) as archive:
            # Layers are copied in 1 MiB pieces (16 KiB by default); the stream's own buffer is
            # as large, or each piece would be cut into 10 KiB records by copying the rest.
            setattr(archive, "copybufsize", _COPY_BUFFER)  # noqa: B010 - not in tarfile's stubs
            archive.addfile(_tar_info("blobs", directory=True))
            archive.addfile(_tar_info("blobs/sha256", directory=True))
            for hex_digest in sorted(small.keys() | layers.keys()):
                if hex_digest in layers:
                    _write_layer(archive, layers[hex_digest])
                else:
                    data = small[hex_digest]
                    info = _tar_info(f"blobs/sha256/{hex_digest}", len(data))
                    archive.addfile(info, io.BytesIO(data))
            for name, data in tail.items():
                archive.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    except OSError as exc:
        raise Internal(f"writing image archive: {exc}") from exc
