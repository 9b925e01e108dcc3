"""`docker commit`: a container's writable layer becomes a new image on top of its own.

As dockerd: a running container is paused for the copy unless asked not to; the new image's
config is the container's (the request's config and `--change` lines on top), its history
gains one entry, and a container with no changes adds an empty-layer history entry only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from typing import Any

from dockyard.engine.events import EventBus
from dockyard.engine.images import ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict, DockyardError
from dockyard.layers.overlay import LayerDirs
from dockyard.layers.tarlayer import write_layer_tar
from dockyard.model import times
from dockyard.model.changes import apply_changes
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.events import attributes_of
from dockyard.model.imageentries import ImageEntry
from dockyard.model.images import Image, ImageConfig, image_config_to_json
from dockyard.model.references import Reference

log = logging.getLogger(__name__)

ENGINE_NAME = "dockyard"


def container_image_config(c: Container) -> ImageConfig:
    """What the container runs with, as an image config (dockerd commits c.Config)."""
    s = c.spec
    return ImageConfig(
        user=s.user, env=s.env, entrypoint=s.entrypoint, cmd=s.cmd, working_dir=s.working_dir,
        labels=dict(s.labels), exposed_ports=s.exposed_ports, volumes=s.volumes, stop_signal=s.stop_signal,
        on_build=s.on_build, shell=s.shell, healthcheck=s.healthcheck,
    )  # fmt: skip


def overlay(base: ImageConfig, given: ImageConfig | None) -> ImageConfig:
    """The request's config over the container's: what it sets wins (dockerd's merge)."""
    if given is None:
        return base
    return replace(
        base,
        user=given.user or base.user,
        env=given.env or base.env,
        entrypoint=given.entrypoint if given.entrypoint is not None else base.entrypoint,
        cmd=given.cmd if given.cmd is not None else base.cmd,
        working_dir=given.working_dir or base.working_dir,
        labels={**base.labels, **given.labels},
        exposed_ports=tuple(sorted({*base.exposed_ports, *given.exposed_ports})),
        volumes=tuple(sorted({*base.volumes, *given.volumes})),
        stop_signal=given.stop_signal or base.stop_signal,
        shell=given.shell if given.shell is not None else base.shell,
        healthcheck=given.healthcheck or base.healthcheck,
    )


class CommitService:
    def __init__(
        self, table: ContainerTable, lifecycle: Lifecycle, images: ImageService, dirs: LayerDirs, events: EventBus
    ) -> None:
        self._table = table
        self._lifecycle = lifecycle
        self._images = images
        self._dirs = dirs
        self._events = events

    async def commit(
        self,
        ref: str,
        target: Reference | None,
        *,
        comment: str = "",
        author: str = "",
        changes: tuple[str, ...] = (),
        config: ImageConfig | None = None,
        pause: bool = True,
    ) -> ImageEntry:
        c = self._table.resolve(ref)
        if c.state.status in (ContainerStatus.DEAD, ContainerStatus.REMOVING):
            raise Conflict(f"You cannot commit container {c.id} which is Dead or being removed")
        new_config = apply_changes(overlay(container_image_config(c), config), changes)
        paused_here = False
        if pause and c.state.status is ContainerStatus.RUNNING:
            try:
                await self._lifecycle.pause(c.id)
                paused_here = True
            except DockyardError as exc:
                # As dockerd, whose commit ignores a failed pause: the container may have
                # exited between the look and the pause (`sh -c 'touch /x'` then commit).
                log.debug("commit of %s without a pause: %s", c.id, exc)
        try:
            upper = self._dirs.diff(c.rw_layer)
            empty = not any(os.scandir(upper))

            def write(out: Any) -> None:
                write_layer_tar(upper, out)

            def make_config(parent: Image, diff_id: str | None) -> bytes:
                return _config_blob(parent, c, new_config, diff_id, comment, author)

            entry = await self._images.derive(c.image_id, None if empty else write, make_config, target)
        finally:
            if paused_here:
                await self._lifecycle.unpause(c.id)
        attrs = attributes_of(c, comment=comment, imageID=entry.id, imageRef=target.familiar() if target else "")
        self._events.publish("container", "commit", c.id, attrs)
        return entry


def _config_blob(
    parent: Image, c: Container, config: ImageConfig, diff_id: str | None, comment: str, author: str
) -> bytes:
    doc: dict[str, Any] = json.loads(parent.raw_config)
    created = times.now()
    history = list(doc.get("history") or [])
    entry: dict[str, Any] = {"created": created, "created_by": " ".join(c.spec.cmd or ())}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    if diff_id is None:
        entry["empty_layer"] = True
    history.append(entry)
    rootfs = dict(doc.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), *([diff_id] if diff_id else [])]
    doc.update(
        {
            "config": image_config_to_json(config),
            "container": c.id,
            "created": created,
            "docker_version": ENGINE_NAME,
            "history": history,
            "rootfs": rootfs,
        }
    )
    doc["author"] = author
    doc["comment"] = comment
    return json.dumps(doc, separators=(",", ":")).encode()
