"""Pull: an image from a registry into the local store, with dockerd's progress stream.

The manifest is resolved before anything is streamed, so an unknown tag or a platform the
index lacks is an error status, as with dockerd. Then up to three layers download at once
(dockerd's max-concurrent-downloads), each in one pass: the bytes go to a thread that
appends them to the partial file in downloads/ (a later pull resumes it with a Range
request), hashes them and unpacks them, through the same path `docker load` uses. A layer
counts only when both its blob digest and its diff id verify; the image and its names are
committed last, in one step. A failure undoes every layer the pull made: no half image is
left behind.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import platform as host
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

from dockyard.distribution.client import BlobMismatch, Fetched, Registry, RegistryAnswer
from dockyard.distribution.http import Response, TransportError
from dockyard.distribution.tls import TlsContexts
from dockyard.engine.events import EventBus
from dockyard.engine.imagemanifests import ImageManifests
from dockyard.engine.images import ImageService
from dockyard.errors import (
    DockyardError,
    Internal,
    InvalidArgument,
    NotFound,
    StorageFull,
    Unauthorized,
    Unavailable,
)
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
from dockyard.streams.pipe import BlobTee, Pipe
from dockyard.tasks import Component, Tasks, WorkQueue, first_error, queued_stream

log = logging.getLogger(__name__)

_Emit = Callable[[Progress], None]
_T = TypeVar("_T")

MAX_CONCURRENT_DOWNLOADS = 3
STALE_PARTIAL = 24 * 3600.0  # seconds
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


class PullService(Component):
    """Owns the pulls' workers: one task per pull, in its Tasks."""

    def __init__(
        self, images: ImageService, manifests: ImageManifests, events: EventBus, downloads: Path,
        settings: RegistrySettings | None = None, tls: TlsContexts | None = None,
        max_downloads: int = MAX_CONCURRENT_DOWNLOADS, locations: BlobLocations | None = None,
    ) -> None:
        self._tasks = Tasks("pull")
        self._images = images
        self._manifests = manifests
        self._locations = locations  # where each layer's blob was seen, for push
        self._events = events
        self._downloads = downloads  # kept across restarts: partial blobs resume from here
        self._downloads.mkdir(parents=True, exist_ok=True)
        self._clean_downloads()
        self._settings = settings or RegistrySettings()
        self._tls = tls or TlsContexts()
        self._max_downloads = max_downloads
        self._blob_locks: dict[str, asyncio.Lock] = {}

    def _clean_downloads(self) -> None:
        """Keep downloads/ bounded: a partial blob older than a day will not be resumed, and
        a finished one (named <hex>.<token>) belonged to a pull that no longer runs."""
        now = time.time()
        for path in self._downloads.iterdir():
            try:
                stale = path.suffix != ".partial" or now - path.stat().st_mtime > STALE_PARTIAL
                if stale:
                    path.unlink()
            except FileNotFoundError:
                continue

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
        work = functools.partial(self._worker, registry, named, refs, first, wanted)
        async for progress in queued_stream(self._tasks, work, f"pull {named}"):
            yield progress

    async def _worker(
        self, registry: Registry, named: Reference, refs: list[Reference], first: Resolved, wanted: Platform | None,
        queue: WorkQueue[Progress],
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
            with first_error():
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
        """Download the missing layers (a few at once), each unpacked while it downloads;
        then report them in order. `files` and `new_rows` gather what the caller must clean
        up (rows are added as soon as a layer is made, in layer order once all are)."""
        slots = asyncio.Semaphore(self._max_downloads)
        made: dict[int, LayerRow] = {}
        try:
            async with asyncio.TaskGroup() as tg:
                streams: dict[str, asyncio.Task[None]] = {}
                for i in missing:
                    desc = layers[i]
                    if desc.digest not in streams:
                        if len(streams) >= self._max_downloads:
                            emit(layer_status("Waiting", _short(desc.digest)))
                        parent = chains[i - 1] if i else None
                        streams[desc.digest] = tg.create_task(
                            self._stream_layer(registry, ref, desc, parent, diff_ids[i], i, slots, files, made, emit)
                        )
                for i in missing:
                    desc = layers[i]
                    short = _short(desc.digest)
                    await streams[desc.digest]
                    emit(layer_status("Extracting", short, desc.size, desc.size))
                    if i not in made and desc.digest in files:  # the same blob again, on another parent
                        row, new = await self._images.prepare_layer(chains[i - 1] if i else None, files[desc.digest], diff_ids[i])
                        if new:
                            made[i] = row
                    emit(layer_status("Pull complete", short))
        finally:
            new_rows.extend(made[i] for i in sorted(made))

    async def _stream_layer(
        self, registry: Registry, ref: Reference, desc: Descriptor, parent: str | None, diff_id: str, index: int,
        slots: asyncio.Semaphore, files: dict[str, Path], made: dict[int, LayerRow], emit: _Emit,
    ) -> None:
        """One blob, downloaded and unpacked in one pass: the bytes go through a pipe to a
        thread that appends them to the partial file (what a later pull resumes from),
        hashes them and unpacks them into a new layer directory. The layer counts only if
        the blob's digest and the tar's diff id both verify."""
        short = _short(desc.digest)
        async with slots:
            lock = self._blob_locks.setdefault(desc.digest, asyncio.Lock())
            async with lock:
                partial = self._downloads / f"{desc.digest[7:]}.partial"
                have = partial.stat().st_size if partial.exists() else 0
                if have > desc.size:
                    partial.unlink()
                    have = 0
                response = None
                if have < desc.size or desc.size == 0:
                    headers = {"Range": f"bytes={have}-"} if have else {}
                    response = await registry.get(f"{ref.path}/blobs/{desc.digest}", [f"repository:{ref.path}:pull"], headers)
                    if headers and response.status != 206:
                        have = 0  # the registry sends it all again
                pipe = Pipe()
                # A thread's work cannot be cancelled: it is waited for whatever happens here,
                # and what it made is handed to the caller's clean-up.
                unpacked = asyncio.get_running_loop().run_in_executor(
                    None, functools.partial(self._unpack_blob, pipe, partial, have, desc, parent, diff_id)
                )
                try:
                    await self._feed(pipe, response, have, desc, short, emit)
                finally:
                    pipe.close(asyncio.CancelledError("pull stopped"))  # no-op once the feed closed it
                    cancelled = await _settled(unpacked)
                    if not unpacked.cancelled() and unpacked.exception() is None:
                        row, new, mine = unpacked.result()
                        if new:
                            made[index] = row
                        files[desc.digest] = mine
                    if cancelled is not None:
                        raise cancelled
                unpacked.result()  # the thread's error, if it failed
                emit(layer_status("Verifying Checksum", short))
            if not lock.locked():
                self._blob_locks.pop(desc.digest, None)
        emit(layer_status("Download complete", short))

    async def _feed(self, pipe: Pipe, response: Response | None, have: int, desc: Descriptor, short: str, emit: _Emit) -> None:
        """The response body into the pipe, with Downloading lines; the pipe is closed in
        any case (with the error, if the download fails, so the thread stops)."""
        last = 0.0
        try:
            if response is not None:
                async for chunk in response.chunks():
                    have += len(chunk)
                    if have > desc.size:
                        raise BlobMismatch(f"blob {desc.digest}: more than the {desc.size} bytes its descriptor says")
                    if not await pipe.write(chunk):
                        break  # the unpacking failed: its error is the one to report
                    now = time.monotonic()
                    if now - last >= _PROGRESS_EVERY or have >= desc.size:
                        last = now
                        emit(layer_status("Downloading", short, have, desc.size))
        except BaseException as exc:
            pipe.close(exc)
            raise
        pipe.close()

    def _unpack_blob(
        self, pipe: Pipe, partial: Path, have: int, desc: Descriptor, parent: str | None, diff_id: str,
    ) -> tuple[LayerRow, bool, Path]:
        """The thread's side of _stream_layer. Returns the row, whether it is new, and the
        verified blob's file (the caller removes it)."""
        try:
            with partial.open("r+b" if have else "w+b") as file:
                tee = BlobTee(file, have, pipe)
                try:
                    row, new = self._images.add_layer_blocking(parent, cast(BinaryIO, tee), diff_id)
                except DockyardError as exc:
                    if isinstance(exc, Unavailable):  # the download broke: resumable
                        raise
                    if isinstance(exc, StorageFull):
                        partial.unlink(missing_ok=True)  # what space it holds is wanted now
                        raise
                    tee.drain()  # a wrong blob is reported as such, not as a bad tar
                    self._verify(tee, desc, partial)
                    partial.unlink(missing_ok=True)
                    raise
                try:
                    tee.drain()
                    self._verify(tee, desc, partial)
                except BaseException:
                    if new:
                        self._images.discard_layer_blocking(row)
                    raise
        finally:
            pipe.abandon()
        mine = partial.with_name(f"{partial.stem}.{secrets.token_hex(4)}")
        partial.rename(mine)
        return row, new, mine

    @staticmethod
    def _verify(tee: BlobTee, desc: Descriptor, partial: Path) -> None:
        if tee.count != desc.size or tee.digest() != desc.digest:
            partial.unlink(missing_ok=True)
            if tee.count < desc.size:
                raise BlobMismatch(f"blob {desc.digest}: {tee.count} of {desc.size} bytes")
            raise BlobMismatch(f"filesystem layer verification failed for digest {desc.digest}")

    def _drop_partials(self, digests: list[str]) -> None:
        """A pull that failed on what it was sent (not cut off, not stopped) keeps no partial
        blob of it for a resume; one another pull is downloading now is left to that pull."""
        for digest in digests:
            lock = self._blob_locks.get(digest)
            if lock is None or not lock.locked():
                (self._downloads / f"{digest[7:]}.partial").unlink(missing_ok=True)


async def _settled(future: asyncio.Future[_T]) -> asyncio.CancelledError | None:
    """Wait until `future` is done, even through a cancellation, which is returned for the
    caller to raise once it has taken care of the result."""
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError as exc:
            cancelled = exc
    return cancelled




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

