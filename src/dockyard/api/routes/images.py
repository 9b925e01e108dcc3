"""/images/* routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

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
from dockyard.model.manifests import Platform, decode_platform_json, parse_platform
from dockyard.model.progress import Progress
from dockyard.model.references import Reference, parse_reference, parse_repository_tag
from dockyard.model.registryauth import Credentials, decode_registry_auth


class Puller(Protocol):
    async def pull(
        self, ref: Reference, creds: Credentials, wanted: Platform | None, all_tags: bool = False
    ) -> AsyncGenerator[Progress, None]: ...


def _archive_platform(request: Request) -> Platform | None:
    """save/load's `platform` (API 1.48+; older clients' stray values are ignored, as dockerd)."""
    if not at_least(request.api_version, "1.48"):
        return None
    given = request.args("platform")
    if len(given) > 1:
        raise InvalidArgument("multiple platform parameters not supported")
    return decode_platform_json(given[0]) if given and given[0] else None


def routes(images: ImageService, pulls: Puller) -> list[Route]:

    async def list_images(request: Request) -> Response:
        entries = images.query(parse_filters(request.arg("filters")), request.flag("all"))
        # dockerd counts containers only for system df: -1 ("not set") here, the CLI's N/A.
        return JsonResponse([schema.summary_doc(e, -1) for e in entries])

    async def inspect(request: Request) -> Response:
        entry = images.resolve(request.params["name"])
        return JsonResponse(schema.inspect_doc(entry, images.diff_dirs(entry.id)))

    async def history(request: Request) -> Response:
        return JsonResponse(schema.history_doc(images.history(request.params["name"])))

    async def tag(request: Request) -> Response:
        repo = request.arg("repo")
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        await images.tag(request.params["name"], parse_repository_tag(repo, request.arg("tag")))
        return EmptyResponse(201)

    async def delete(request: Request) -> Response:
        records = await images.remove(
            request.params["name"], force=request.flag("force"), prune=not request.flag("noprune")
        )
        return JsonResponse(schema.delete_doc(records))

    async def pull(request: Request) -> Response:
        ref = parse_repository_tag(request.arg("fromImage"), request.arg("tag"))
        # `pull -a` names the repository alone: no tag in fromImage, no tag parameter.
        named = parse_reference(request.arg("fromImage").removesuffix(":"))
        all_tags = not request.arg("tag") and named.tag is None and named.digest is None
        creds = decode_registry_auth(request.headers.get("x-registry-auth", ""))
        wanted = parse_platform(request.arg("platform")) if request.arg("platform") else None
        # Resolved before the stream starts: an unknown tag is an error status, as with dockerd.
        pulling = await pulls.pull(named if all_tags else ref, creds, wanted, all_tags)

        async def lines() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(pulling):
                try:
                    async for p in pulling:
                        yield json_line(progress_doc(p))
                except DockyardError as exc:
                    yield json_line(error_doc(exc.message))

        return StreamResponse(lines())

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

    async def build_prune(request: Request) -> Response:
        # The classic builder keeps no cache of its own: nothing to free.
        return JsonResponse({"CachesDeleted": None, "SpaceReclaimed": 0})

    async def load(request: Request) -> Response:
        # Received whole first: a full disk or a bad archive is an error status.
        loading = await images.load(request.body, _archive_platform(request))

        async def lines() -> AsyncIterator[bytes]:
            try:
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
        Route("POST", "/build/prune", build_prune),
        Route("GET", "/images/get", save),
        Route("GET", "/images/{name*}/json", inspect),
        Route("GET", "/images/{name*}/history", history),
        Route("GET", "/images/{name*}/get", save),
        Route("POST", "/images/{name*}/tag", tag),
        Route("DELETE", "/images/{name*}", delete),
    ]

