"""POST /commit: docker commit."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas import fields
from dockyard.errors import InvalidArgument
from dockyard.model.imageentries import ImageEntry
from dockyard.model.images import ImageConfig, image_config_from_json
from dockyard.model.references import Reference, parse_repository_tag


class Commits(Protocol):
    async def commit(
        self,
        ref: str,
        target: Reference | None,
        *,
        comment: str = "",
        author: str = "",
        changes: tuple[str, ...] = (),
        config: ImageConfig | None = None,
        pause: bool = True,
    ) -> ImageEntry: ...


def routes(commits: Commits) -> list[Route]:
    async def commit(request: Request) -> Response:
        container = request.arg("container")
        if not container:
            raise InvalidArgument("container is required")
        body = await request.json()
        config = image_config_from_json(fields.container_config(body)) if body else None
        repo = request.arg("repo")
        target = parse_repository_tag(repo, request.arg("tag")) if repo else None
        entry = await commits.commit(
            container,
            target,
            comment=request.arg("comment"),
            author=request.arg("author"),
            changes=request.args("changes"),
            config=config,
            pause=request.flag("pause", True),
        )
        return JsonResponse({"Id": entry.id}, 201)

    return [Route("POST", "/commit", commit)]
