"""POST /build: the classic builder (`DOCKER_BUILDKIT=0 docker build`, docker-py's
images.build, Compose builds with BuildKit off)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Protocol

from dockyard.api.messages import JsonResponse, Request, Response, StreamResponse, json_line
from dockyard.api.router import Route
from dockyard.api.schemas.progress import progress_doc
from dockyard.engine.transfer import Body
from dockyard.errors import InvalidArgument
from dockyard.model.builds import (
    BuildEvent,
    BuildFailure,
    BuildOptions,
    BuildOutput,
    BuildProgress,
    BuildResult,
)
from dockyard.model.references import parse_reference
from dockyard.model.registryauth import decode_registry_config


class Builds(Protocol):
    async def build(self, body: Body, opts: BuildOptions) -> AsyncGenerator[BuildEvent, None]: ...

    async def prune(self) -> tuple[list[str], int]: ...


def _json_map(request: Request, name: str) -> dict[str, Any]:
    text = request.arg(name)
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {name}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {name}: not a JSON object")
    return doc


def _strings(doc: Mapping[str, Any], name: str, nullable: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if not (isinstance(value, str) or (nullable and value is None)):
            raise InvalidArgument(f"invalid {name}: the value of {key!r} is not a string")
        out[str(key)] = value
    return out


def build_options(request: Request) -> BuildOptions:
    if request.arg("remote"):
        raise InvalidArgument("dockyard's builder takes the context as the request body; remote contexts "
                              "(git URLs, tarball URLs) are not supported")  # fmt: skip
    if request.flag("squash"):
        raise InvalidArgument("squash is only supported with experimental mode")
    if request.arg("version") == "2":
        raise InvalidArgument("BuildKit is not supported by dockyard; build with DOCKER_BUILDKIT=0")
    tags = []
    for text in request.args("t"):
        if text:
            try:
                tags.append(parse_reference(text))
            except InvalidArgument as exc:
                raise InvalidArgument(f"invalid reference format: {text}: {exc.message}") from None
    cache_from = _json_list(request.arg("cachefrom"))
    hosts = tuple(h for value in request.args("extrahosts") for h in value.split(",") if h)
    rm = request.flag("rm", True)
    return BuildOptions(
        tags=tuple(tags),
        # The first value, as Go's FormValue: docker-py sends a second one for a Dockerfile
        # outside the context (its text), after the name it gave the file in the tar.
        dockerfile=next(iter(request.args("dockerfile")), "") or "Dockerfile",
        target=request.arg("target"),
        build_args=_strings(_json_map(request, "buildargs"), "buildargs", nullable=True),
        labels=_strings(_json_map(request, "labels"), "labels", nullable=False),
        no_cache=request.flag("nocache"),
        pull=request.flag("pull"),
        remove=rm,
        force_remove=request.flag("forcerm"),
        quiet=request.flag("q"),
        network_mode=request.arg("networkmode"),
        extra_hosts=hosts,
        shm_size=request.int_arg("shmsize", 0) or 0,
        memory=request.int_arg("memory", 0) or 0,
        memory_swap=request.int_arg("memswap", 0) or 0,
        cpu_shares=request.int_arg("cpushares", 0) or 0,
        cpu_period=request.int_arg("cpuperiod", 0) or 0,
        cpu_quota=request.int_arg("cpuquota", 0) or 0,
        cpuset_cpus=request.arg("cpusetcpus"),
        cpuset_mems=request.arg("cpusetmems"),
        cache_from=cache_from,
        registry_auth=decode_registry_config(request.headers.get("x-registry-config", "")),
    )


def _json_list(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid cachefrom: {exc}") from None
    if doc is None:
        return ()
    if not isinstance(doc, list) or not all(isinstance(i, str) for i in doc):
        raise InvalidArgument("invalid cachefrom: not a list of strings")
    return tuple(doc)


def event_doc(event: BuildEvent) -> dict[str, Any]:
    if isinstance(event, BuildOutput):
        return {"stream": event.text}
    if isinstance(event, BuildProgress):
        return progress_doc(event.progress)
    if isinstance(event, BuildResult):
        return {"aux": {"ID": event.image_id}}
    detail: dict[str, Any] = {"message": event.message}
    if event.code:
        detail = {"code": event.code, "message": event.message}
    return {"errorDetail": detail, "error": event.message}


def routes(builds: Builds) -> list[Route]:
    async def build(request: Request) -> Response:
        opts = build_options(request)
        # The context is received and the Dockerfile parsed first: those errors are statuses.
        events = await builds.build(request.body, opts)

        async def lines() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events):
                async for event in events:
                    yield json_line(event_doc(event))
                    if isinstance(event, BuildFailure):
                        return

        return StreamResponse(lines())

    async def prune(request: Request) -> Response:
        # The classic builder's cache is its intermediate images (BuildKit's filters and
        # keep-storage have nothing to act on here).
        deleted, freed = await builds.prune()
        return JsonResponse({"CachesDeleted": deleted or None, "SpaceReclaimed": freed})

    return [Route("POST", "/build", build), Route("POST", "/build/prune", prune)]
