"""GET|HEAD /_ping, /version, /info, /events."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
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
from dockyard.api.versioning import at_least
from dockyard.engine.events import EventBus
from dockyard.engine.system import SystemService
from dockyard.errors import Unavailable
from dockyard.model.events import Action, Event, EventFilter, EventType, parse_event_window
from dockyard.model.filters import parse_filters

_PING_HEADERS = {
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


def event_doc(event: Event) -> dict[str, Any]:
    """dockerd's events.Message, with the legacy status/id/from it still sends below API 1.52."""
    doc: dict[str, Any] = event.legacy_fields()
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


def _matches(selection: EventFilter, api_version: str) -> Callable[[Event], bool]:
    """The filters, and (as dockerd) no image `create` events for clients older than API 1.46."""
    if at_least(api_version, "1.46"):
        return selection.matches

    def match(event: Event) -> bool:
        if event.type == EventType.IMAGE and event.action == Action.CREATE:
            return False
        return selection.matches(event)

    return match


def routes(system: SystemService, events: EventBus) -> list[Route]:
    async def ping(request: Request) -> Response:
        return BytesResponse(b"OK", headers=_PING_HEADERS)

    async def version(request: Request) -> Response:
        return JsonResponse(version_doc(system, await system.components()))

    async def info(request: Request) -> Response:
        return JsonResponse(info_doc(system, events.listeners))

    async def event_stream(request: Request) -> Response:
        window = parse_event_window(request.arg("since"), request.arg("until"), time.time_ns())
        match = _matches(EventFilter.parse(parse_filters(request.arg("filters"))), request.api_version)

        async def body() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events.follow(window, match)) as stream:
                async for event in stream:
                    yield json_line(event_doc(event))

        return StreamResponse(body())

    # No swarm mode: dockerd's answers on a node that is in no swarm (docker-py's network tests
    # leave one in every teardown and take that 503 as "nothing to leave").
    async def not_in_a_swarm(request: Request) -> Response:
        raise Unavailable("This node is not part of a swarm")

    async def no_swarm_mode(request: Request) -> Response:
        raise Unavailable("swarm mode is not supported by this daemon")

    return [
        Route("POST", "/swarm/leave", not_in_a_swarm),
        Route("POST", "/swarm/init", no_swarm_mode),
        Route("POST", "/swarm/join", no_swarm_mode),
        Route("GET", "/_ping", ping),
        Route("HEAD", "/_ping", ping),
        Route("GET", "/version", version),
        Route("GET", "/info", info),
        Route("GET", "/events", event_stream),
    ]
