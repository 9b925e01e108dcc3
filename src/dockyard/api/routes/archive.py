"""/containers/{id}/archive (HEAD, GET, PUT), /changes and /export: docker cp, diff, export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from dockyard.api.messages import (
    Body,
    BytesResponse,
    EmptyResponse,
    JsonResponse,
    Request,
    Response,
    StreamResponse,
)
from dockyard.api.router import Route
from dockyard.api.schemas.archive import (
    PATH_STAT_HEADER,
    changes_json,
    path_stat_header,
    query_bool,
)
from dockyard.engine.archive import PathArchiveStream
from dockyard.model.filechanges import FileChange
from dockyard.model.pathstat import PathStat


class Archives(Protocol):
    async def stat(self, ref: str, path: str) -> PathStat: ...
    async def archive(self, ref: str, path: str) -> PathArchiveStream: ...
    async def extract(self, ref: str, path: str, body: Body, *, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None: ...
    async def changes(self, ref: str) -> tuple[FileChange, ...]: ...
    async def export(self, ref: str) -> AsyncIterator[bytes]: ...


def routes(archives: Archives) -> list[Route]:
    async def stat(request: Request) -> Response:
        found = await archives.stat(request.params["id"], request.arg("path"))
        return BytesResponse(b"", "application/json", headers={PATH_STAT_HEADER: path_stat_header(found)})

    async def get_archive(request: Request) -> Response:
        if request.method == "HEAD":
            return await stat(request)
        opened = await archives.archive(request.params["id"], request.arg("path"))
        return StreamResponse(
            opened.chunks, content_type="application/x-tar", headers={PATH_STAT_HEADER: path_stat_header(opened.stat)}
        )

    async def put_archive(request: Request) -> Response:
        await archives.extract(
            request.params["id"],
            request.arg("path"),
            request.body,
            no_overwrite_dir_non_dir=query_bool(request.arg("noOverwriteDirNonDir")),
            copy_uid_gid=query_bool(request.arg("copyUIDGID")),
        )
        return EmptyResponse(200)

    async def changes(request: Request) -> Response:
        return JsonResponse(changes_json(await archives.changes(request.params["id"])))

    async def export(request: Request) -> Response:
        return StreamResponse(await archives.export(request.params["id"]), content_type="application/octet-stream")

    return [
        Route("GET", "/containers/{id}/archive", get_archive),
        Route("PUT", "/containers/{id}/archive", put_archive),
        Route("GET", "/containers/{id}/changes", changes),
        Route("GET", "/containers/{id}/export", export),
    ]
