"""The HTTP/1.1 connection layer, driven with raw bytes over a local unix socket.

No daemon: a Router with fake routes is served by `Connection` on a socket in
tmp_path, and each test speaks HTTP/1.1 to it by hand (keep-alive, version
prefixes, error bodies, HEAD, chunked streams, request bodies and hijack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.api.listeners import ApiServer
from dockyard.api.messages import (
    BytesResponse,
    EmptyResponse,
    HijackResponse,
    JsonResponse,
    RawStream,
    Request,
    Response,
    StreamResponse,
)
from dockyard.api.router import Route, Router
from dockyard.errors import Conflict, InvalidArgument, NotFound, NotModified

TIMEOUT = 5


# ---- the fake API ----------------------------------------------------------------------


@dataclass
class Spy:
    """What the routes saw, for assertions from the test side."""

    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    hijack_done: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[Request] = field(default_factory=list)


def _routes(spy: Spy) -> list[Route]:
    async def ping(request: Request) -> Response:
        return BytesResponse(b"OK", headers={"Cache-Control": "no-cache"})

    async def describe(request: Request) -> Response:
        spy.requests.append(request)
        return JsonResponse(
            {
                "method": request.method,
                "path": request.path,
                "version": request.api_version,
                "params": dict(request.params),
                "query": {k: list(v) for k, v in request.query.items()},
                "upgrade": request.upgrade,
            }
        )

    async def empty(request: Request) -> Response:
        return EmptyResponse()

    async def created(request: Request) -> Response:
        return JsonResponse({"Id": "abc"}, 201)

    async def echo_body(request: Request) -> Response:
        raw = await request.body.read()
        return JsonResponse({"len": len(raw), "body": raw.decode()})

    async def read_in_pieces(request: Request) -> Response:
        pieces = []
        while piece := await request.body.read(3):
            pieces.append(piece.decode())
        return JsonResponse({"pieces": pieces})

    async def json_body(request: Request) -> Response:
        return JsonResponse({"got": await request.json()})

    async def ignore_body(request: Request) -> Response:
        return EmptyResponse()

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for word in (b"one\n", b"two\n", b"three\n"):
                yield word

        return StreamResponse(chunks(), headers={"X-Stream": "yes"})

    async def endless(request: Request) -> Response:
        if request.flag("read"):
            await request.body.read()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                await asyncio.Event().wait()  # nothing more, ever
                yield b"never\n"
            finally:
                spy.stream_closed.set()

        return StreamResponse(chunks())

    async def attach(request: Request) -> Response:
        async def session(stream: RawStream) -> None:
            try:
                while data := await stream.read():
                    await stream.write(data.upper())
                await stream.write(b"bye")  # after the client's half-close
            finally:
                spy.hijack_done.set()

        return HijackResponse("application/vnd.docker.raw-stream", session)

    async def deadline(request: Request) -> Response:
        try:
            async with asyncio.timeout(0):  # as docker stop -t 0: expired before anything waited
                await asyncio.Event().wait()
        except TimeoutError:
            return JsonResponse({"timed_out": True})
        return EmptyResponse()

    async def missing(request: Request) -> Response:
        raise NotFound("No such container: ghost")

    async def conflict(request: Request) -> Response:
        raise Conflict("container is in use")

    async def not_modified(request: Request) -> Response:
        raise NotModified("container already started")

    async def boom(request: Request) -> Response:
        raise RuntimeError("kaboom")

    async def silent_boom(request: Request) -> Response:
        raise ValueError()

    return [
        Route("GET", "/_ping", ping),
        Route("HEAD", "/_ping", ping),
        Route("GET", "/info", describe),
        Route("GET", "/containers/{id}/json", describe),
        Route("GET", "/images/{name*}/json", describe),
        Route("DELETE", "/things/{id}", empty),
        Route("POST", "/things/create", created),
        Route("POST", "/echo", echo_body),
        Route("POST", "/pieces", read_in_pieces),
        Route("POST", "/json-body", json_body),
        Route("POST", "/ignore", ignore_body),
        Route("GET", "/stream", stream),
        Route("GET", "/endless", endless),
        Route("POST", "/attach", attach),
        Route("GET", "/missing", missing),
        Route("GET", "/deadline", deadline),
        Route("POST", "/conflict", conflict),
        Route("POST", "/notmod", not_modified),
        Route("GET", "/boom", boom),
        Route("GET", "/silent-boom", silent_boom),
    ]


# ---- a tiny raw HTTP client ------------------------------------------------------------


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    chunks: list[bytes]

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader, *, head: bool = False) -> Reply:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    version, status, reason = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"duplicate header {name}"
            headers[name.lower()] = value.strip()
    code = int(status)
    chunks: list[bytes] = []
    body = b""
    if head or code in (204, 304) or 100 <= code < 200:
        pass
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                assert await reader.readuntil(b"\r\n") == b"\r\n"  # no trailers
                break
            chunks.append(await reader.readexactly(size))
            assert await reader.readexactly(2) == b"\r\n"
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return Reply(code, reason, headers, body, chunks)


def request_bytes(
    method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: docker"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _connection_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t.get_name() == "api:connection" and not t.done()}


def run(
    tmp_path: Path, scenario: Callable[[Callable[[], Awaitable[Client]], Spy], Awaitable[None]]
) -> None:
    """Serve the fake API on tmp_path/s (the daemon's listener) and run `scenario(connect, spy)`."""

    async def main() -> None:
        spy = Spy()
        path = str(tmp_path / "s")
        clients: list[asyncio.StreamWriter] = []

        async def connect() -> Client:
            reader, writer = await asyncio.open_unix_connection(path)
            clients.append(writer)
            return reader, writer

        try:
            async with ApiServer(Router(_routes(spy)), "test", None) as api:
                await api.listen((f"unix://{path}",))
                await asyncio.wait_for(scenario(connect, spy), TIMEOUT)
                for writer in clients:
                    writer.close()
                # every server-side connection ends once its client is gone
                if connections := _connection_tasks():
                    await asyncio.wait_for(asyncio.gather(*connections, return_exceptions=True), TIMEOUT)
        finally:  # on failure, the server's exit cancels what is left of the server side
            for writer in clients:
                with contextlib.suppress(Exception):
                    writer.close()

    asyncio.run(main())


async def roundtrip(
    connect: Callable[[], Awaitable[Client]], raw: bytes, *, head: bool = False
) -> Reply:
    reader, writer = await connect()
    writer.write(raw)
    await writer.drain()
    return await read_reply(reader, head=head)


# ---- plain requests --------------------------------------------------------------------


def test_json_response_and_common_headers(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reply = await roundtrip(connect, request_bytes("GET", "/info"))
        assert reply.status == 200
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["api-version"] == "1.50"
        assert reply.headers["server"] == "test"
        assert reply.headers["ostype"] == "linux"
        assert reply.headers["docker-experimental"] == "false"
        assert int(reply.headers["content-length"]) == len(reply.body)
        assert reply.body.endswith(b"\n")
        assert reply.json() == {"method": "GET", "path": "/info", "version": "1.50", "params": {},
                                "query": {}, "upgrade": False}  # fmt: skip

    run(tmp_path, scenario)


def test_version_prefix(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        doc = (await roundtrip(connect, request_bytes("GET", "/v1.41/containers/abc/json"))).json()
        assert (doc["path"], doc["version"], doc["params"]) == (
            "/containers/abc/json",
            "1.41",
            {"id": "abc"},
        )
        doc = (
            await roundtrip(connect, request_bytes("GET", "/v1.24/images/library/busybox/json"))
        ).json()
        assert (doc["path"], doc["version"]) == ("/images/library/busybox/json", "1.24")
        assert doc["params"] == {"name": "library/busybox"}

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("target", "message"),
    [("/v1.99/info", "client version 1.99 is too new. Maximum supported API version is 1.50"),
     ("/v1.12/info", ("client version 1.12 is too old. Minimum supported API version is 1.24, "
                      "please upgrade your client to a newer version"))],
)  # fmt: skip
def test_version_out_of_range_is_400(tmp_path: Path, target: str, message: str) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reply = await roundtrip(connect, request_bytes("GET", target))
        assert reply.status == 400
        assert reply.json() == {"message": message}
        assert spy.requests == []

    run(tmp_path, scenario)


def test_query_string(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        doc = (
            await roundtrip(
                connect, request_bytes("GET", "/v1.41/info?all=1&filters=%7B%22a%22%3A1%7D&x=&x=2")
            )
        ).json()
        assert doc["query"] == {"all": ["1"], "filters": ['{"a":1}'], "x": ["", "2"]}
        assert doc["path"] == "/info"

    run(tmp_path, scenario)


def test_request_headers_lower_case(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        await roundtrip(connect, request_bytes("GET", "/info", headers={"X-Registry-Auth": "abc"}))
        assert spy.requests[0].headers["x-registry-auth"] == "abc"
        assert spy.requests[0].headers["host"] == "docker"

    run(tmp_path, scenario)


def test_keep_alive_two_requests_one_connection(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/v1.41/containers/one/json"))
        first = await read_reply(reader)
        writer.write(request_bytes("GET", "/v1.43/containers/two/json"))
        second = await read_reply(reader)
        assert first.json()["params"] == {"id": "one"} and first.json()["version"] == "1.41"
        assert second.json()["params"] == {"id": "two"} and second.json()["version"] == "1.43"
        assert "connection" not in first.headers or first.headers["connection"].lower() != "close"

    run(tmp_path, scenario)


def test_a_deadline_that_expires_before_the_route_first_waits_is_the_routes(tmp_path: Path) -> None:
    """The route starts in data_received and its timeout fires before the connection's task
    takes it over: the TimeoutError is raised in the route, which answers."""

    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        for _ in range(2):
            writer.write(request_bytes("GET", "/deadline"))
            assert (await read_reply(reader)).json() == {"timed_out": True}

    run(tmp_path, scenario)


def test_pipelined_requests(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(
            request_bytes("GET", "/_ping")
            + request_bytes("DELETE", "/things/x")
            + request_bytes("GET", "/info")
        )
        replies = [await read_reply(reader) for _ in range(3)]
        assert [r.status for r in replies] == [200, 204, 200]
        assert replies[0].body == b"OK"
        assert replies[2].json()["path"] == "/info"

    run(tmp_path, scenario)


def test_connection_close_request(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/_ping", headers={"Connection": "close"}))
        reply = await read_reply(reader)
        assert reply.body == b"OK"
        assert reply.headers.get("connection", "").lower() == "close"
        assert await reader.read() == b""  # server closed its side

    run(tmp_path, scenario)


def test_bytes_response_and_extra_headers(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reply = await roundtrip(connect, request_bytes("GET", "/_ping"))
        assert reply.status == 200
        assert reply.body == b"OK"
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"
        assert reply.headers["cache-control"] == "no-cache"
        assert reply.headers["content-length"] == "2"

    run(tmp_path, scenario)


def test_empty_204_and_201(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("DELETE", "/v1.41/things/x"))
        reply = await read_reply(reader)
        assert reply.status == 204
        assert "content-length" not in reply.headers and "transfer-encoding" not in reply.headers
        writer.write(request_bytes("POST", "/things/create", b""))
        reply = await read_reply(reader)
        assert reply.status == 201 and reply.json() == {"Id": "abc"}

    run(tmp_path, scenario)


# ---- HEAD ------------------------------------------------------------------------------


def test_head_ping_has_no_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("HEAD", "/_ping"))
        reply = await read_reply(reader, head=True)
        assert reply.status == 200
        assert reply.headers["content-length"] == "2"
        assert reply.headers["api-version"] == "1.50"
        # the next reply starts right away: no body bytes were sent for HEAD
        writer.write(request_bytes("GET", "/_ping"))
        nxt = await read_reply(reader)
        assert nxt.body == b"OK"

    run(tmp_path, scenario)


def test_head_on_get_route(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("HEAD", "/v1.41/info"))
        reply = await read_reply(reader, head=True)
        assert reply.status == 200
        assert reply.headers["content-type"] == "application/json"
        assert int(reply.headers["content-length"]) > 0
        assert spy.requests[0].method == "HEAD"
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_head_on_stream_route(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("HEAD", "/stream"))
        reply = await read_reply(reader, head=True)
        assert reply.status == 200
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


# ---- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (request_bytes("GET", "/missing"), 404, "No such container: ghost"),
        (request_bytes("POST", "/v1.41/conflict", b""), 409, "container is in use"),
        (request_bytes("GET", "/boom"), 500, "kaboom"),
        (request_bytes("GET", "/silent-boom"), 500, "ValueError"),
        (request_bytes("GET", "/nowhere"), 404, "page not found"),
        (request_bytes("POST", "/info", b""), 404, "page not found"),
        (request_bytes("GET", "/v1.41/containers/a/b/json"), 404, "page not found"),
    ],
)
def test_error_bodies(tmp_path: Path, raw: bytes, status: int, message: str) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(raw)
        reply = await read_reply(reader)
        assert reply.status == status
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {"message": message}
        # the connection survives an error reply
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_not_modified_has_no_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/notmod", b""))
        reply = await read_reply(reader)
        assert reply.status == 304
        assert "content-length" not in reply.headers
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_malformed_request_closes_connection(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(b"this is not http\r\n\r\n")
        rest = await reader.read()
        assert b"200" not in rest

    run(tmp_path, scenario)


def test_percent_encoded_path_params_are_decoded(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        doc = (
            await roundtrip(
                connect, request_bytes("GET", "/v1.41/images/busybox%40sha256:abc/json")
            )
        ).json()
        assert doc["params"] == {"name": "busybox@sha256:abc"}

    run(tmp_path, scenario)


# ---- streams ---------------------------------------------------------------------------


def test_chunked_stream(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/v1.41/stream"))
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in reply.headers
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["x-stream"] == "yes"
        assert reply.headers["api-version"] == "1.50"
        assert reply.chunks == [b"one\n", b"two\n", b"three\n"]
        # keep-alive after a stream
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_stream_ends_when_client_goes_away_after_body_read(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/endless?read=1"))
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readuntil(b"first\n\r\n")
        writer.close()
        await spy.stream_closed.wait()  # the route's generator was closed

    run(tmp_path, scenario)


def test_stream_ends_when_client_goes_away_get_without_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/endless"))
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readuntil(b"first\n\r\n")
        writer.close()
        await asyncio.wait_for(spy.stream_closed.wait(), 0.5)

    run(tmp_path, scenario)


# ---- request bodies --------------------------------------------------------------------


def test_content_length_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        doc = (await roundtrip(connect, request_bytes("POST", "/echo", b"hello world"))).json()
        assert doc == {"len": 11, "body": "hello world"}

    run(tmp_path, scenario)


def test_chunked_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        raw = request_bytes("POST", "/v1.41/echo", body, headers={"Transfer-Encoding": "chunked"})
        reader, writer = await connect()
        writer.write(raw)
        assert (await read_reply(reader)).json() == {"len": 11, "body": "hello world"}
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_body_sent_in_pieces_read_in_pieces(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/pieces", headers={"Content-Length": "8"}))
        await writer.drain()
        writer.write(b"abcd")
        await writer.drain()
        writer.write(b"efgh")
        reply = await read_reply(reader)
        assert "".join(reply.json()["pieces"]) == "abcdefgh"
        assert all(len(p) <= 3 for p in reply.json()["pieces"])

    run(tmp_path, scenario)


def test_json_body(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(
            request_bytes(
                "POST", "/json-body", b'{"Image": "busybox"}', {"Content-Type": "application/json"}
            )
        )
        assert (await read_reply(reader)).json() == {"got": {"Image": "busybox"}}
        writer.write(request_bytes("POST", "/json-body", b"{broken"))
        reply = await read_reply(reader)
        assert reply.status == 400
        assert reply.json()["message"].startswith("invalid JSON: ")
        writer.write(request_bytes("POST", "/json-body"))
        assert (await read_reply(reader)).json() == {"got": None}

    run(tmp_path, scenario)


def test_unread_body_is_drained_for_keep_alive(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/ignore", b"x" * 100_000))
        assert (await read_reply(reader)).status == 204
        writer.write(request_bytes("POST", "/missing", b"y" * 10))  # 404 route, body unread
        assert (await read_reply(reader)).status == 404
        writer.write(
            request_bytes(
                "POST",
                "/ignore",
                b"3\r\nabc\r\n0\r\n\r\n",
                headers={"Transfer-Encoding": "chunked"},
            )
        )
        assert (await read_reply(reader)).status == 204
        writer.write(request_bytes("GET", "/_ping"))
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


# ---- hijack ----------------------------------------------------------------------------


async def _read_exactly_or_eof(reader: asyncio.StreamReader, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = await reader.read(n - len(data))
        if not more:
            break
        data += more
    return data


def test_hijack_upgrade_echo_and_write_after_half_close(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(
            request_bytes("POST", "/v1.41/attach?stream=1&stdin=1&stdout=1",
                          headers={"Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": "text/plain"})
        )  # fmt: skip
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert status_line == "HTTP/1.1 101 UPGRADED"
        headers = {
            k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)
        }
        assert headers["content-type"] == "application/vnd.docker.raw-stream"
        assert headers["connection"].lower() == "upgrade"
        assert headers["upgrade"] == "tcp"

        writer.write(b"hello ")
        assert await _read_exactly_or_eof(reader, 6) == b"HELLO "
        writer.write(b"world")
        assert await _read_exactly_or_eof(reader, 5) == b"WORLD"
        writer.write_eof()  # sock.shutdown(SHUT_WR): our side is done, theirs is not
        assert await reader.read() == b"bye"  # then EOF: the server closed after the session
        assert spy.hijack_done.is_set()

    run(tmp_path, scenario)


def test_hijack_bytes_sent_with_the_request_are_not_lost(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(
            request_bytes("POST", "/attach", headers={"Connection": "Upgrade", "Upgrade": "tcp"})
            + b"early"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        writer.write_eof()
        assert await reader.read() == b"EARLYbye"

    run(tmp_path, scenario)


def test_hijack_without_upgrade_header_gets_200_then_raw_stream(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/v1.24/attach"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Type: application/vnd.docker.raw-stream\r\n" in head
        writer.write(b"abc")
        assert await _read_exactly_or_eof(reader, 3) == b"ABC"
        writer.write_eof()
        assert await reader.read() == b"bye"

    run(tmp_path, scenario)


def test_hijack_request_sees_upgrade_flag(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        doc = (
            await roundtrip(
                connect,
                request_bytes("GET", "/info", headers={"Connection": "Upgrade", "Upgrade": "tcp"}),
            )
        ).json()
        assert doc["upgrade"] is True

    run(tmp_path, scenario)


def test_cancelling_a_streaming_connection_closes_the_generator_and_leaks_no_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Daemon shutdown cancels connections mid-stream: the cancellation must not be
    swallowed, the route's generator must be closed where it runs, and no task may be
    left behind (an `__anext__` task once leaked here and made `aclose()` fail)."""

    async def main() -> None:
        spy = Spy()
        path = str(tmp_path / "s")
        api = ApiServer(Router(_routes(spy)), "test", None)
        async with api:
            await api.listen((f"unix://{path}",))
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(request_bytes("GET", "/endless"))
            await reader.readuntil(b"first\n\r\n")
            before = asyncio.all_tasks()
            served = _connection_tasks()
            assert len(served) == 1
        # leaving the server (daemon shutdown) cancelled the connection mid-stream
        assert all(t.cancelled() for t in served)
        assert spy.stream_closed.is_set()
        await asyncio.sleep(0)
        left = {t for t in asyncio.all_tasks() - {asyncio.current_task()} if not t.done()}
        assert left <= before - served
        assert not any("anext" in repr(t) for t in left)
        assert await reader.read() == b""  # the server closed the connection
        writer.close()

    asyncio.run(main())
    assert "connection failed" not in caplog.text
    assert "already running" not in caplog.text


# ---- hostile and malformed requests ----------------------------------------------------
# What Go's net/http answers dockerd's clients with is the reference: a request it cannot
# read gets a plain-text status line and body, `Connection: close`, and the connection ends.


def _go_refusal(status: str, text: str | None = None) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            f"{status if text is None else text}").encode()  # fmt: skip


BAD_REQUEST = _go_refusal("400 Bad Request")


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (b"GARBAGE\r\n\r\n", BAD_REQUEST),
        (b"GET /a b HTTP/1.1\r\nHost: docker\r\n\r\n", BAD_REQUEST),  # a space in the path
        (b"GET /_ping HTTP/1.1\r\nHost: docker\r\nNoColonHere\r\n\r\n", BAD_REQUEST),
        (b"POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", BAD_REQUEST),
        (b"POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: -1\r\n\r\n", BAD_REQUEST),
        (b"POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: 99999999999999999999999\r\n\r\n", BAD_REQUEST),
        (b"GET /_ping\r\n\r\n", BAD_REQUEST),  # HTTP/0.9
        (b"GET /a\x00b HTTP/1.1\r\nHost: docker\r\n\r\n", BAD_REQUEST),
        (b"GET _ping HTTP/1.1\r\nHost: docker\r\n\r\n", BAD_REQUEST),  # not a path
        (b"GET /containers/%zz/json HTTP/1.1\r\nHost: docker\r\n\r\n", BAD_REQUEST),  # bad escape
        (b"GET /_ping HTTP/1.1\r\n\r\n", _go_refusal("400 Bad Request: missing required Host header")),
        (b"GET /_ping HTTP/2.0\r\nHost: docker\r\n\r\n",
         _go_refusal("505 HTTP Version Not Supported: unsupported protocol version")),
        (b"POST /echo HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: gzip\r\n\r\n",
         _go_refusal("501 Not Implemented", "Unsupported transfer encoding")),
        (b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Big: " + b"a" * (2 << 20) + b"\r\n\r\n",
         _go_refusal("431 Request Header Fields Too Large")),
        (b"GET /_ping HTTP/1.1\r\nHost: docker\r\n" + b"X-Many: header\r\n" * 80_000 + b"\r\n",
         _go_refusal("431 Request Header Fields Too Large")),
    ],
    ids=["garbage", "space-in-path", "no-colon", "two-lengths", "negative-length", "huge-length", "http09",
         "nul", "no-slash", "bad-escape", "no-host", "http2", "gzip", "2MB-header", "80k-headers"],
)  # fmt: skip
def test_unreadable_request_gets_gos_plain_refusal_then_close(tmp_path: Path, raw: bytes, answer: bytes) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(raw)
        assert await reader.read() == answer  # all of it, then EOF
        assert spy.requests == []
        # a new connection is served as ever
        assert (await roundtrip(connect, request_bytes("GET", "/_ping"))).body == b"OK"

    run(tmp_path, scenario)


def test_request_head_just_under_1mb_is_served(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        raw = request_bytes("GET", "/info", headers={"X-Big": "a" * 1_000_000})
        assert (await roundtrip(connect, raw)).status == 200

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("target", "path"),
    [("http://docker/v1.41/info?all=1", "/info"), ("*", None)],
)
def test_absolute_and_asterisk_targets(tmp_path: Path, target: str, path: str | None) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reply = await roundtrip(connect, request_bytes("GET", target))
        if path is None:
            assert reply.status == 404
        else:
            assert reply.json()["path"] == path
            assert reply.json()["query"] == {"all": ["1"]}

    run(tmp_path, scenario)


def test_a_bad_escape_in_the_query_is_400_as_from_gos_parse_form(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reply = await roundtrip(connect, request_bytes("GET", "/info?all=1&x=%zz1"))
        assert (reply.status, reply.json()) == (400, {"message": 'invalid URL escape "%zz"'})
        reply = await roundtrip(connect, request_bytes("GET", "/info?x=%4"))
        assert (reply.status, reply.json()) == (400, {"message": 'invalid URL escape "%4"'})
        assert spy.requests == []

    run(tmp_path, scenario)


def test_trailing_newline_in_a_path_does_not_match_a_route(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        assert (await roundtrip(connect, request_bytes("GET", "/info%0A"))).status == 404

    run(tmp_path, scenario)


def test_duplicate_equal_content_lengths_are_one(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        raw = b"POST /echo HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"
        assert (await roundtrip(connect, raw)).json() == {"len": 2, "body": "ab"}  # as Go takes it

    run(tmp_path, scenario)


def _chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("route", ["/echo", "/json-body"])
def test_bad_chunk_size_is_400_and_the_connection_ends(tmp_path: Path, route: str) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", route, b"2\r\n{}\r\nzz\r\nxx\r\n", {"Transfer-Encoding": "chunked"}))
        reply = await read_reply(reader)
        assert reply.status == 400
        assert reply.json() == {"message": "malformed chunked encoding"}
        assert reply.headers["connection"] == "close"
        assert await reader.read() == b""

    run(tmp_path, scenario)


def test_bad_chunk_in_a_body_the_route_ignores_ends_the_connection_after_its_answer(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/ignore", b"1\r\na\r\n-5\r\n", {"Transfer-Encoding": "chunked"}))
        reply = await read_reply(reader)
        assert (reply.status, reply.headers["connection"]) == (204, "close")
        assert await reader.read() == b""

    run(tmp_path, scenario)


def test_json_body_beyond_the_limit_is_413_without_reading_it(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        # Only the head is sent: the declared length alone is refused.
        writer.write(request_bytes("POST", "/json-body", headers={"Content-Length": str(50 << 20)}))
        reply = await read_reply(reader)
        assert reply.status == 413
        assert reply.json() == {"message": "request body too large: a JSON body may have at most 10 MB"}
        assert reply.headers["connection"] == "close"
        assert await reader.read() == b""

    run(tmp_path, scenario)


def test_chunked_json_body_beyond_the_limit_is_413(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/json-body", b"", {"Transfer-Encoding": "chunked"}))
        piece = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
        for _ in range(12):
            writer.write(piece)
        reply = await read_reply(reader)
        assert reply.status == 413
        assert reply.headers["connection"] == "close"

    run(tmp_path, scenario)


def test_json_body_at_the_limit_is_read(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        body = b'{"a": "' + b"x" * ((10 << 20) - 10) + b'"}'
        assert len(body) < 10 << 20
        reply = await roundtrip(connect, request_bytes("POST", "/json-body", body))
        assert reply.status == 200
        assert len(reply.json()["got"]["a"]) == (10 << 20) - 10

    run(tmp_path, scenario)


def test_a_big_unread_body_ends_the_connection_after_the_answer(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/ignore", headers={"Content-Length": str(1 << 30)}))
        writer.write(b"x" * (1 << 20))  # of 1 GB announced: the daemon reads no more than 256 KB
        reply = await read_reply(reader)
        assert (reply.status, reply.headers["connection"]) == (204, "close")
        assert await reader.read() == b""

    run(tmp_path, scenario)


def test_client_leaving_mid_body_is_a_debug_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dockyard.api.connection")

    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        for route, body in (("/echo", b"12345"), ("/json-body", b'{"a":'), ("/pieces", b"abcdefg")):
            reader, writer = await connect()
            writer.write(request_bytes("POST", route, headers={"Content-Length": "100"}) + body)
            await writer.drain()
            writer.close()
            assert await reader.read() == b""  # no answer: nobody is there to read it
        assert (await roundtrip(connect, request_bytes("GET", "/_ping"))).body == b"OK"

    run(tmp_path, scenario)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sum("went away" in r.getMessage() for r in caplog.records) == 3


def test_a_big_body_on_an_upgrade_is_refused_before_the_upgrade(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/attach", headers={"Content-Length": str(1 << 30), "Connection": "Upgrade",
                                                               "Upgrade": "tcp"}))  # fmt: skip
        reply = await read_reply(reader)
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert reply.json() == {"message": "request body too large for an upgraded connection"}
        assert not spy.hijack_done.is_set()

    run(tmp_path, scenario)


def test_expect_100_continue(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/echo", headers={"Content-Length": "5", "Expect": "100-continue"}))
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        assert (await read_reply(reader)).json() == {"len": 5, "body": "hello"}

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"Memory": NaN}', "invalid JSON: invalid character 'N' looking for beginning of value"),
        (b'{"Memory": Infinity}', "invalid JSON: invalid character 'I' looking for beginning of value"),
        (b'{"Memory": -Infinity}', "invalid JSON: invalid character 'I' in numeric literal"),
        (b'{"Memory": 1e400}', "invalid JSON: json: cannot unmarshal number 1e400 into Go value of type float64"),
        (b'{"Labels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid JSON: invalid character '[' exceeded max depth"),
        (b"{} {}", "unexpected content after JSON"),
    ],
    ids=["nan", "infinity", "-infinity", "1e400", "100k-deep", "two-documents"],
)  # fmt: skip
def test_json_go_refuses_is_400(tmp_path: Path, body: bytes, message: str) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/json-body", body))
        reply = await read_reply(reader)
        assert (reply.status, reply.json()) == (400, {"message": message})
        writer.write(request_bytes("GET", "/_ping"))  # and the connection goes on
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


def test_deeply_nested_filters_are_400(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        deep = "%7B%22a%22%3A" + "%5B" * 5000 + "%5D" * 5000 + "%7D"
        reply = await roundtrip(connect, request_bytes("GET", f"/info?filters={deep}"))
        assert (reply.status, reply.json()) == (400, {"message": "invalid filter"})
        reply = await roundtrip(connect, request_bytes("GET", "/info?other=" + "%5B" * 200))
        assert (reply.status, reply.json()) == (400, {"message": "invalid value for other: nested too deep"})
        assert spy.requests == []
        shallow = "%7B%22a%22%3A" + "%5B" * 20 + "%5D" * 20 + "%7D"
        assert (await roundtrip(connect, request_bytes("GET", f"/info?filters={shallow}"))).status == 200

    run(tmp_path, scenario)


def test_a_client_flooding_a_stream_is_cut_off(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("GET", "/endless"))
        await reader.readuntil(b"first\n\r\n")
        writer.write(b"x" * (3 << 20))  # never a request: the daemon would hold it all
        await spy.stream_closed.wait()
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""

    run(tmp_path, scenario)


def _request(**query: str) -> Request:
    return Request("GET", "/x", "1.50", {k: (v,) for k, v in query.items()}, {}, {}, body=_NoBody())


class _NoBody:
    async def read(self, n: int = -1) -> bytes:
        return b""


@pytest.mark.parametrize("value", ["1e3", " 5", "5 ", "1_000", "\u0665", "9223372036854775808", "0x10", "1.5"])
def test_int_arg_takes_what_strconv_atoi_takes(value: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid value for t"):
        _request(t=value).int_arg("t")


@pytest.mark.parametrize(("value", "number"), [("10", 10), ("-1", -1), ("+7", 7), ("-9223372036854775808", -(2**63))])
def test_int_arg_numbers(value: str, number: int) -> None:
    assert _request(t=value).int_arg("t") == number


# ---- framing the parser leaves to the connection -----------------------------------------


def test_http_1_0_gets_a_stream_unchunked_then_the_close(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(b"GET /stream HTTP/1.0\r\n\r\n")
        raw = await reader.read()  # all of it, to the close
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding" not in head and b"Connection: close" in head
        assert body == b"one\ntwo\nthree\n"

    run(tmp_path, scenario)


def test_http_1_0_gets_its_answer_then_the_close(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(b"GET /_ping HTTP/1.0\r\n\r\n")
        reply = await read_reply(reader)
        assert (reply.body, reply.headers["connection"]) == (b"OK", "close")
        assert await reader.read() == b""

    run(tmp_path, scenario)


def test_a_request_pipelined_behind_a_chunked_body_is_served(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(request_bytes("POST", "/echo", _chunked(b"ab", b"c"), {"Transfer-Encoding": "chunked"})
                     + request_bytes("GET", "/_ping"))  # fmt: skip
        assert (await read_reply(reader)).json() == {"len": 3, "body": "abc"}
        assert (await read_reply(reader)).body == b"OK"

    run(tmp_path, scenario)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_hijack_after_a_body_keeps_the_bytes_behind_it(tmp_path: Path, framing: str) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        upgrade = {"Connection": "Upgrade", "Upgrade": "tcp"}
        if framing == "chunked":
            raw = request_bytes("POST", "/attach", _chunked(b"{}"), {**upgrade, "Transfer-Encoding": "chunked"})
        else:
            raw = request_bytes("POST", "/attach", b"{}", upgrade)
        writer.write(raw + b"early")  # as docker exec start: a JSON body, then the stream at once
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        writer.write_eof()
        assert await reader.read() == b"EARLYbye"

    run(tmp_path, scenario)


def test_a_method_llhttp_does_not_know_is_routed_as_go_routes_it(tmp_path: Path) -> None:
    async def scenario(connect: Callable[[], Awaitable[Client]], spy: Spy) -> None:
        reader, writer = await connect()
        writer.write(b"get /info HTTP/1.1\r\nHost: docker\r\n\r\n" + b"GET /_ping HTTP/1.1\nHost: docker\n\n")
        reply = await read_reply(reader)
        assert (reply.status, reply.json()) == (404, {"message": "page not found"})
        assert (await read_reply(reader)).body == b"OK"  # and a head of bare-LF lines is read

    run(tmp_path, scenario)
