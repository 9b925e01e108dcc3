"""Push: an image's layers, config and manifest to a registry, with dockerd's progress stream.

As dockerd (distribution/push_v2.go): "The push refers to repository [...]" first, then the
layers top-most first, each "Preparing", "Waiting" beyond five at once, then "Layer already
exists" (a HEAD finds a blob this layer is known by), "Mounted from <repo>" (a cross-repository
mount within the registry), or "Pushing" and "Pushed". Which compressed blob a layer is in,
and where, is remembered (store/blobs.py, filled by pull too), so a pulled image goes back as
HEADs and mounts, and with the manifest that was pulled: the same digest. A layer known
nowhere is gzipped here, deterministically, while it streams to the registry.
Errors come on the stream, after its first line, as dockerd writes them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from dockyard.distribution.client import Registry, RegistryAnswer
from dockyard.distribution.http import TransportError, Url
from dockyard.engine.events import EventBus
from dockyard.engine.imagemanifests import ImageManifests
from dockyard.engine.images import ImageService
from dockyard.errors import DockyardError, Internal, InvalidArgument, NotFound, Unauthorized
from dockyard.model import times
from dockyard.model.imageentries import ImageEntry
from dockyard.model.manifests import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    Descriptor,
    Manifest,
    parse_manifest,
    schema2_manifest,
)
from dockyard.model.progress import Progress, PushResult, layer_status
from dockyard.model.references import Reference, parse_reference
from dockyard.model.registryauth import Credentials, parse_challenges
from dockyard.store.blobs import BlobLocation, BlobLocations
from dockyard.streams.gzipstream import Compressed, gzip_stream
from dockyard.tasks import Component, Tasks, WorkQueue, first_error, queued_stream

log = logging.getLogger(__name__)

Line = Progress | PushResult
_Emit = Callable[[Line], None]

MAX_CONCURRENT_UPLOADS = 5  # dockerd's max-concurrent-uploads
_PROGRESS_EVERY = 0.1
# dockerd's attempts by layer size (getMaxMountAndExistenceCheckAttempts): bigger layers are
# worth more round trips before an upload.
_SMALL = 100 << 10
_MIDDLE = 10 << 20


def _attempts(size: int) -> tuple[int, int, bool]:
    """(mounts, existence checks, whether digests seen in other repositories are HEADed)."""
    if size > _MIDDLE:
        return 4, 3, True
    if size > _SMALL:
        return 3, 1, False
    return 1, 1, False


@dataclass(frozen=True)
class _Target:
    registry: Registry
    creds: Credentials
    domain: str
    path: str  # the repository's path in the registry: "x/bb"


class PushService(Component):
    """Owns the pushes' workers (one task per push, in its Tasks) and the deflate threads."""

    def __init__(
        self, images: ImageService, manifests: ImageManifests, locations: BlobLocations, events: EventBus,
        registry: Callable[[str, Credentials], Registry], max_uploads: int = MAX_CONCURRENT_UPLOADS,
    ) -> None:
        self._images = images
        self._manifests = manifests
        self._locations = locations
        self._events = events
        self._registry = registry  # the registry itself for a domain, never a mirror
        self._max_uploads = max_uploads
        cpus = os.cpu_count() or 2
        self._parallel = 2  # chunks of one layer ahead of the one being sent
        self._deflaters = ThreadPoolExecutor(max_workers=cpus, thread_name_prefix="push-deflate")
        self._tasks = Tasks("push")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await super().__aexit__(kind, exc, tb)
        finally:
            self._deflaters.shutdown(wait=False, cancel_futures=True)

    async def push(self, ref: Reference, creds: Credentials, all_tags: bool) -> AsyncGenerator[Line, None]:
        """Stream a push of `ref` (its tag), or of every tag of its repository."""
        work = functools.partial(self._worker, ref, creds, all_tags)
        async for line in queued_stream(self._tasks, work, f"push {ref}"):
            yield line

    async def _worker(
        self, ref: Reference, creds: Credentials, all_tags: bool, queue: WorkQueue[Line],
    ) -> None:
        emit = queue.put_nowait
        try:
            emit(Progress(f"The push refers to repository [{ref.name}]"))
            tags = self._tags_to_push(ref, all_tags)
            target = _Target(self._registry(ref.domain, creds), creds, ref.domain, ref.path)
            remote: dict[str, Descriptor] = {}  # diff id -> blob, known in the target this push
            for tag, image_id in tags:
                try:
                    await self._push_tag(target, ref.with_tag(tag), self._images.get(image_id), remote, emit)
                except (RegistryAnswer, TransportError) as exc:
                    raise _translate(exc) from exc
        except DockyardError as exc:
            queue.put_nowait(exc)
        except Exception as exc:  # a bug: reported on the stream, not lost
            log.exception("push of %s failed", ref)
            queue.put_nowait(Internal(f"push failed: {exc}"))
        finally:
            queue.put_nowait(None)

    def _tags_to_push(self, ref: Reference, all_tags: bool) -> list[tuple[str, str]]:
        """(tag, image id) pairs, with dockerd's words when there is nothing to push."""
        if ref.digest is not None:
            raise InvalidArgument("cannot push a digest reference")
        named = sorted(
            (r.tag, image_id)
            for entry in self._images.all()
            for name in entry.tags
            if (r := parse_reference(name)).name == ref.name and r.tag is not None
            for image_id in (entry.id,)
        )
        if not named:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        if all_tags:
            return named
        tag = ref.tag or "latest"
        found = [(t, i) for t, i in named if t == tag]
        if not found:
            raise NotFound(f"tag does not exist: {ref.with_tag(tag).familiar()}")
        return found

    async def _push_tag(
        self, target: _Target, ref: Reference, entry: ImageEntry, remote: dict[str, Descriptor], emit: _Emit,
    ) -> None:
        image = entry.image
        diff_ids = list(image.diff_ids)
        top_first = list(reversed(diff_ids))
        for diff_id in top_first:
            emit(layer_status("Preparing", _short(diff_id)))
        pong = await target.registry.ping()
        if _wants_basic_credentials(pong.status, pong.header_values("www-authenticate"), target.creds):
            raise Unauthorized("no basic auth credentials")
        slots = asyncio.Semaphore(self._max_uploads)
        tasks: dict[str, asyncio.Task[Descriptor]] = {}
        with first_error():
            async with asyncio.TaskGroup() as tg:
                for diff_id in top_first:
                    if diff_id in tasks:
                        continue
                    if len(tasks) >= self._max_uploads:
                        emit(layer_status("Waiting", _short(diff_id)))
                    tasks[diff_id] = tg.create_task(self._layer(target, diff_id, remote, slots, emit))
        layers = tuple(tasks[d].result() for d in diff_ids)
        # After the layers, as dockerd: a registry that fails says so with a layer's error first.
        config = Descriptor(DOCKER_CONFIG, image.id, len(image.raw_config))
        await self._ensure_config(target, config, image.raw_config)
        raw, media_type = self._manifest_for(entry, config, layers)
        tag = ref.tag or "latest"
        digest = await target.registry.put_manifest(target.path, tag, raw, media_type)
        emit(Progress(f"{tag}: digest: {digest} size: {len(raw)}"))
        await asyncio.to_thread(self._manifests.record, [raw])
        await self._images.add_repo_digest(image.id, ref.repository().with_digest(digest))
        emit(PushResult(tag, digest, len(raw)))
        name = ref.familiar()
        self._events.publish("image", "push", name, {"name": name})
        log.info("pushed %s (%s)", name, digest)

    def _manifest_for(self, entry: ImageEntry, config: Descriptor, layers: tuple[Descriptor, ...]) -> tuple[bytes, str]:
        """The manifest the image was pulled (or pushed) by, when the registry has the very
        blobs it names: the same digest; else a schema 2 manifest as dockerd writes it."""
        digests = [d.digest for d in layers]
        for raw in self._manifests.manifests_of(entry):
            try:
                parsed = parse_manifest(raw)
            except InvalidArgument:
                continue
            if isinstance(parsed, Manifest) and [d.digest for d in parsed.layers] == digests:
                return raw, parsed.media_type
        return schema2_manifest(config, layers), DOCKER_MANIFEST

    async def _ensure_config(self, target: _Target, config: Descriptor, raw: bytes) -> None:
        """The config blob, unless the registry has it (HEAD first, as dockerd's builder)."""
        if await target.registry.blob_size(target.path, config.digest) is None:
            await target.registry.upload_whole(target.path, config.digest, raw)

    # ---- one layer ---------------------------------------------------------------------

    async def _layer(
        self, target: _Target, diff_id: str, remote: dict[str, Descriptor], slots: asyncio.Semaphore, emit: _Emit,
    ) -> Descriptor:
        short = _short(diff_id)
        async with slots:
            if diff_id in remote:
                emit(layer_status("Layer already exists", short))
                return remote[diff_id]
            tar = self._images.layer_tar(diff_id)
            mounts, checks, other_repos = _attempts(tar.size)
            known = self._locations.of(diff_id)
            here = [k for k in known if (k.registry, k.repository) == (target.domain, target.path)]
            found = await self._exists(target, diff_id, _unique(here)[:1], emit)
            if found is not None:
                remote[diff_id] = found
                return found
            upload: Url | None = None
            same_registry = [k for k in known if k.registry == target.domain and k.repository != target.path]
            for candidate in _unique_sources(same_registry)[:mounts]:
                opened = await target.registry.mount_blob(target.path, candidate.digest, candidate.repository)
                if opened is None:
                    emit(layer_status(f"Mounted from {candidate.repository}", short))
                    desc = Descriptor(_layer_type(candidate), candidate.digest, candidate.size)
                    self._remember(diff_id, desc, target)
                    remote[diff_id] = desc
                    return desc
                self._locations.remove(candidate)
                if upload is not None:
                    await target.registry.cancel_upload(target.path, upload)
                upload = opened
            checked = {k.digest for k in here[:1]}
            others = [k for k in _unique(known if other_repos else here) if k.digest not in checked]
            found = await self._exists(target, diff_id, others[: max(0, checks - len(checked))], emit)
            if found is not None:
                if upload is not None:
                    await target.registry.cancel_upload(target.path, upload)
                remote[diff_id] = found
                return found
            desc = await self._upload(target, diff_id, upload, emit)
            remote[diff_id] = desc
            return desc

    async def _exists(
        self, target: _Target, diff_id: str, candidates: list[BlobLocation], emit: _Emit,
    ) -> Descriptor | None:
        for candidate in candidates:
            size = await target.registry.blob_size(target.path, candidate.digest)
            if size is None:
                if (candidate.registry, candidate.repository) == (target.domain, target.path):
                    self._locations.remove(candidate)
                continue
            desc = Descriptor(_layer_type(candidate), candidate.digest, size)
            self._remember(diff_id, desc, target)
            emit(layer_status("Layer already exists", _short(diff_id)))
            return desc
        return None

    async def _upload(self, target: _Target, diff_id: str, upload: Url | None, emit: _Emit) -> Descriptor:
        registry = target.registry
        short = _short(diff_id)
        tar = self._images.layer_tar(diff_id)
        location = upload or await registry.start_upload(target.path)
        result = Compressed()
        last = 0.0

        def progress(done: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_EVERY or done >= tar.size:
                last = now
                emit(layer_status("Pushing", short, done, tar.size))

        try:
            location = await registry.upload_chunks(
                target.path, location, gzip_stream(tar.open, result, progress, self._parallel, deflaters=self._deflaters)
            )
            await registry.commit_upload(target.path, location, result.digest)
        except BaseException:
            await registry.cancel_upload(target.path, location)
            raise
        emit(layer_status("Pushed", short))
        desc = Descriptor(DOCKER_LAYER, result.digest, result.size)
        self._remember(diff_id, desc, target)
        return desc

    def _remember(self, diff_id: str, desc: Descriptor, target: _Target) -> None:
        location = BlobLocation(diff_id, desc.digest, desc.size, desc.media_type, target.domain, target.path)
        self._locations.add([location], times.now())


def _unique(locations: list[BlobLocation]) -> list[BlobLocation]:
    """One location per digest, the first (most recently seen) kept."""
    seen: set[str] = set()
    out = []
    for loc in locations:
        if loc.digest not in seen:
            seen.add(loc.digest)
            out.append(loc)
    return out


def _unique_sources(locations: list[BlobLocation]) -> list[BlobLocation]:
    seen: set[tuple[str, str]] = set()
    out = []
    for loc in locations:
        if (loc.digest, loc.repository) not in seen:
            seen.add((loc.digest, loc.repository))
            out.append(loc)
    return out


def _wants_basic_credentials(status: int, challenges: list[str], creds: Credentials) -> bool:
    """The registry asks for Basic auth only, and there are none to give: dockerd's
    "no basic auth credentials" before any upload."""
    if status != 401 or creds.has_basic or creds.registry_token:
        return False
    schemes = {c.scheme for c in parse_challenges(challenges)}
    return schemes == {"basic"}


def _layer_type(location: BlobLocation) -> str:
    """A gzip blob is a schema 2 layer whatever its pull called it (as dockerd sets it);
    a zstd or plain tar blob keeps its own type."""
    if location.media_type in ("", DOCKER_LAYER) or location.media_type.endswith("tar+gzip"):
        return DOCKER_LAYER
    return location.media_type


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _translate(exc: RegistryAnswer | TransportError) -> DockyardError:
    if isinstance(exc, TransportError):
        return exc
    first = exc.errors[0] if exc.errors else None
    if exc.status == 401 or (first is not None and first.code == "UNAUTHORIZED"):
        return Unauthorized(exc.message)
    return Internal(exc.message)

