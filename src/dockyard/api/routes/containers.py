"""/containers/* routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

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
from dockyard.api.stdcopy import Stream, frame
from dockyard.api.versioning import at_least
from dockyard.engine.attach import AttachOptions, pump
from dockyard.engine.containers import ContainerService
from dockyard.engine.images import ImageService
from dockyard.engine.logs import LogService, parse_tail, parse_unix_time
from dockyard.errors import DockyardError, NotModified
from dockyard.layers.overlay import LayerDirs
from dockyard.model.filters import parse_filters
from dockyard.model.times import format_ns
from dockyard.runtime.attach import Pipe
from dockyard.runtime.logfile import LogQuery

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def _stream_type(request: Request, tty: bool) -> str:
    return RAW if tty or not at_least(request.api_version, "1.42") else MULTIPLEXED


def _framer(tty: bool) -> Callable[[Pipe, bytes], bytes]:
    """TTY output goes raw; otherwise each piece gets the 8-byte stream header."""
    if tty:
        return lambda pipe, data: data
    return lambda pipe, data: frame(Stream.STDERR if pipe is Pipe.STDERR else Stream.STDOUT, data)


def _error_framer(tty: bool) -> Callable[[str], bytes]:
    if tty:
        return lambda message: message.encode() + b"\r\n"
    return lambda message: frame(Stream.SYSTEMERR, message.encode())


def routes(
    containers: ContainerService, images: ImageService, logs: LogService, dirs: LayerDirs
) -> list[Route]:
    async def create(request: Request) -> Response:
        spec = schema.parse_create(await request.json(allow_empty=False), hostname="")
        c = await containers.create(spec, request.arg("name"))
        return JsonResponse({"Id": c.id, "Warnings": []}, 201)

    async def list_containers(request: Request) -> Response:
        found = containers.query(
            parse_filters(request.arg("filters")),
            request.flag("all"),
            request.int_arg("limit", -1) or -1,
        )
        docs = [schema.summary_doc(c) for c in found]
        if request.flag("size"):
            for doc, c in zip(docs, found, strict=True):
                doc.update(await containers.sizes(c))
        return JsonResponse(docs)

    async def inspect(request: Request) -> Response:
        c = containers.resolve(request.params["id"])
        files = containers.files(c.id)
        lowers = [str(dirs.diff(x)) for x in images.layer_cache_ids(c.image_id)] if c.image_id in {
            e.id for e in images.all()
        } else []
        graph = {
            "LowerDir": ":".join(lowers),
            "MergedDir": str(dirs.merged(c.rw_layer)),
            "UpperDir": str(dirs.diff(c.rw_layer)),
            "WorkDir": str(dirs.root / c.rw_layer / "work"),
        }
        paths = {
            "resolv": str(files.resolv),
            "hostname": str(files.hostname),
            "hosts": str(files.hosts),
            "log": str(files.log),
        }
        doc = schema.inspect_doc(c, paths, graph)
        if request.flag("size"):
            doc.update(await containers.sizes(c))
        return JsonResponse(doc)

    async def start(request: Request) -> Response:
        try:
            await containers.start(request.params["id"])
        except NotModified:
            return EmptyResponse(304)
        return EmptyResponse(204)

    async def stop(request: Request) -> Response:
        try:
            await containers.stop(request.params["id"], request.int_arg("t"), request.arg("signal"))
        except NotModified:
            return EmptyResponse(304)
        return EmptyResponse(204)

    async def restart(request: Request) -> Response:
        await containers.restart(request.params["id"], request.int_arg("t"), request.arg("signal"))
        return EmptyResponse(204)

    async def kill(request: Request) -> Response:
        await containers.kill(request.params["id"], request.arg("signal"))
        return EmptyResponse(204)

    async def pause(request: Request) -> Response:
        await containers.pause(request.params["id"])
        return EmptyResponse(204)

    async def unpause(request: Request) -> Response:
        await containers.unpause(request.params["id"])
        return EmptyResponse(204)

    async def wait(request: Request) -> Response:
        ref = request.params["id"]
        containers.resolve(ref)  # a missing container is a plain 404, before any body
        condition = request.arg("condition")

        # A StreamResponse sends its headers at once: `docker run` waits for them before start.
        async def body() -> AsyncIterator[bytes]:
            try:
                status = await containers.wait(ref, condition)
            except DockyardError as exc:
                yield json_line({"Error": {"Message": exc.message}, "StatusCode": -1})
                return
            error = {"Message": status.error} if status.error else None
            yield json_line({"Error": error, "StatusCode": status.code})

        return StreamResponse(body())

    async def remove(request: Request) -> Response:
        await containers.remove(request.params["id"], force=request.flag("force"))
        return EmptyResponse(204)

    async def prune(request: Request) -> Response:
        removed, freed = await containers.prune(parse_filters(request.arg("filters")))
        return JsonResponse({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})

    async def rename(request: Request) -> Response:
        await containers.rename(request.params["id"], request.arg("name"))
        return EmptyResponse(204)

    async def resize(request: Request) -> Response:
        containers.resize(request.params["id"], request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0)
        return EmptyResponse(200)

    async def attach(request: Request) -> Response:
        c = containers.resolve(request.params["id"])
        opts = AttachOptions(
            stdin=request.flag("stdin") and c.spec.open_stdin,
            stdout=request.flag("stdout"),
            stderr=request.flag("stderr"),
            stdin_once=c.spec.stdin_once,
        )
        replay = request.flag("logs")
        stream_live = request.flag("stream")
        framer = _framer(c.spec.tty)

        async def session(client: RawStream) -> None:
            containers.note_attach(c)
            if replay:
                query = LogQuery(stdout=opts.stdout, stderr=opts.stderr)
                async for record in logs.records(c.id, query, follow_new=False):
                    pipe = Pipe.STDERR if record.stream == "stderr" else Pipe.STDOUT
                    await client.write(framer(pipe, record.data))
            if not stream_live:
                return
            conn = await containers.attach_connection(c.id)
            if conn is None:
                return
            await pump(client, conn, opts, framer)

        return HijackResponse(_stream_type(request, c.spec.tty), session, _error_framer(c.spec.tty))

    async def container_logs(request: Request) -> Response:
        c = containers.resolve(request.params["id"])
        query = LogQuery(
            stdout=request.flag("stdout"),
            stderr=request.flag("stderr"),
            since_ns=parse_unix_time(request.arg("since")),
            until_ns=parse_unix_time(request.arg("until")),
            tail=parse_tail(request.arg("tail")),
        )
        timestamps = request.flag("timestamps")
        framer = _framer(c.spec.tty)

        async def body() -> AsyncIterator[bytes]:
            async for record in logs.records(c.id, query, follow_new=request.flag("follow")):
                data = record.data
                if timestamps:
                    data = format_ns(record.time_ns).encode() + b" " + data
                yield framer(Pipe.STDERR if record.stream == "stderr" else Pipe.STDOUT, data)

        return StreamResponse(body(), content_type=_stream_type(request, c.spec.tty))

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

