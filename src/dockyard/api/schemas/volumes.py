"""Volumes on the wire: the create request as dockerd reads it, the volume document."""

from __future__ import annotations

from typing import Any

from dockyard.api.schemas import fields as f
from dockyard.engine.volumes import CreateRequest
from dockyard.model.volumes import Volume


def create_request(doc: Any) -> CreateRequest:
    body = f.obj(doc, "volume config")
    labels, options = body.get("Labels"), body.get("DriverOpts")
    return CreateRequest(
        name=f.string(body.get("Name"), "Name"),
        driver=f.string(body.get("Driver"), "Driver") or "local",
        labels=None if labels is None else f.str_map(labels, "Labels"),
        options=None if options is None else f.str_map(options, "DriverOpts"),
    )


def volume_doc(v: Volume, mountpoint: str, size: int | None = None, ref_count: int = 0) -> dict[str, Any]:
    """dockerd's volume.Volume; UsageData only where asked (`system df`)."""
    doc: dict[str, Any] = {
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": None if v.labels is None else dict(v.labels),
        "Mountpoint": mountpoint,
        "Name": v.name,
        "Options": None if v.options is None else dict(v.options),
        "Scope": "local",
    }
    if size is not None:
        doc["UsageData"] = {"RefCount": ref_count, "Size": size}
    return doc
