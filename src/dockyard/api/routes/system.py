"""GET|HEAD /_ping, /version, /info."""

from __future__ import annotations

from dockyard.api.messages import BytesResponse, JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas.system import info_doc, version_doc
from dockyard.engine.system import SystemService

_PING_HEADERS = {
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


def routes(system: SystemService) -> list[Route]:
    async def ping(request: Request) -> Response:
        return BytesResponse(b"OK", headers=_PING_HEADERS)

    async def version(request: Request) -> Response:
        return JsonResponse(version_doc(system))

    async def info(request: Request) -> Response:
        return JsonResponse(info_doc(system))

    return [
        Route("GET", "/_ping", ping),
        Route("HEAD", "/_ping", ping),
        Route("GET", "/version", version),
        Route("GET", "/info", info),
    ]
