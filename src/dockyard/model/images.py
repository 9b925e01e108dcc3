"""Image records: the runnable config an image carries, and the image itself."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class HealthConfig:
    test: tuple[str, ...] = ()
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


@dataclass(frozen=True)
class ImageConfig:
    """The `config` section of an OCI/Docker image config: defaults for containers."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None
    healthcheck: HealthConfig | None = None


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True)
class Image:
    """An image as stored: its id is the sha256 digest of `raw_config`, kept byte for byte."""

    id: str  # "sha256:<hex>"
    raw_config: bytes
    created: str
    author: str
    architecture: str
    os: str
    config: ImageConfig
    diff_ids: tuple[str, ...]
    history: tuple[HistoryEntry, ...]
    comment: str = ""
    docker_version: str = ""
    variant: str = ""


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _opt_strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _strs(value)


def image_config_from_json(doc: Mapping[str, Any] | None) -> ImageConfig:
    doc = doc or {}
    hc = doc.get("Healthcheck")
    health = None
    if isinstance(hc, Mapping):
        health = HealthConfig(
            test=_strs(hc.get("Test")),
            interval_ns=int(hc.get("Interval") or 0),
            timeout_ns=int(hc.get("Timeout") or 0),
            start_period_ns=int(hc.get("StartPeriod") or 0),
            start_interval_ns=int(hc.get("StartInterval") or 0),
            retries=int(hc.get("Retries") or 0),
        )
    return ImageConfig(
        user=str(doc.get("User") or ""),
        env=_strs(doc.get("Env")),
        entrypoint=_opt_strs(doc.get("Entrypoint")),
        cmd=_opt_strs(doc.get("Cmd")),
        working_dir=str(doc.get("WorkingDir") or ""),
        labels=dict(doc.get("Labels") or {}),
        exposed_ports=tuple(sorted((doc.get("ExposedPorts") or {}).keys())),
        volumes=tuple(sorted((doc.get("Volumes") or {}).keys())),
        stop_signal=str(doc.get("StopSignal") or ""),
        on_build=_strs(doc.get("OnBuild")),
        shell=_opt_strs(doc.get("Shell")),
        healthcheck=health,
    )


def image_config_to_json(cfg: ImageConfig) -> dict[str, Any]:
    """The Docker wire/disk form of an ImageConfig (as in image config blobs and inspect)."""
    doc: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": cfg.user,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": list(cfg.env) or None,
        "Cmd": None if cfg.cmd is None else list(cfg.cmd),
        "Image": "",
        "Volumes": {v: {} for v in cfg.volumes} or None,
        "WorkingDir": cfg.working_dir,
        "Entrypoint": None if cfg.entrypoint is None else list(cfg.entrypoint),
        "OnBuild": list(cfg.on_build) or None,
        "Labels": dict(cfg.labels) or None,
    }
    if cfg.exposed_ports:
        doc["ExposedPorts"] = {p: {} for p in cfg.exposed_ports}
    if cfg.stop_signal:
        doc["StopSignal"] = cfg.stop_signal
    if cfg.shell is not None:
        doc["Shell"] = list(cfg.shell)
    if cfg.healthcheck is not None:
        doc["Healthcheck"] = health_to_json(cfg.healthcheck)
    return doc


def health_to_json(h: HealthConfig) -> dict[str, Any]:
    """Docker's Healthcheck object, as image configs and container inspect both carry it."""
    return {
        "Test": list(h.test),
        "Interval": h.interval_ns,
        "Timeout": h.timeout_ns,
        "StartPeriod": h.start_period_ns,
        "StartInterval": h.start_interval_ns,
        "Retries": h.retries,
    }


def parse_image_config(raw: bytes, image_id: str) -> Image:
    """Parse an image config blob (application/vnd.oci.image.config.v1+json)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid image config {image_id}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid image config {image_id}: not an object")
    rootfs = doc.get("rootfs") or {}
    if rootfs.get("type", "layers") != "layers":
        raise InvalidArgument(f"invalid image config {image_id}: rootfs type {rootfs.get('type')}")
    history = tuple(
        HistoryEntry(
            created=str(h.get("created") or ""),
            created_by=str(h.get("created_by") or ""),
            author=str(h.get("author") or ""),
            comment=str(h.get("comment") or ""),
            empty_layer=bool(h.get("empty_layer")),
        )
        for h in doc.get("history") or ()
        if isinstance(h, dict)
    )
    return Image(
        id=image_id,
        raw_config=raw,
        created=str(doc.get("created") or ""),
        author=str(doc.get("author") or ""),
        architecture=str(doc.get("architecture") or ""),
        os=str(doc.get("os") or "linux"),
        config=image_config_from_json(doc.get("config")),
        diff_ids=tuple(str(d) for d in rootfs.get("diff_ids") or ()),
        history=history,
        comment=str(doc.get("comment") or ""),
        docker_version=str(doc.get("docker_version") or ""),
        variant=str(doc.get("variant") or ""),
    )


@dataclass(frozen=True)
class HistoryItem:
    """One row of `docker history`, newest first."""

    id: str  # the image id where one is known for this step, else "<missing>"
    created: str
    created_by: str
    tags: tuple[str, ...]
    size: int  # the bytes of the layer this step made (0 for an empty layer)
    comment: str


def image_history(
    image: Image, layer_sizes: Sequence[int], lineage: Sequence[tuple[str, tuple[str, ...]]]
) -> tuple[HistoryItem, ...]:
    """dockerd's history: a row per history entry with its layer's size; then the newest
    rows get the ids (and tags) of the image and its parents, one each, down `lineage`
    ((id, familiar tags) of the image, its parent, ...); the rest stay "<missing>"."""
    rows: list[HistoryItem] = []
    layer = 0
    for h in image.history:
        size = 0
        if not h.empty_layer:
            if layer >= len(image.diff_ids):
                raise InvalidArgument("too many non-empty layers in History section")
            size = layer_sizes[layer] if layer < len(layer_sizes) else 0
            layer += 1
        rows.append(HistoryItem("<missing>", h.created, h.created_by, (), size, h.comment))
    rows.reverse()
    for i, (image_id, tags) in enumerate(lineage[: len(rows)]):
        rows[i] = replace(rows[i], id=image_id, tags=tags)
    return tuple(rows)
