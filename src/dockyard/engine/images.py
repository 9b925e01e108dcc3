"""Images: the local image store's use cases (resolve, list, tag, remove, prune, save), and the
one write path for new images; loads, imports and commits come in through engine/imageload.py,
layers are engine/imagelayers.py's."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.engine.events import EventBus
from dockyard.engine.imagelayers import ImageLayers
from dockyard.engine.imageload import ImageIntake
from dockyard.engine.transfer import Body, stream_from_thread
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.images.archive import SaveImage, SaveLayer
from dockyard.images.archive_writer import write_archive
from dockyard.layers.overlay import LayerDirs, chain_ids
from dockyard.model import times
from dockyard.model.containerquery import image_family
from dockyard.model.filters import Filters, parse_time_filter
from dockyard.model.ids import is_full_id, short_id, strip_algorithm
from dockyard.model.imageentries import DeleteRecord, ImageEntry, select_images
from dockyard.model.images import HistoryItem, Image, image_history, parse_image_config
from dockyard.model.manifests import Platform, matches
from dockyard.model.references import (
    Reference,
    display_name,
    familiar_tag,
    parse_reference,
)
from dockyard.store.content import ContentStore
from dockyard.store.images import ImageRepository, ImageRow, LayerRow, TagRow

log = logging.getLogger(__name__)

# What an image built `FROM scratch` starts from (a build's first step has no parent).
_SCRATCH_CONFIG = b'{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
_HEX_PREFIX = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")


class ImageUsers(Protocol):
    def users_of(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for every container made from the image."""
        ...


class ImageService:
    def __init__(
        self,
        repo: ImageRepository,
        content: ContentStore,
        layers: LayerDirs,
        events: EventBus,
        tmp_dir: Path,
        users: ImageUsers,
    ) -> None:
        self._repo = repo
        self._content = content
        self._dirs = layers
        self._events = events
        self._tmp = tmp_dir
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._users = users
        self._images: dict[str, ImageEntry] = {}
        self._tags: dict[str, str] = {}
        self._layers = ImageLayers(repo, content, layers)
        self._write_lock = asyncio.Lock()
        self._intake = ImageIntake(
            self._layers, self._store_image, self._tags.get, self._valid_parent, self._write_lock, events, tmp_dir
        )
        self._load_state()

    # ---- state -------------------------------------------------------------------------

    def _load_state(self) -> None:
        tags_by_image: dict[str, list[str]] = {}
        for tag in self._repo.tags():
            self._tags[tag.name] = tag.image_id
            tags_by_image.setdefault(tag.image_id, []).append(tag.name)
        for row in self._repo.images():
            try:
                image = parse_image_config(self._content.read(row.id), row.id)
            except (NotFound, InvalidArgument):
                log.error("image %s: config blob missing or broken; skipping it", row.id)
                continue
            tags, digests = _split_names(tags_by_image.get(row.id, []))
            self._images[row.id] = ImageEntry(image, tags, row.parent, row.loaded_at, self._size(image), digests)

    def _size(self, image: Image) -> int:
        return self._layers.size_of(chain_ids(image.diff_ids))

    def _publish(self, image_id: str, names: tuple[str, ...]) -> None:
        """Replace the image's tags and digests with `names` (either kind)."""
        entry = self._images[image_id]
        tags, digests = _split_names(names)
        self._images[image_id] = replace(entry, tags=tags, digests=digests)

    def _point_tags(self, full_tags: Sequence[str], image_id: str) -> None:
        """Let these tags name `image_id`, taking them off the images they named before."""
        for tag in full_tags:
            previous = self._tags.get(tag)
            self._tags[tag] = image_id
            if previous and previous != image_id and previous in self._images:
                old = self._images[previous]
                self._publish(previous, tuple(t for t in old.names if t != tag))

    def layer_dirs(self) -> set[str]:
        """The layer directories the images own (a start-up sweep keeps them)."""
        return self._layers.cache_ids()

    # ---- reads -------------------------------------------------------------------------

    def all(self) -> list[ImageEntry]:
        return list(self._images.values())

    def count(self) -> int:
        return len(self._images)

    def get(self, image_id: str) -> ImageEntry:
        try:
            return self._images[image_id]
        except KeyError:
            raise NotFound(f"No such image: {image_id}") from None

    def resolve(self, name: str) -> ImageEntry:
        """An image by id, id prefix, or reference (tag added when missing)."""
        entry = self._find(name)
        if entry is None:
            raise NotFound(f"No such image: {display_name(name)}")
        return entry

    def _find(self, name: str) -> ImageEntry | None:
        bare = strip_algorithm(name)
        if is_full_id(bare):
            return self._images.get("sha256:" + bare)
        ref: Reference | None
        try:
            ref = parse_reference(name)
        except InvalidArgument:
            ref = None
        if ref is not None:
            found = self._tags.get(str(ref.with_default_tag()))
            if found is not None:
                return self._images.get(found)
        if _HEX_PREFIX.match(name):
            matches = [e for i, e in self._images.items() if i[7:].startswith(bare)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _by_id(self, name: str) -> bool:
        """Whether `name` resolves as an id (or id prefix) rather than through a tag."""
        if is_full_id(strip_algorithm(name)):
            return True
        try:
            ref = parse_reference(name)
        except InvalidArgument:
            return True
        return str(ref.with_default_tag()) not in self._tags

    def layer_cache_ids(self, image_id: str) -> list[str]:
        """The image's layer directories, top-most first, as overlayfs wants them."""
        image = self.get(image_id).image
        return [self._layers.row(c).cache_id for c in reversed(chain_ids(image.diff_ids))]

    def family(self, name: str) -> frozenset[str]:
        """The image `name` names and every image built on it (ps --filter ancestor=)."""
        entry = self._find(name)
        if entry is None:
            return frozenset()
        return image_family(entry.id, {e.id: e.parent for e in self._images.values()})

    def history(self, entry: ImageEntry) -> tuple[HistoryItem, ...]:
        """`docker history`: each step's layer size, and the ids of the image and its parents."""
        sizes = [self._layers.row(c).size if c in self._layers else 0 for c in chain_ids(entry.image.diff_ids)]
        lineage: list[tuple[str, tuple[str, ...]]] = []
        step: ImageEntry | None = entry
        while step is not None and len(lineage) < len(entry.image.history):
            lineage.append((step.id, tuple(familiar_tag(t) for t in step.tags)))
            step = self._images.get(step.parent) if step.parent else None
        return image_history(entry.image, sizes, lineage)

    def diff_dirs(self, image_id: str) -> list[str]:
        """Where the image's layers are on disk, top-most first (inspect's GraphDriver)."""
        if image_id not in self._images:
            return []  # an image removed under a container (rmi -f): nothing to show
        return [str(self._dirs.diff(c)) for c in self.layer_cache_ids(image_id)]

    def query(self, filters: Filters, include_all: bool) -> list[ImageEntry]:
        return select_images(self._images.values(), filters, include_all, self._created_ns, time.time_ns())

    def _created_ns(self, name: str) -> int:
        return times.parse_ns(self.resolve(name).image.created)

    # ---- tags --------------------------------------------------------------------------

    async def tag(self, name: str, ref: Reference) -> None:
        if ref.digest is not None:  # else `run bb@sha256:<any>` would run whatever was tagged
            raise InvalidArgument("refusing to create a tag with a digest reference")
        entry = self.resolve(name)
        full = str(ref.with_default_tag())
        async with self._write_lock:
            self._repo.add_image_tags([TagRow(full, entry.id, times.now())])
            self._point_tags([full], entry.id)
            self._publish(entry.id, tuple({*self._images[entry.id].names, full}))
        self._events.publish("image", "tag", entry.id, {"name": ref.with_default_tag().familiar()})

    async def add_repo_digest(self, image_id: str, ref: Reference) -> None:
        """Name the image by a repository digest (repo@sha256:...) after a push, as pull does."""
        full = str(ref)
        async with self._write_lock:
            if image_id not in self._images:
                return  # removed while it was pushed
            self._repo.add_image_tags([TagRow(full, image_id, times.now())])
            self._point_tags([full], image_id)
            self._publish(image_id, tuple({*self._images[image_id].names, full}))

    # ---- delete ------------------------------------------------------------------------

    async def remove(self, name: str, *, force: bool, prune: bool = True) -> list[DeleteRecord]:
        entry = self.resolve(name)
        users = self._users.users_of(entry.id)
        running = [cid for cid, is_running in users if is_running]
        by_reference = not self._by_id(name)
        records: list[DeleteRecord] = []
        async with self._write_lock:
            entry = self._images[entry.id]
            if by_reference:
                ref = parse_reference(name).with_default_tag()
                full = str(ref)
                others = [t for t in entry.tags if t != full]
                if others or not users or force:
                    self._untag(entry.id, [full], records)
                    if ref.digest is None and not any(parse_reference(t).name == ref.name for t in others):
                        # As dockerd: the repository's digests go with its last tag.
                        same = [d for d in entry.digests if parse_reference(d).name == ref.name]
                        self._untag(entry.id, same, records)
                    if self._images[entry.id].names or users or self._children(entry.id):
                        return records  # still named, in use, or kept for its children
                else:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{display_name(name)}" (must force) '
                        f"- container {short_id(users[0][0])} is using its referenced image {short_id(entry.id)}"
                    )
            else:
                if self._children(entry.id):
                    raise Conflict(
                        f"conflict: unable to delete {short_id(entry.id)} (cannot be forced) - image "
                        "has dependent child images"
                    )
                if running:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(entry.id)} (cannot be forced) - image is "
                        f"being used by running container {short_id(running[0])}"
                    )
                if len(entry.tags) > 1 and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(entry.id)} (must be forced) - image is "
                        "referenced in multiple repositories"
                    )
                if users and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short_id(entry.id)} (must be forced) - image is "
                        f"being used by stopped container {short_id(users[0][0])}"
                    )
                self._untag(entry.id, list(entry.names), records)
                if users:
                    # Forced: untagged only. A container never loses its image.
                    return records
            await self._delete(entry.id, records)
            if prune:
                await self._prune_parents(entry.parent, records)
        return records

    def _children(self, image_id: str) -> list[str]:
        return [e.id for e in self._images.values() if e.parent == image_id]

    async def _prune_parents(self, parent: str, records: list[DeleteRecord]) -> None:
        """As dockerd after a delete: the parent goes too, and its parent..., while each is
        untagged, has no other child and no container."""
        while parent in self._images:
            entry = self._images[parent]
            if entry.names or self._children(parent) or self._users.users_of(parent):
                return
            await self._delete(parent, records)
            parent = entry.parent

    async def prune(self, filters: Filters) -> tuple[list[DeleteRecord], int]:
        """dangling=true (the default): untagged images; dangling=false: every image no
        container uses. Returns the records and the bytes of layers freed."""
        filters.validate(("dangling", "label", "label!", "until"))
        dangling_only = filters.bool_value("dangling") is not False
        now = time.time_ns()
        until = min((parse_time_filter(v, now) for v in filters.values("until")), default=None)
        records: list[DeleteRecord] = []
        # As dockerd's ImagesPrune: an untagged image with children goes only with its last
        # child (the parent pruning of a delete); a tagged one is untagged tag by tag, so
        # one with children stays, untagged; conflicts (containers) skip an image.
        chosen = [
            e for e in self._images.values()
            if (e.names or not self._children(e.id))
            and not (dangling_only and e.tags)
            and filters.match_labels(e.image.config.labels)
            and (until is None or times.parse_ns(e.image.created) <= until)
        ]  # fmt: skip
        layers_before = self._layers.total_size()
        for entry in sorted(chosen, key=lambda e: e.image.created, reverse=True):
            current = self._images.get(entry.id)
            if current is None:
                continue  # went as a parent of an image pruned before it
            names = list(current.tags) if current.tags else [current.id]
            for name in names:
                try:
                    records += await self.remove(name, force=False)
                except (Conflict, NotFound):
                    continue
        freed = layers_before - self._layers.total_size()
        self._events.publish("image", "prune", "", {"reclaimed": str(freed)})
        return records, freed

    def size_of(self, image_id: str) -> int:
        entry = self._images.get(image_id)
        return entry.size if entry else 0

    def layers_size(self) -> int:
        return self._layers.total_size()

    def shared_size(self, entry: ImageEntry) -> int:
        """Bytes of this image's layers that other images use too."""
        mine = chain_ids(entry.image.diff_ids)
        others = {c for e in self._images.values() if e.id != entry.id for c in chain_ids(e.image.diff_ids)}
        return self._layers.size_of(c for c in mine if c in others)

    def _untag(self, image_id: str, names: list[str], records: list[DeleteRecord]) -> None:
        if not names:
            return
        self._repo.remove_tags(names)
        for name in names:
            self._tags.pop(name, None)
            records.append(DeleteRecord(untagged=familiar_tag(name)))
            self._events.publish("image", "untag", image_id, {"name": familiar_tag(name)})
        entry = self._images[image_id]
        self._publish(image_id, tuple(t for t in entry.names if t not in names))

    async def _delete(self, image_id: str, records: list[DeleteRecord]) -> None:
        entry = self._images[image_id]
        still_used = set()
        for other in self._images.values():
            if other.id != image_id:
                still_used.update(chain_ids(other.image.diff_ids))
        doomed = [c for c in reversed(chain_ids(entry.image.diff_ids)) if c not in still_used and c in self._layers]
        self._repo.delete_image(image_id, doomed)
        del self._images[image_id]
        rows = self._layers.forget(doomed)
        records.append(DeleteRecord(deleted=image_id))
        records += [DeleteRecord(deleted=c) for c in doomed]  # dockerd lists the layers freed too
        self._events.publish("image", "delete", image_id, {"name": image_id})
        await asyncio.to_thread(self._remove_files, image_id, rows)

    def _remove_files(self, image_id: str, rows: list[LayerRow]) -> None:
        self._layers.remove_files_blocking(rows)
        self._content.delete(image_id)

    # ---- create: import and load -------------------------------------------------------

    async def _store_image(self, raw_config: bytes, tags: Sequence[Reference], parent: str = "") -> ImageEntry:
        image_id = await asyncio.to_thread(self._content.put, raw_config)
        image = parse_image_config(raw_config, image_id)
        chains = chain_ids(image.diff_ids)
        missing = [c for c in chains if c not in self._layers]
        if missing:
            raise InvalidArgument(f"image {image_id}: layer {missing[0]} is missing")
        now = times.now()
        full_tags = [str(t.with_default_tag()) for t in tags]
        self._repo.add_image(
            ImageRow(image_id, parent, now, chains[-1] if chains else None),
            [TagRow(t, image_id, now) for t in full_tags],
        )
        existing = self._images.get(image_id)
        self._point_tags(full_tags, image_id)
        all_tags, digests = _split_names({*(existing.names if existing else ()), *full_tags})
        loaded_at = existing.loaded_at if existing else now
        entry = ImageEntry(image, all_tags, parent, loaded_at, self._size(image), digests)
        self._images[image_id] = entry
        return entry

    # ---- pull: layers fetched by engine/pulls.py, committed here -------------------------

    def has_layer(self, chain: str) -> bool:
        return chain in self._layers

    def named(self, full_name: str) -> str | None:
        """The image a full tag or digest name points at."""
        return self._tags.get(full_name)

    def add_layer_blocking(self, parent: str | None, stream: BinaryIO, diff_id: str) -> tuple[LayerRow, bool]:
        """Unpack a pulled layer's stream (any compression) into a new layer directory, its
        tar checked against `diff_id`; not registered until commit_pulled. Blocking."""
        return self._layers.add_blocking(parent, stream, diff_id)

    async def prepare_layer(self, parent: str | None, blob: Path, diff_id: str) -> tuple[LayerRow, bool]:
        """add_layer_blocking from a downloaded blob file, in a thread."""

        def add() -> tuple[LayerRow, bool]:
            with blob.open("rb") as f:
                return self._layers.add_blocking(parent, f, diff_id)

        return await self._layers.add(add)

    def discard_layer_blocking(self, row: LayerRow) -> None:
        """A layer made by add_layer_blocking that will not be committed."""
        self._dirs.remove(row.cache_id)

    async def discard_layers(self, rows: Sequence[LayerRow]) -> None:
        """Undo prepared layers that were never committed: their directories."""
        await self._layers.discard(rows)

    async def commit_pulled(
        self, rows: Sequence[LayerRow], raw_config: bytes, refs: Sequence[Reference]
    ) -> tuple[ImageEntry, bool]:
        """Register a pulled image's new layers, the image and its names (tag, repository
        digest) together. Returns the entry and whether the first name moved to it."""
        primary = str(refs[0].with_default_tag()) if refs else ""
        async with self._write_lock:
            before = self._tags.get(primary)
            await self._layers.register(list(rows))
            entry = await self._store_image(raw_config, refs)
        return entry, before != entry.id

    async def derive(
        self, parent_id: str, write_layer: Callable[[BinaryIO], None] | None, make_config: Callable[[Image, str | None], bytes],
        ref: Reference | None,
    ) -> ImageEntry:
        """A new image on top of `parent_id` (commit, a build step); see ImageIntake.derive.
        An empty `parent_id` is `FROM scratch`: no parent at all."""
        parent = self.get(parent_id).image if parent_id else parse_image_config(_SCRATCH_CONFIG, "")
        return await self._intake.derive(parent_id, parent, write_layer, make_config, ref)

    async def import_image(
        self, body: Body, ref: Reference | None, changes: Sequence[str], message: str,
        platform_os: str = "linux", arch: str = "amd64",
    ) -> ImageEntry:
        return await self._intake.import_image(body, ref, changes, message, platform_os, arch)

    async def load(self, body: Body, platform: Platform | None = None) -> AsyncIterator[str]:
        """Load a `docker save` archive; see ImageIntake.load."""
        return await self._intake.load(body, platform)

    def _valid_parent(self, parent_id: str, image: Image) -> str:
        """An archive's Parent link, kept when it holds (dockerd's checkValidParent): the
        parent is here, its layers are the child's first ones, its history the child's start."""
        parent = self._images.get(parent_id) if parent_id else None
        if parent is None:
            return ""
        p = parent.image
        if not p.history and not image.history:
            return parent_id
        if len(p.history) >= len(image.history) or image.history[: len(p.history)] != p.history:
            return ""
        return parent_id if image.diff_ids[: len(p.diff_ids)] == p.diff_ids else ""

    def layer_tar(self, diff_id: str) -> SaveLayer:
        """A layer's uncompressed tar, for save and push: its exact size and a way to read it."""
        return self._layers.tar(diff_id)

    def save(self, names: Sequence[str], platform: Platform | None = None) -> AsyncIterator[bytes]:
        """A `docker save` archive of the named images, streamed as it is written. With
        `platform`, each must be of it (dockerd's graphdriver store: one platform per image)."""
        wanted: dict[str, list[str]] = {}
        for name in names:
            entry = self.resolve(name)
            own = Platform(entry.image.os, entry.image.architecture, entry.image.variant)
            if platform is not None and not matches(platform, own):
                raise NotFound(f"no suitable export target found for platform {platform}")
            tags = wanted.setdefault(entry.id, [])
            if not self._by_id(name):
                ref = parse_reference(name)
                if ref.tag is None and ref.digest is None:
                    # A bare repository name saves every tag of that repository.
                    tags.extend(familiar_tag(t) for t in entry.tags if parse_reference(t).name == ref.name)
                else:
                    tags.append(ref.familiar())
        images = []
        for image_id, tags in wanted.items():
            image = self._images[image_id].image
            layers = tuple(self.layer_tar(diff_id) for diff_id in image.diff_ids)
            # dockerd writes the parent link only when the parent is in the archive too.
            parent = self._images[image_id].parent
            images.append(SaveImage(image.raw_config, image_id, tuple(dict.fromkeys(tags)), layers,
                                    parent if parent in wanted else ""))  # fmt: skip
        for image_id in wanted:
            self._events.publish("image", "save", image_id, {"name": image_id})
        return stream_from_thread(lambda out: write_archive(out, images), "save-archive")


def _split_names(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags, digests) among an image's reference names, each sorted."""
    unique = sorted(set(names))
    return tuple(n for n in unique if "@" not in n), tuple(n for n in unique if "@" in n)

