"""POST /containers/{id}/update: parse, call the update service once, render."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas.update import parse_update, update_response_doc
from dockyard.api.versioning import at_least
from dockyard.model.update import ResourceUpdate


class Updates(Protocol):
    async def update(self, ref: str, request: ResourceUpdate) -> tuple[str, ...]: ...


def routes(updates: Updates) -> list[Route]:
    async def update(request: Request) -> Response:
        body = parse_update(await request.json(), with_pids_limit=at_least(request.api_version, "1.40"))
        warnings = await updates.update(request.params["id"], body)
        return JsonResponse(update_response_doc(warnings))

    return [Route("POST", "/containers/{id}/update", update)]
