"""/containers/{id}/exec and /exec/{id}/*: docker exec."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import (
    EmptyResponse,
    HijackResponse,
    JsonResponse,
    RawStream,
    Request,
    Response,
)
from dockyard.api.router import Route
from dockyard.api.schemas.execs import exec_inspect_doc, parse_exec_create, parse_exec_start
from dockyard.api.stdcopy import content_type, output_framer
from dockyard.engine.attach import ClientStream, Framer
from dockyard.model.containers import Container
from dockyard.model.execs import Exec, ExecConfig, ExecStart
from dockyard.model.stdio import Pipe


class Execs(Protocol):
    def get(self, exec_id: str) -> Exec: ...
    def container_user(self, e: Exec) -> str: ...
    async def create(self, ref: str, config: ExecConfig) -> Exec: ...
    def check_startable(self, exec_id: str) -> tuple[Exec, Container]: ...
    async def start_detached(self, exec_id: str, start: ExecStart) -> None: ...
    async def session(self, exec_id: str, start: ExecStart, client: ClientStream, frame: Framer) -> None: ...
    def resize(self, exec_id: str, height: int, width: int) -> None: ...


def routes(execs: Execs) -> list[Route]:
    async def create(request: Request) -> Response:
        e = await execs.create(request.params["id"], parse_exec_create(await request.json(allow_empty=False)))
        return JsonResponse({"Id": e.id}, 201)

    async def start(request: Request) -> Response:
        exec_id = request.params["id"]
        start_config = parse_exec_start(await request.json())
        if start_config.detach:
            await execs.start_detached(exec_id, start_config)
            return EmptyResponse(200)
        execs.check_startable(exec_id)  # a 404 or 409 before the connection is taken
        tty = start_config.tty  # dockerd frames by the start body's Tty, not the create's
        framer = output_framer(tty)

        async def session(client: RawStream) -> None:
            await execs.session(exec_id, start_config, client, framer)

        # dockerd writes a start failure after the upgrade as a line on stdout.
        def error(message: str) -> bytes:
            return framer(Pipe.STDOUT, (message + "\r\n").encode())

        return HijackResponse(content_type(request.api_version, tty), session, error)

    async def resize(request: Request) -> Response:
        execs.resize(request.params["id"], request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0)
        return EmptyResponse(200)

    async def inspect(request: Request) -> Response:
        e = execs.get(request.params["id"])
        return JsonResponse(exec_inspect_doc(e, execs.container_user(e)))

    return [
        Route("POST", "/containers/{id}/exec", create),
        Route("POST", "/exec/{id}/start", start),
        Route("POST", "/exec/{id}/resize", resize),
        Route("GET", "/exec/{id}/json", inspect),
    ]
