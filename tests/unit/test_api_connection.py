"""The HTTP/1.1 connection layer, driven with raw bytes over a local unix socket.

No daemon: a Router with fake routes is served by `Connection` on a socket in
tmp_path, and each test speaks HTTP/1.1 to it by hand (keep-alive, version
prefixes, error bodies, HEAD, chunked streams, request bodies and hijack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.api.connection import Connection
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
from dockyard.errors import Conflict, NotFound, NotModified

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


def run(
    tmp_path: Path, scenario: Callable[[Callable[[], Awaitable[Client]], Spy], Awaitable[None]]
) -> None:
    """Serve the fake API on tmp_path/s and run `scenario(connect, spy)` against it."""

    async def main() -> None:
        spy = Spy()
        router = Router(_routes(spy))
        path = str(tmp_path / "s")
        connections: set[asyncio.Task[None]] = set()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await Connection(reader, writer, router, "test").serve()
            finally:
                connections.discard(task)

        server = await asyncio.start_unix_server(on_client, path=path)
        clients: list[asyncio.StreamWriter] = []

        async def connect() -> Client:
            reader, writer = await asyncio.open_unix_connection(path)
            clients.append(writer)
            return reader, writer

        try:
            async with server:
                await asyncio.wait_for(scenario(connect, spy), TIMEOUT)
                for writer in clients:
                    writer.close()
                # every server-side connection ends once its client is gone
                if connections:
                    await asyncio.wait_for(
                        asyncio.gather(*connections, return_exceptions=True), TIMEOUT
                    )
        finally:  # on failure, asyncio.run cancels what is left of the server side
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
        router = Router(_routes(spy))
        path = str(tmp_path / "s")
        served: list[asyncio.Task[None]] = []

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await Connection(reader, writer, router, "test").serve()

        def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            served.append(asyncio.get_running_loop().create_task(on_client(reader, writer)))

        server = await asyncio.start_unix_server(track, path=path)
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(request_bytes("GET", "/endless"))
            await reader.readuntil(b"first\n\r\n")
            before = asyncio.all_tasks()
            served[0].cancel()
            with pytest.raises(asyncio.CancelledError):
                await served[0]
            assert spy.stream_closed.is_set()
            await asyncio.sleep(0)
            left = {t for t in asyncio.all_tasks() - {asyncio.current_task()} if not t.done()}
            assert left <= before - {served[0]}
            assert not any("anext" in repr(t) for t in left)
            writer.close()

    asyncio.run(main())
    assert "connection failed" not in caplog.text
    assert "already running" not in caplog.text
