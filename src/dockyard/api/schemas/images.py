"""Image documents in dockerd's API 1.50 shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockyard.engine.images import DeleteRecord, ImageEntry
from dockyard.model.images import HistoryItem, image_config_to_json
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

