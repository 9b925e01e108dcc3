"""/images/* routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from dockyard.api.messages import (
    EmptyResponse,
    JsonResponse,
    Request,
    Response,
    StreamResponse,
    json_line,
)
from dockyard.api.router import Route
from dockyard.api.schemas import images as schema
from dockyard.api.schemas.progress import error_doc, progress_doc
from dockyard.api.versioning import at_least
from dockyard.engine.images import ImageService
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.model.filters import parse_filters
from dockyard.model.imageentries import ImageEntry
from dockyard.model.imagemanifests import ManifestSummary
from dockyard.model.manifests import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    decode_platform,
    parse_platform,
)
from dockyard.model.progress import Progress, PushResult
from dockyard.model.references import Reference, parse_reference, parse_repository_tag
from dockyard.model.registryauth import Credentials, decode_registry_auth


class Puller(Protocol):
    async def pull(
        self, ref: Reference, creds: Credentials, wanted: Platform | None, all_tags: bool = False
    ) -> AsyncGenerator[Progress, None]: ...


class Manifests(Protocol):
    def target(self, entry: ImageEntry) -> tuple[Descriptor, Manifest | Index] | None: ...

    def summaries(self, entry: ImageEntry) -> tuple[ManifestSummary, ...]: ...

    def resolve(self, name: str, wanted: Platform | None) -> ImageEntry: ...


class Pusher(Protocol):
    def push(self, ref: Reference, creds: Credentials, all_tags: bool) -> AsyncGenerator[Progress | PushResult, None]: ...


def _progress_stream(progress: AsyncGenerator[Progress | PushResult, None]) -> StreamResponse:
    """A pull's or a push's lines as the CLI renders them; a failure is the last line."""

    async def lines() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(progress):
            try:
                async for p in progress:
                    yield json_line(progress_doc(p))
            except DockyardError as exc:
                yield json_line(error_doc(exc.message))

    return StreamResponse(lines())


def _archive_platform(request: Request) -> Platform | None:
    """save/load's `platform` (API 1.48+; older clients' stray values are ignored, as dockerd)."""
    if not at_least(request.api_version, "1.48"):
        return None
    given = request.args("platform")
    if len(given) > 1:
        raise InvalidArgument("multiple platform parameters not supported")
    return decode_platform(given[0]) if given and given[0] else None


def routes(images: ImageService, pulls: Puller, manifests: Manifests, pushes: Pusher) -> list[Route]:

    def multi_platform(request: Request, entry: ImageEntry, doc: dict[str, Any], listed: bool) -> dict[str, Any]:
        """The multi-platform store's fields: Descriptor (API 1.48; null in a list, absent in
        inspect when the image came by no manifest), Manifests when asked (1.47 list, 1.48 inspect)."""
        if at_least(request.api_version, "1.48"):
            found = manifests.target(entry)
            if found is not None or listed:
                doc["Descriptor"] = schema.descriptor_doc(found[0]) if found else None
        if request.flag("manifests") and at_least(request.api_version, "1.47" if listed else "1.48"):
            doc["Manifests"] = [schema.manifest_summary_doc(m) for m in manifests.summaries(entry)]
        return doc

    async def list_images(request: Request) -> Response:
        entries = images.query(parse_filters(request.arg("filters")), request.flag("all"))
        # dockerd counts containers only for system df: -1 ("not set") here, the CLI's N/A.
        return JsonResponse([
            multi_platform(request, e, schema.summary_doc(e, -1), listed=True) for e in entries
        ])  # fmt: skip

    def one_platform(request: Request, since: str) -> Platform | None:
        """`platform=` (an ocispec.Platform in JSON) on inspect (1.49) and history (1.48)."""
        if not request.arg("platform") or not at_least(request.api_version, since):
            return None
        return decode_platform(request.arg("platform"))

    async def inspect(request: Request) -> Response:
        wanted = one_platform(request, "1.49")
        if wanted is not None and request.flag("manifests") and at_least(request.api_version, "1.48"):
            raise InvalidArgument("conflicting options: manifests and platform options cannot both be set")
        entry = manifests.resolve(request.params["name"], wanted)
        doc = schema.inspect_doc(entry, images.diff_dirs(entry.id))
        if at_least(request.api_version, "1.50"):
            doc["Config"] = schema.oci_config_doc(doc["Config"])
        return JsonResponse(multi_platform(request, entry, doc, listed=False))

    async def history(request: Request) -> Response:
        entry = manifests.resolve(request.params["name"], one_platform(request, "1.48"))
        return JsonResponse(schema.history_doc(images.history(entry)))

    async def tag(request: Request) -> Response:
        repo = request.arg("repo")
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        await images.tag(request.params["name"], parse_repository_tag(repo, request.arg("tag")))
        return EmptyResponse(201)

    async def delete(request: Request) -> Response:
        name = request.params["name"]
        wanted = [decode_platform(p) for p in request.args("platforms")] if at_least(request.api_version, "1.50") else []
        if len(wanted) > 1:
            raise InvalidArgument("multiple platforms are not supported")
        if wanted:
            # Another platform's image of the same index is removed by its ID; the named one as named.
            entry = manifests.resolve(name, wanted[0])
            if entry.id != images.resolve(name).id:
                name = entry.id
        records = await images.remove(name, force=request.flag("force"), prune=not request.flag("noprune"))
        return JsonResponse(schema.delete_doc(records))

    async def pull(request: Request) -> Response:
        ref = parse_repository_tag(request.arg("fromImage"), request.arg("tag"))
        # `pull -a` names the repository alone: no tag in fromImage, no tag parameter.
        named = parse_reference(request.arg("fromImage").removesuffix(":"))
        all_tags = not request.arg("tag") and named.tag is None and named.digest is None
        creds = decode_registry_auth(request.headers.get("x-registry-auth", ""))
        wanted = parse_platform(request.arg("platform")) if request.arg("platform") else None
        # Resolved before the stream starts: an unknown tag is an error status, as with dockerd.
        return _progress_stream(await pulls.pull(named if all_tags else ref, creds, wanted, all_tags))

    async def push(request: Request) -> Response:
        name, tag = request.params["name"], request.arg("tag")
        named = parse_reference(name)
        # No tag anywhere: every tag of the repository (`push --all-tags`).
        all_tags = not tag and named.tag is None and named.digest is None
        ref = named if all_tags or named.digest is not None else parse_repository_tag(name, tag)
        creds = decode_registry_auth(request.headers.get("x-registry-auth", ""))
        return _progress_stream(pushes.push(ref, creds, all_tags))

    async def create(request: Request) -> Response:
        source = request.arg("fromSrc")
        if request.arg("fromImage"):
            return await pull(request)
        if source != "-":
            raise InvalidArgument("importing from a URL is not supported; send the tar as the body (fromSrc=-)")
        repo = request.arg("repo")
        ref = parse_repository_tag(repo, request.arg("tag")) if repo else None
        entry = await images.import_image(
            request.body, ref, request.args("changes"), request.arg("message")
        )
        return JsonResponse({"status": entry.id})

    async def prune(request: Request) -> Response:
        records, freed = await images.prune(parse_filters(request.arg("filters")))
        return JsonResponse({"ImagesDeleted": schema.delete_doc(records) or None, "SpaceReclaimed": freed})

    async def load(request: Request) -> Response:
        platform = _archive_platform(request)  # a bad parameter is an error status
        # As dockerd: what goes wrong with the archive itself (unreadable, a full disk) is an
        # error line in a 200 stream, which docker-py turns into ImageLoadError.
        loading: AsyncIterator[str] | DockyardError
        try:
            loading = await images.load(request.body, platform)
        except DockyardError as exc:
            loading = exc

        async def lines() -> AsyncIterator[bytes]:
            try:
                if isinstance(loading, DockyardError):
                    raise loading
                async for line in loading:
                    yield json_line({"stream": line})
            except DockyardError as exc:
                yield json_line({"errorDetail": {"message": exc.message}, "error": exc.message})

        # No progress bars (quiet or not): the CLI prints the stream lines either way.
        return StreamResponse(lines())

    async def save(request: Request) -> Response:
        names = list(request.args("names")) or ([request.params["name"]] if "name" in request.params else [])
        if not names:
            raise InvalidArgument("no images named")
        return StreamResponse(images.save(names, _archive_platform(request)), content_type="application/x-tar")

    return [
        Route("GET", "/images/json", list_images),
        Route("POST", "/images/create", create),
        Route("POST", "/images/load", load),
        Route("POST", "/images/prune", prune),
        Route("GET", "/images/get", save),
        Route("GET", "/images/{name*}/json", inspect),
        Route("GET", "/images/{name*}/history", history),
        Route("GET", "/images/{name*}/get", save),
        Route("POST", "/images/{name*}/tag", tag),
        Route("POST", "/images/{name*}/push", push),
        Route("DELETE", "/images/{name*}", delete),
    ]

