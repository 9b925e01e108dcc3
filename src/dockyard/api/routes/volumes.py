"""/volumes routes."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import EmptyResponse, JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas import volumes as schema
from dockyard.api.versioning import at_least
from dockyard.engine.volumes import CreateRequest, Pruned
from dockyard.model.filters import Filters, parse_filters
from dockyard.model.volumes import Volume


class Volumes(Protocol):
    """What these routes need of the engine (engine/volumes.py VolumeService)."""

    def get(self, name: str) -> Volume: ...
    def query(self, filters: Filters) -> list[Volume]: ...
    def mountpoint(self, v: Volume) -> str: ...
    async def create(self, request: CreateRequest) -> Volume: ...
    async def remove(self, name: str, *, force: bool = False) -> None: ...
    async def prune(self, filters: Filters, *, all_named: bool) -> Pruned: ...


def routes(volumes: Volumes) -> list[Route]:
    async def list_volumes(request: Request) -> Response:
        found = volumes.query(parse_filters(request.arg("filters")))
        return JsonResponse({"Volumes": [schema.volume_doc(v, volumes.mountpoint(v)) for v in found], "Warnings": None})

    async def inspect(request: Request) -> Response:
        v = volumes.get(request.params["name"])
        return JsonResponse(schema.volume_doc(v, volumes.mountpoint(v)))

    async def create(request: Request) -> Response:
        v = await volumes.create(schema.create_request(await request.json()))
        return JsonResponse(schema.volume_doc(v, volumes.mountpoint(v)), status=201)

    async def remove(request: Request) -> Response:
        await volumes.remove(request.params["name"], force=request.flag("force"))
        return EmptyResponse(204)

    async def prune(request: Request) -> Response:
        # Before API 1.42 prune took every unused volume; since, anonymous ones unless all=true.
        pruned = await volumes.prune(parse_filters(request.arg("filters")), all_named=not at_least(request.api_version, "1.42"))
        return JsonResponse({"VolumesDeleted": list(pruned.names) or None, "SpaceReclaimed": pruned.space})

    return [
        Route("GET", "/volumes", list_volumes),
        Route("POST", "/volumes/create", create),
        Route("POST", "/volumes/prune", prune),
        Route("GET", "/volumes/{name}", inspect),
        Route("DELETE", "/volumes/{name}", remove),
    ]
