"""Image documents in dockerd's API 1.50 shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockyard.model.imageentries import DeleteRecord, ImageEntry
from dockyard.model.imagemanifests import ManifestKind, ManifestSummary
from dockyard.model.images import HistoryItem, image_config_to_json
from dockyard.model.manifests import Descriptor, Platform
from dockyard.model.references import familiar_tag
from dockyard.model.times import unix_seconds


def _repo_tags(entry: ImageEntry) -> list[str]:
    return [familiar_tag(t) for t in entry.tags]


def inspect_doc(entry: ImageEntry, lower_dirs: list[str]) -> dict[str, Any]:
    image = entry.image
    last_tag = entry.loaded_at if entry.tags else ""
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": _repo_tags(entry),
        "RepoDigests": [familiar_tag(d) for d in entry.digests],
        "Parent": entry.parent,
        # As dockerd: without a comment of its own, the last history entry's.
        "Comment": image.comment or (image.history[-1].comment if image.history else ""),
        "Created": image.created,
        "DockerVersion": image.docker_version,
        "Author": image.author,
        "Config": image_config_to_json(image.config),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": entry.size,
        "GraphDriver": {
            "Name": "overlayfs",
            "Data": {"LowerDir": ":".join(lower_dirs[1:]) or None, "UpperDir": lower_dirs[0] if lower_dirs else None},
        },
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": last_tag or "0001-01-01T00:00:00Z"},
    }
    if image.variant:
        doc["Variant"] = image.variant
    return doc


_OCI_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                    "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")  # fmt: skip


def oci_config_doc(legacy: dict[str, Any]) -> dict[str, Any]:
    """inspect's Config from API 1.50 on: dockerd's DockerOCIImageConfig, the OCI image
    config fields (empty ones left out), not the container.Config shape of older versions."""
    return {k: legacy[k] for k in _OCI_CONFIG_KEYS if legacy.get(k)}


def summary_doc(entry: ImageEntry, containers: int) -> dict[str, Any]:
    image = entry.image
    tags = _repo_tags(entry)
    return {
        "Id": image.id,
        "ParentId": entry.parent,
        "RepoTags": tags,
        "RepoDigests": [familiar_tag(d) for d in entry.digests],
        "Created": unix_seconds(image.created),
        "Size": entry.size,
        "SharedSize": -1,
        "Labels": dict(image.config.labels),
        "Containers": containers,
    }


def history_doc(items: Sequence[HistoryItem]) -> list[dict[str, Any]]:
    return [
        {
            "Id": h.id,
            "Created": unix_seconds(h.created) if h.created else 0,
            "CreatedBy": h.created_by,
            "Tags": list(h.tags) or None,
            "Size": h.size,
            "Comment": h.comment,
        }
        for h in items
    ]


def delete_doc(records: list[DeleteRecord]) -> list[dict[str, str]]:
    return [{"Untagged": r.untagged} if r.untagged else {"Deleted": r.deleted} for r in records]



def platform_doc(p: Platform) -> dict[str, Any]:
    """ocispec.Platform: variant only when there is one."""
    return {"architecture": p.architecture, "os": p.os, **({"variant": p.variant} if p.variant else {})}


def descriptor_doc(d: Descriptor) -> dict[str, Any]:
    """ocispec.Descriptor, with its omitempty fields left out when empty."""
    doc: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.annotations:
        doc["annotations"] = dict(d.annotations)
    if d.platform is not None:
        doc["platform"] = platform_doc(d.platform)
    return doc


def manifest_summary_doc(m: ManifestSummary) -> dict[str, Any]:
    """image.ManifestSummary (API 1.47): ImageData for images, AttestationData for attestations."""
    doc: dict[str, Any] = {
        "ID": m.id,
        "Descriptor": descriptor_doc(m.descriptor),
        "Available": m.available,
        "Size": {"Content": m.content_size, "Total": m.total_size},
        "Kind": m.kind.value,
    }
    if m.kind is ManifestKind.IMAGE:
        doc["ImageData"] = {
            "Platform": platform_doc(m.platform or Platform("", "")),
            "Containers": list(m.containers),
            "Size": {"Unpacked": m.unpacked_size},
        }
    elif m.kind is ManifestKind.ATTESTATION:
        doc["AttestationData"] = {"For": m.attests}
    return doc
