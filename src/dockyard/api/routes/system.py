"""GET|HEAD /_ping, /version, /info, /events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dockyard.api.messages import (
    BytesResponse,
    JsonResponse,
    Request,
    Response,
    StreamResponse,
    json_line,
)
from dockyard.api.router import Route
from dockyard.api.schemas.system import info_doc, version_doc
from dockyard.engine.events import Event, EventBus
from dockyard.engine.logs import parse_unix_time
from dockyard.engine.system import SystemService
from dockyard.model.filters import Filters, parse_filters

_PING_HEADERS = {
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


def event_doc(event: Event) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if event.type in ("container", "image"):
        doc["status"] = event.action
        doc["id"] = event.actor_id
        if event.type == "container" and "image" in event.attributes:
            doc["from"] = event.attributes["image"]
    doc.update(
        {
            "Type": event.type,
            "Action": event.action,
            "Actor": {"ID": event.actor_id, "Attributes": dict(event.attributes)},
            "scope": event.scope,
            "time": event.time_nano // 1_000_000_000,
            "timeNano": event.time_nano,
        }
    )
    return doc


def _matches(filters: Filters, event: Event) -> bool:
    if not filters.match_exact("type", event.type) or not filters.match_exact("event", event.action):
        return False
    if filters.has("container") and (
        event.type != "container"
        or not ({event.actor_id, event.actor_id[:12], event.attributes.get("name", "")} & filters.values("container"))
    ):
        return False
    if filters.has("image"):
        candidates = {event.attributes.get("image", ""), event.attributes.get("name", ""), event.actor_id}
        if not candidates & filters.values("image"):
            return False
    return filters.match_labels(event.attributes)


def routes(system: SystemService, events: EventBus) -> list[Route]:
    async def ping(request: Request) -> Response:
        return BytesResponse(b"OK", headers=_PING_HEADERS)

    async def version(request: Request) -> Response:
        return JsonResponse(version_doc(system, await system.components()))

    async def info(request: Request) -> Response:
        return JsonResponse(info_doc(system, events.listeners))

    async def event_stream(request: Request) -> Response:
        filters = parse_filters(request.arg("filters"))
        filters.validate(("type", "event", "container", "image", "label", "network", "volume", "daemon", "scope", "plugin", "node", "service", "secret", "config"))
        since = parse_unix_time(request.arg("since")) or None
        until = parse_unix_time(request.arg("until")) or None

        async def body() -> AsyncIterator[bytes]:
            async for event in events.follow(since, until):
                if _matches(filters, event):
                    yield json_line(event_doc(event))

        return StreamResponse(body())

    async def prune_none_networks(request: Request) -> Response:
        # Only the predefined networks exist here, and those are never pruned.
        return JsonResponse({"NetworksDeleted": None})

    async def prune_none_volumes(request: Request) -> Response:
        return JsonResponse({"VolumesDeleted": None, "SpaceReclaimed": 0})

    return [
        Route("POST", "/networks/prune", prune_none_networks),
        Route("POST", "/volumes/prune", prune_none_volumes),
        Route("GET", "/_ping", ping),
        Route("HEAD", "/_ping", ping),
        Route("GET", "/version", version),
        Route("GET", "/info", info),
        Route("GET", "/events", event_stream),
    ]
