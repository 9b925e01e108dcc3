"""/containers/* routes: parse, call one engine method, render."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from dockyard.api.messages import (
    EmptyResponse,
    HijackResponse,
    JsonResponse,
    RawStream,
    Request,
    Response,
    StreamResponse,
    json_line,
)
from dockyard.api.router import Route
from dockyard.api.schemas import containers as schema
from dockyard.api.schemas.host_config import check_mounts_for_version
from dockyard.api.stdcopy import Stream, content_type, frame, output_framer
from dockyard.engine.attach import AttachOptions, ClientStream, Framer
from dockyard.engine.containers import ContainerDetails, Created, Sizes
from dockyard.engine.logs import (
    LogQuery,
    LogRecord,
    LogStream,
    parse_tail,
    parse_unix_time,
    stream_runs,
)
from dockyard.engine.table import ExitStatus
from dockyard.errors import DockyardError
from dockyard.model.containers import Container, ContainerSpec
from dockyard.model.detachkeys import parse_detach_keys
from dockyard.model.filters import Filters, parse_filters
from dockyard.model.stdio import Pipe


class Containers(Protocol):
    volumes_root: str

    def resolve(self, ref: str) -> Container: ...
    def query(self, filters: Filters, include_all: bool, limit: int = -1) -> list[Container]: ...
    async def sizes(self, c: Container) -> Sizes: ...
    async def details(self, ref: str, *, size: bool = False) -> ContainerDetails: ...
    async def create(self, spec: ContainerSpec, name: str, platform: str = "") -> Created: ...
    async def start(self, ref: str) -> None: ...
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...
    async def prune(self, filters: Filters) -> tuple[list[str], int]: ...
    async def rename(self, ref: str, new_name: str) -> None: ...
    def note_attach(self, c: Container) -> None: ...


class Lifecycle(Protocol):
    async def stop(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None: ...
    async def restart(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None: ...
    async def kill(self, ref: str, signal_name: str = "") -> None: ...
    async def pause(self, ref: str) -> None: ...
    async def unpause(self, ref: str) -> None: ...
    def resize(self, ref: str, height: int, width: int) -> None: ...
    def waiter(self, ref: str, condition: str = "not-running") -> asyncio.Future[ExitStatus]: ...


class Logs(Protocol):
    async def open(self, ref: str, query: LogQuery, follow: bool) -> LogStream: ...
    def records(self, c: Container, query: LogQuery, follow: bool = False) -> AsyncIterator[list[LogRecord]]: ...


class Attachments(Protocol):
    async def join(self, c: Container, client: ClientStream, opts: AttachOptions, frame: Framer) -> None: ...


def _error_framer(tty: bool) -> Callable[[str], bytes]:
    if tty:
        return lambda message: message.encode() + b"\r\n"
    return lambda message: frame(Stream.SYSTEMERR, message.encode())


def _inspect_doc(details: ContainerDetails) -> dict[str, Any]:
    p, g, sizes = details.paths, details.graph, details.sizes
    return schema.inspect_doc(
        details.container,
        {"resolv": p.resolv, "hostname": p.hostname, "hosts": p.hosts, "log": p.log, "volumes": p.volumes,
         "staging": p.staging},
        {"LowerDir": g.lower, "MergedDir": g.merged, "UpperDir": g.upper, "WorkDir": g.work},
        exec_ids=details.exec_ids,
        size_rw=sizes.rw if sizes is not None else None,
        size_root_fs=sizes.root_fs if sizes is not None else None,
    )


def routes(containers: Containers, lifecycle: Lifecycle, logs: Logs, attachments: Attachments) -> list[Route]:
    async def create(request: Request) -> Response:
        spec = schema.parse_create(await request.json(allow_empty=False), hostname="")
        check_mounts_for_version(spec.host, request.api_version)
        created = await containers.create(spec, request.arg("name"), request.arg("platform"))
        return JsonResponse({"Id": created.container.id, "Warnings": list(created.warnings)}, 201)

    async def list_containers(request: Request) -> Response:
        found = containers.query(
            parse_filters(request.arg("filters")),
            request.flag("all"),
            request.int_arg("limit", -1) or -1,
        )
        if not request.flag("size"):
            return JsonResponse([schema.summary_doc(c, volumes_root=containers.volumes_root) for c in found])
        docs = []
        for c in found:
            sizes = await containers.sizes(c)
            docs.append(schema.summary_doc(c, size_rw=sizes.rw, size_root_fs=sizes.root_fs,
                                           volumes_root=containers.volumes_root))  # fmt: skip
        return JsonResponse(docs)

    async def inspect(request: Request) -> Response:
        return JsonResponse(_inspect_doc(await containers.details(request.params["id"], size=request.flag("size"))))

    async def start(request: Request) -> Response:
        await containers.start(request.params["id"])
        return EmptyResponse(204)

    async def stop(request: Request) -> Response:
        await lifecycle.stop(request.params["id"], request.int_arg("t"), request.arg("signal"))
        return EmptyResponse(204)

    async def restart(request: Request) -> Response:
        await lifecycle.restart(request.params["id"], request.int_arg("t"), request.arg("signal"))
        return EmptyResponse(204)

    async def kill(request: Request) -> Response:
        await lifecycle.kill(request.params["id"], request.arg("signal"))
        return EmptyResponse(204)

    async def pause(request: Request) -> Response:
        await lifecycle.pause(request.params["id"])
        return EmptyResponse(204)

    async def unpause(request: Request) -> Response:
        await lifecycle.unpause(request.params["id"])
        return EmptyResponse(204)

    async def wait(request: Request) -> Response:
        # Resolved before any body: a missing container is a plain 404.
        waiting = lifecycle.waiter(request.params["id"], request.arg("condition"))

        # A StreamResponse sends its headers at once: `docker run` waits for them before start.
        async def body() -> AsyncIterator[bytes]:
            try:
                status = await waiting
            except DockyardError as exc:
                yield json_line({"Error": {"Message": exc.message}, "StatusCode": -1})
                return
            error = {"Message": status.error} if status.error else None
            yield json_line({"Error": error, "StatusCode": status.code})

        return StreamResponse(body())

    async def remove(request: Request) -> Response:
        await containers.remove(request.params["id"], force=request.flag("force"), volumes=request.flag("v"))
        return EmptyResponse(204)

    async def prune(request: Request) -> Response:
        removed, freed = await containers.prune(parse_filters(request.arg("filters")))
        return JsonResponse({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})

    async def rename(request: Request) -> Response:
        await containers.rename(request.params["id"], request.arg("name"))
        return EmptyResponse(204)

    async def resize(request: Request) -> Response:
        lifecycle.resize(request.params["id"], request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0)
        return EmptyResponse(200)

    async def attach(request: Request) -> Response:
        c = containers.resolve(request.params["id"])
        opts = AttachOptions(
            stdin=request.flag("stdin") and c.spec.open_stdin,
            stdout=request.flag("stdout"),
            stderr=request.flag("stderr"),
            stdin_once=c.spec.stdin_once,
            tty=c.spec.tty,
            detach_keys=parse_detach_keys(request.arg("detachKeys")),
        )
        replay = request.flag("logs")
        stream_live = request.flag("stream")
        framer = output_framer(c.spec.tty)

        async def session(client: RawStream) -> None:
            containers.note_attach(c)
            if replay and (opts.stdout or opts.stderr):
                query = LogQuery(stdout=opts.stdout, stderr=opts.stderr, joined=True)
                async for batch in logs.records(c, query):
                    for stream, data in stream_runs(batch):
                        await client.write(framer(Pipe.STDERR if stream == "stderr" else Pipe.STDOUT, data))
            if stream_live:
                await attachments.join(c, client, opts, framer)

        return HijackResponse(content_type(request.api_version, c.spec.tty), session, _error_framer(c.spec.tty))

    async def container_logs(request: Request) -> Response:
        follow = request.flag("follow")
        timestamps, details = request.flag("timestamps"), request.flag("details")
        query = LogQuery(
            stdout=request.flag("stdout"),
            stderr=request.flag("stderr"),
            since_ns=parse_unix_time(request.arg("since")),
            until_ns=parse_unix_time(request.arg("until")),
            tail=parse_tail(request.arg("tail")),
            joined=not (follow or timestamps or details),
        )
        opened = await logs.open(request.params["id"], query, follow=follow)
        tty = opened.container.spec.tty
        framer = output_framer(tty)

        async def body() -> AsyncIterator[bytes]:
            async for batch in opened.batches:
                # Reading history, a frame per run of one stream (far less work for both
                # sides); following, a frame per record, as clients watching lines expect.
                runs = stream_runs(batch, timestamps=timestamps, details=details, merge=not follow)
                yield b"".join(framer(Pipe.STDERR if stream == "stderr" else Pipe.STDOUT, data) for stream, data in runs)

        return StreamResponse(body(), content_type=content_type(request.api_version, tty))

    return [
        Route("POST", "/containers/create", create),
        Route("POST", "/containers/prune", prune),
        Route("GET", "/containers/json", list_containers),
        Route("GET", "/containers/{id}/json", inspect),
        Route("POST", "/containers/{id}/start", start),
        Route("POST", "/containers/{id}/stop", stop),
        Route("POST", "/containers/{id}/restart", restart),
        Route("POST", "/containers/{id}/kill", kill),
        Route("POST", "/containers/{id}/wait", wait),
        Route("POST", "/containers/{id}/pause", pause),
        Route("POST", "/containers/{id}/unpause", unpause),
        Route("POST", "/containers/{id}/attach", attach),
        Route("GET", "/containers/{id}/logs", container_logs),
        Route("POST", "/containers/{id}/resize", resize),
        Route("POST", "/containers/{id}/rename", rename),
        Route("DELETE", "/containers/{id}", remove),
    ]
