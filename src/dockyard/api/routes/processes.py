"""GET /containers/{id}/stats and /containers/{id}/top."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response, StreamResponse, json_line
from dockyard.api.router import Route
from dockyard.api.schemas.stats import stats_document
from dockyard.api.schemas.top import top_document
from dockyard.api.versioning import at_least
from dockyard.engine.stats import StatsFeed, StatsMode, Top
from dockyard.model.stats import stats_mode


class Stats(Protocol):
    def feed(self, ref: str, mode: StatsMode) -> StatsFeed: ...
    async def top(self, ref: str, ps_args: str) -> Top: ...


def routes(stats: Stats) -> list[Route]:
    async def container_stats(request: Request) -> Response:
        one_shot = request.flag("one-shot") if at_least(request.api_version, "1.41") else False
        mode = stats_mode(request.flag("stream", True), one_shot)
        feed = stats.feed(request.params["id"], mode)
        name, cid = feed.container.name, feed.container.id
        if mode is not StatsMode.STREAM:
            async for current, previous in feed.samples:
                return JsonResponse(stats_document(current, previous, name=name, container_id=cid))

        async def documents() -> AsyncIterator[bytes]:
            async for current, previous in feed.samples:
                yield json_line(stats_document(current, previous, name=name, container_id=cid))

        return StreamResponse(documents())

    async def top(request: Request) -> Response:
        return JsonResponse(top_document(await stats.top(request.params["id"], request.arg("ps_args"))))

    return [
        Route("GET", "/containers/{id}/stats", container_stats),
        Route("GET", "/containers/{id}/top", top),
    ]
