"""How images come in: `docker load`, `docker import` and commit. Each unpacks its layers
(in one pass, with their tar-split indexes) under the image store's write lock, then stores
the image through the store's one write path; a failure discards the layers it made."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dockyard.engine.events import EventBus
from dockyard.engine.imagelayers import ImageLayers
from dockyard.engine.transfer import Body, spool
from dockyard.errors import InvalidArgument
from dockyard.images.archive import Archive, ArchiveImage, read_archive
from dockyard.layers.overlay import chain_ids
from dockyard.model import times
from dockyard.model.changes import apply_changes
from dockyard.model.images import Image, ImageConfig, image_config_to_json, parse_image_config
from dockyard.model.manifests import Platform
from dockyard.model.references import Reference, parse_reference
from dockyard.store.images import LayerRow

if TYPE_CHECKING:
    from dockyard.model.imageentries import ImageEntry

StoreImage = Callable[[bytes, Sequence[Reference], str], Awaitable["ImageEntry"]]


class ImageIntake:
    def __init__(
        self, layers: ImageLayers, store: StoreImage, tag_of: Callable[[str], str | None],
        valid_parent: Callable[[str, Image], str], write_lock: asyncio.Lock, events: EventBus, tmp_dir: Path,
    ) -> None:
        self._layers = layers
        self._store_image = store
        self._tag_of = tag_of
        self._valid_parent = valid_parent  # an archive's Parent link, "" unless it holds
        self._write_lock = write_lock
        self._events = events
        self._tmp = tmp_dir

    async def _store(self, raw_config: bytes, tags: Sequence[Reference], parent: str = "") -> ImageEntry:
        return await self._store_image(raw_config, tags, parent)

    async def derive(
        self, parent_id: str, parent: Image, write_layer: Callable[[BinaryIO], None] | None,
        make_config: Callable[[Image, str | None], bytes], ref: Reference | None,
    ) -> ImageEntry:
        """A new image on top of `parent` (commit): one more layer, written by `write_layer`
        into a spool (None: no layer), and the config `make_config(parent, new diff id)`
        returns."""
        chains = chain_ids(parent.diff_ids)
        async with self._write_lock:
            diff_id: str | None = None
            if write_layer is not None:
                spooled = self._tmp / f"commit-{secrets.token_hex(8)}"
                try:
                    def add() -> tuple[LayerRow, bool]:
                        with spooled.open("w+b") as f:
                            write_layer(f)
                            f.seek(0)
                            return self._layers.add_blocking(chains[-1] if chains else None, f, None)

                    row, new = await self._layers.add(add)
                finally:
                    spooled.unlink(missing_ok=True)
                if new:
                    await self._layers.register([row])
                diff_id = row.diff_id
            entry = await self._store(make_config(parent, diff_id), [ref] if ref else [], parent=parent_id)
        if ref is not None:
            self._events.publish("image", "tag", entry.id, {"name": ref.with_default_tag().familiar()})
        return entry

    async def import_image(
        self,
        body: Body,
        ref: Reference | None,
        changes: Sequence[str],
        message: str,
        platform_os: str = "linux",
        arch: str = "amd64",
    ) -> ImageEntry:
        config = apply_changes(ImageConfig(), changes)
        spooled = await spool(body, self._tmp)
        try:
            async with self._write_lock:
                def add() -> tuple[LayerRow, bool]:
                    with spooled.open("rb") as f:
                        return self._layers.add_blocking(None, f, None)

                row, new = await self._layers.add(add)
                if new:
                    await self._layers.register([row])
                created = times.now()
                doc = {
                    "architecture": arch,
                    "comment": message or "Imported from -",
                    "config": image_config_to_json(config),
                    "created": created,
                    "history": [{"created": created, "comment": message or "Imported from -"}],
                    "os": platform_os,
                    "rootfs": {"type": "layers", "diff_ids": [row.diff_id]},
                }
                raw = json.dumps(doc, separators=(",", ":")).encode()
                entry = await self._store(raw, [ref] if ref else [])
        finally:
            spooled.unlink(missing_ok=True)
        self._events.publish("image", "import", entry.id, {"name": entry.id})
        if ref is not None:
            self._events.publish("image", "tag", entry.id, {"name": ref.with_default_tag().familiar()})
        return entry

    async def load(self, body: Body, platform: Platform | None = None) -> AsyncIterator[str]:
        """Load a `docker save` archive: the upload is received and its index read first, so
        a full disk or a bad archive is an error status, not a stream cut short; then it
        yields one line per image loaded. With `platform`, only images of that platform."""
        spooled = await spool(body, self._tmp)
        try:
            archive = await asyncio.to_thread(read_archive, spooled, platform=platform)
        except BaseException:
            spooled.unlink(missing_ok=True)
            raise
        return self._load(spooled, archive)

    async def _load(self, spooled: Path, archive: Archive) -> AsyncIterator[str]:
        try:
            async with self._write_lock:
                for item in _parents_first(archive.images):
                    new_rows: list[LayerRow] = []
                    parent: str | None = None
                    config = parse_image_config(item.config, item.config_digest)
                    refs = [_repo_tag(t) for t in item.repo_tags]  # checked before any layer is added
                    if len(config.diff_ids) != len(item.layers):
                        raise InvalidArgument(
                            f"image {item.config_digest}: {len(item.layers)} layers in the archive, "
                            f"{len(config.diff_ids)} in its config"
                        )
                    try:
                        for member, diff_id in zip(item.layers, config.diff_ids, strict=True):
                            def add(member: str = member, parent: str | None = parent, diff_id: str = diff_id) -> tuple[LayerRow, bool]:
                                with archive.open_layer(member) as stream:
                                    return self._layers.add_blocking(parent, stream, diff_id)

                            row, new = await self._layers.add(add)
                            if new:
                                new_rows.append(row)
                            parent = row.chain_id
                        await self._layers.register(new_rows)
                    except BaseException:
                        await self._layers.discard(new_rows)
                        raise
                    for ref in refs:
                        previous = self._tag_of(str(ref.with_default_tag()))
                        if previous is not None and previous != item.config_digest:
                            yield (
                                f"The image {ref.with_default_tag().familiar()} already exists, renaming "
                                f"the old one with ID {previous} to empty string\n"
                            )
                    entry = await self._store(item.config, refs, self._valid_parent(item.parent, config))
                    self._events.publish("image", "load", entry.id, {"name": entry.id})
                    if refs:
                        for ref in refs:
                            yield f"Loaded image: {ref.with_default_tag().familiar()}\n"
                    else:
                        yield f"Loaded image ID: {entry.id}\n"
        finally:
            spooled.unlink(missing_ok=True)


def _parents_first(images: Sequence[ArchiveImage]) -> list[ArchiveImage]:
    """An archive's images with each Parent link kept only to an image of the same archive
    (as dockerd's validatedParentLinks), parents loaded before their children."""
    ids = {i.config_digest for i in images}
    pending = [i if i.parent in ids else replace(i, parent="") for i in images]
    done: set[str] = set()
    ordered: list[ArchiveImage] = []
    while pending:
        ready = [i for i in pending if not i.parent or i.parent in done]
        if not ready:  # a cycle of Parent links: none of them holds
            ready = pending = [replace(i, parent="") for i in pending]
        ordered += ready
        done.update(i.config_digest for i in ready)
        pending = [i for i in pending if not any(i is r for r in ready)]
    return ordered


def _repo_tag(text: str) -> Reference:
    """An archive's RepoTags entry: a name with a tag or none (dockerd's words for one with a digest)."""
    ref = parse_reference(text)
    if ref.digest is not None:
        raise InvalidArgument(f'invalid tag "{text}"')
    return ref
