"""Pull: an image from a registry into the local store, with dockerd's progress stream.

The manifest is resolved before anything is streamed, so an unknown tag or a platform the
index lacks is an error status, as with dockerd. Then up to three layers download at once
(dockerd's max-concurrent-downloads), each verified against its digest while it streams;
layers are unpacked in order as their downloads finish, through the same path `docker load`
uses; the image and its names are committed last, in one step. A failure undoes every layer
the pull made: no half image is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform as host
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.distribution.client import Fetched, Registry, RegistryAnswer
from dockyard.distribution.http import TransportError
from dockyard.distribution.tls import TlsContexts
from dockyard.engine.events import EventBus
from dockyard.engine.imagemanifests import ImageManifests
from dockyard.engine.images import ImageService
from dockyard.errors import DockyardError, Internal, InvalidArgument, NotFound, Unauthorized
from dockyard.layers.overlay import chain_id
from dockyard.model import times
from dockyard.model.images import parse_image_config
from dockyard.model.manifests import (
    MAX_CONFIG_BYTES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    choose,
    matches,
    normalize_platform,
    parse_manifest,
)
from dockyard.model.progress import Progress, layer_status
from dockyard.model.references import Reference
from dockyard.model.registries import RegistrySettings
from dockyard.model.registryauth import Credentials
from dockyard.store.blobs import BlobLocation, BlobLocations
from dockyard.store.images import LayerRow

log = logging.getLogger(__name__)

_Emit = Callable[[Progress], None]

MAX_CONCURRENT_DOWNLOADS = 3
_PROGRESS_EVERY = 0.1  # seconds between two Downloading lines of one layer


def host_platform() -> Platform:
    return normalize_platform(Platform("linux", host.machine()))


@dataclass(frozen=True)
class Resolved:
    """What a reference names in the registry: the digest it resolves to (an index's, for a
    multi-platform image), and the one image manifest chosen with its config."""

    digest: str
    manifest: Manifest
    raw_config: bytes
    documents: tuple[bytes, ...]  # as the registry served them: the index (if any), the manifest


class PullService:
    def __init__(
        self, images: ImageService, manifests: ImageManifests, events: EventBus, downloads: Path,
        settings: RegistrySettings | None = None, tls: TlsContexts | None = None,
        max_downloads: int = MAX_CONCURRENT_DOWNLOADS, locations: BlobLocations | None = None,
    ) -> None:
        self._images = images
        self._manifests = manifests
        self._locations = locations  # where each layer's blob was seen, for push
        self._events = events
        self._downloads = downloads  # kept across restarts: partial blobs resume from here
        self._downloads.mkdir(parents=True, exist_ok=True)
        self._settings = settings or RegistrySettings()
        self._tls = tls or TlsContexts()
        self._max_downloads = max_downloads
        self._blob_locks: dict[str, asyncio.Lock] = {}

    def registries(self, domain: str, creds: Credentials) -> list[Registry]:
        """Where to pull `domain`'s images from, in order: docker.io's mirrors, then the registry."""
        endpoints = self._settings.endpoints(domain)
        groups = [[e] for e in endpoints if e.mirror] + [[e for e in endpoints if not e.mirror]]
        return [Registry(domain, group, creds, self._settings, self._tls) for group in groups]

    def registry(self, domain: str, creds: Credentials) -> Registry:
        """The registry itself, never a mirror (login, push)."""
        return self.registries(domain, creds)[-1]

    async def login(self, server: str, creds: Credentials) -> str:
        """POST /auth: the registry accepts these credentials (dockerd's wording otherwise)."""
        domain = server.removeprefix("https://").removeprefix("http://").split("/")[0] or "docker.io"
        if domain in ("index.docker.io", "registry-1.docker.io"):
            domain = "docker.io"
        try:
            return await self.registry(domain, creds).login()
        except RegistryAnswer as exc:
            if exc.errors and exc.errors[0].code == "UNAUTHORIZED":
                raise Unauthorized(exc.message) from exc
            raise

    async def pull(
        self, ref: Reference, creds: Credentials, wanted: Platform | None, all_tags: bool = False
    ) -> AsyncGenerator[Progress, None]:
        """Resolve `ref` (errors are raised here, before any line), then stream the pull.
        With `all_tags` (a reference without tag or digest) every tag of the repository."""
        candidates = self.registries(ref.domain, creds)
        for registry in candidates:
            refs = [ref.with_default_tag()]
            try:
                if all_tags:
                    tags = await registry.tags(ref.path)
                    if not tags:
                        raise NotFound(f"repository {ref.familiar_name} has no tags")
                    refs = [ref.with_tag(t) for t in tags]
                first = await self._resolve(registry, refs[0], wanted)
            except (RegistryAnswer, TransportError) as exc:
                if registry.mirror:  # as dockerd: a mirror that fails is passed over
                    log.info("pull of %s: mirror %s failed (%s), trying the next endpoint", ref, registry.base_text, exc.message)
                    continue
                raise translate(exc, refs[0] if not all_tags else ref) from exc
            return self._stream(registry, ref if all_tags else refs[0], refs, first, wanted)
        raise AssertionError("the registry itself is always the last candidate")  # pragma: no cover

    async def _resolve(self, registry: Registry, ref: Reference, wanted: Platform | None) -> Resolved:
        top = await registry.manifest(ref.path, _target(ref))
        if ref.digest is not None and top.digest != ref.digest:
            raise InvalidArgument(f"manifest verification failed for digest {ref.digest}")
        parsed = parse_manifest(top.raw, top.content_type)
        if isinstance(parsed, Index):
            chosen = choose(parsed, wanted or host_platform())
            one: Fetched = await registry.manifest(ref.path, chosen.digest)
            if one.digest != chosen.digest:
                raise InvalidArgument(f"manifest verification failed for digest {chosen.digest}")
            inner = parse_manifest(one.raw, one.content_type)
            if not isinstance(inner, Manifest):
                raise InvalidArgument(f"manifest {chosen.digest}: an index inside an index is not supported")
            manifest = inner
            documents: tuple[bytes, ...] = (top.raw, one.raw)
        else:
            manifest = parsed
            documents = (top.raw,)
        raw_config = await registry.blob_bytes(ref.path, manifest.config, MAX_CONFIG_BYTES)
        image = parse_image_config(raw_config, manifest.config.digest)
        if len(image.diff_ids) != len(manifest.layers):
            raise InvalidArgument(
                f"invalid manifest: {len(manifest.layers)} layers, but its config has {len(image.diff_ids)} diff ids"
            )
        if wanted is not None and not isinstance(parsed, Index):
            actual = Platform(image.os, image.architecture, image.variant)
            if not matches(wanted, actual):
                raise NotFound(
                    f"image with reference {ref.familiar()} was found but does not match the specified "
                    f"platform: wanted {normalize_platform(wanted)}, actual: {normalize_platform(actual)}"
                )
        return Resolved(top.digest, manifest, raw_config, documents)

    async def _stream(
        self, registry: Registry, named: Reference, refs: list[Reference], first: Resolved, wanted: Platform | None,
    ) -> AsyncGenerator[Progress, None]:
        queue: asyncio.Queue[Progress | BaseException | None] = asyncio.Queue()
        failure: BaseException | None = None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._worker(registry, named, refs, first, wanted, queue))
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    failure = item  # raised outside the group, which would wrap it
                    continue
                yield item
        if failure is not None:
            raise failure

    async def _worker(
        self, registry: Registry, named: Reference, refs: list[Reference], first: Resolved, wanted: Platform | None,
        queue: asyncio.Queue[Progress | BaseException | None],
    ) -> None:
        emit = queue.put_nowait
        ref = named
        try:
            updated = False
            for i, ref in enumerate(refs):
                emit(Progress(f"Pulling from {ref.path}", _target(ref)))
                try:
                    resolved = first if i == 0 else await self._resolve(registry, ref, wanted)
                    updated |= await self._pull_layers(registry, ref, resolved, emit)
                except (RegistryAnswer, TransportError) as exc:
                    raise translate(exc, ref) from exc
            name = named.familiar()
            if updated:
                emit(Progress(f"Status: Downloaded newer image for {name}"))
            else:
                emit(Progress(f"Status: Image is up to date for {name}"))
        except DockyardError as exc:
            queue.put_nowait(exc)
        except Exception as exc:  # a bug: reported on the stream, not lost
            log.exception("pull of %s failed", ref)
            queue.put_nowait(Internal(f"pull failed: {exc}"))
        finally:
            queue.put_nowait(None)

    async def _pull_layers(self, registry: Registry, ref: Reference, resolved: Resolved, emit: _Emit) -> bool:
        """One tag's (or digest's) image; whether anything new came or the name moved."""
        image = parse_image_config(resolved.raw_config, resolved.manifest.config.digest)
        layers = resolved.manifest.layers
        chains: list[str] = []
        parent: str | None = None
        for diff_id in image.diff_ids:
            parent = chain_id(parent, diff_id)
            chains.append(parent)
        missing = [i for i, c in enumerate(chains) if not self._images.has_layer(c)]
        for i, layer in enumerate(layers):
            if i not in missing:
                emit(layer_status("Already exists", _short(layer.digest)))
        for i in missing:
            emit(layer_status("Pulling fs layer", _short(layers[i].digest)))
        files: dict[str, Path] = {}
        new_rows: list[LayerRow] = []
        try:
            with _unwrapped():
                await self._fetch_and_unpack(registry, ref, image.diff_ids, chains, layers, missing, files, new_rows, emit)
            refs = [ref, ref.repository().with_digest(resolved.digest)] if ref.digest is None else [ref]
            await asyncio.to_thread(self._manifests.record, resolved.documents)
            entry, moved = await self._images.commit_pulled(new_rows, resolved.raw_config, refs)
        except BaseException as exc:
            await self._images.discard_layers(new_rows)
            if not isinstance(exc, TransportError | asyncio.CancelledError):
                self._drop_partials([layers[i].digest for i in missing])
            raise
        finally:
            for path in files.values():
                path.unlink(missing_ok=True)
        self._remember(ref, image.diff_ids, resolved.manifest.layers)
        emit(Progress(f"Digest: {resolved.digest}"))
        name = ref.familiar()
        self._events.publish("image", "pull", name, {"name": name})
        log.info("pulled %s (%s): %d new layers", name, entry.id, len(new_rows))
        return moved or bool(new_rows)

    def _remember(self, ref: Reference, diff_ids: Sequence[str], layers: Sequence[Descriptor]) -> None:
        """Which blob each layer is in this repository: a push there, or to another repository
        of the registry, HEADs or mounts it instead of uploading."""
        if self._locations is not None:
            self._locations.add(
                [BlobLocation(d, layer.digest, layer.size, layer.media_type, ref.domain, ref.path)
                 for d, layer in zip(diff_ids, layers, strict=True)],
                times.now(),
            )  # fmt: skip

    async def _fetch_and_unpack(
        self, registry: Registry, ref: Reference, diff_ids: Sequence[str], chains: list[str],
        layers: Sequence[Descriptor], missing: list[int], files: dict[str, Path], new_rows: list[LayerRow], emit: _Emit,
    ) -> None:
        """Download the missing layers (a few at once) and unpack each, in order, once its
        download is done. `files` and `new_rows` gather what the caller must clean up."""
        slots = asyncio.Semaphore(self._max_downloads)
        async with asyncio.TaskGroup() as tg:
            downloads: dict[str, asyncio.Task[Path]] = {}
            for i in missing:
                desc = layers[i]
                if desc.digest not in downloads:
                    if len(downloads) >= self._max_downloads:
                        emit(layer_status("Waiting", _short(desc.digest)))
                    downloads[desc.digest] = tg.create_task(self._download(registry, ref, desc, slots, files, emit))
            for i in missing:
                desc = layers[i]
                path = await downloads[desc.digest]
                short = _short(desc.digest)
                emit(layer_status("Extracting", short, desc.size, desc.size))
                row, new = await self._images.prepare_layer(chains[i - 1] if i else None, path, diff_ids[i])
                if new:
                    new_rows.append(row)
                emit(layer_status("Pull complete", short))

    async def _download(
        self, registry: Registry, ref: Reference, desc: Descriptor, slots: asyncio.Semaphore,
        files: dict[str, Path], emit: _Emit,
    ) -> Path:
        """The verified blob in a file of this pull's own. The partial file of an interrupted
        download is kept (by digest) and resumed by the next pull."""
        short = _short(desc.digest)
        async with slots:
            lock = self._blob_locks.setdefault(desc.digest, asyncio.Lock())
            async with lock:
                partial = self._downloads / f"{desc.digest[7:]}.partial"
                last = 0.0

                def progress(done: int) -> None:
                    nonlocal last
                    now = time.monotonic()
                    if now - last >= _PROGRESS_EVERY or done >= desc.size:
                        last = now
                        emit(layer_status("Downloading", short, done, desc.size))

                await registry.download(ref.path, desc, partial, progress)
                emit(layer_status("Verifying Checksum", short))
                mine = self._downloads / f"{desc.digest[7:]}.{secrets.token_hex(4)}"
                partial.rename(mine)
                files[desc.digest] = mine
            if not lock.locked():
                self._blob_locks.pop(desc.digest, None)
        emit(layer_status("Download complete", short))
        return mine


    def _drop_partials(self, digests: list[str]) -> None:
        """A pull that failed on what it was sent (not cut off, not stopped) keeps no partial
        blob of it for a resume; one another pull is downloading now is left to that pull."""
        for digest in digests:
            lock = self._blob_locks.get(digest)
            if lock is None or not lock.locked():
                (self._downloads / f"{digest[7:]}.partial").unlink(missing_ok=True)


@contextlib.contextmanager
def _unwrapped() -> Iterator[None]:
    """A task group's failure as the first error itself (what the stream reports)."""
    try:
        yield
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group


def _target(ref: Reference) -> str:
    return ref.digest or ref.tag or "latest"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def translate(exc: RegistryAnswer | TransportError, ref: Reference) -> DockyardError:
    """dockerd's words for a registry's refusal (translatePullError)."""
    if isinstance(exc, TransportError):
        return exc
    first = exc.errors[0] if exc.errors else None
    if first is None:
        if exc.status == 401:
            return Unauthorized(exc.message)
        return Internal(exc.message)
    if first.code == "DENIED":
        return NotFound(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
            f"'docker login': {first}"
        )
    if first.code == "MANIFEST_UNKNOWN":
        return NotFound(f"manifest for {ref.familiar()} not found: {first}")
    if first.code == "NAME_UNKNOWN":
        return NotFound(f"repository {ref.familiar_name} not found: {first}")
    if first.code == "UNAUTHORIZED":
        return Unauthorized(str(first))
    return Internal(str(first))

