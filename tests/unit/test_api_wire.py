"""The connection as the event loop drives it: reads, pauses and writes on a recording transport.

No socket: the tests call the protocol's callbacks (get_buffer/buffer_updated, eof_received,
pause_writing...) from plain loop callbacks, as a transport does, and look at what the
connection did to the transport. This is where the fast path (an answer written inside the
read that brought its request) and both directions of back-pressure are visible.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from dockyard.api.connection import Connection
from dockyard.api.messages import BytesResponse, JsonResponse, Request, Response, StreamResponse
from dockyard.api.router import Route, Router


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True
        self.pauses = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True


def _feed(conn: Connection, data: bytes) -> None:
    """As a transport reads: into the protocol's buffer, piece by piece."""
    view = memoryview(data)
    while view:
        buffer = conn.get_buffer(-1)
        n = min(len(buffer), len(view))
        buffer[:n] = view[:n]
        conn.buffer_updated(n)
        view = view[n:]


async def _in_callback(fn: Callable[[], None]) -> None:
    """Run fn from a plain loop callback (no current task), as transports call protocols."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def call() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            done.set_exception(exc)
        else:
            done.set_result(None)

    loop.call_soon(call)
    await done


def _serve(routes: list[Route], scenario: Callable[[Connection, RecordingTransport], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        tasks: list[asyncio.Task[Any]] = []

        def spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[Any]:
            task = asyncio.get_running_loop().create_task(work, name=name)
            tasks.append(task)
            return task

        conn = Connection(Router(routes), "test", spawn)
        transport = RecordingTransport()
        conn.connection_made(transport)
        try:
            await scenario(conn, transport)
        finally:
            conn.connection_lost(None)
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    asyncio.run(main())


PING = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"


async def _ping(request: Request) -> Response:
    return BytesResponse(b"OK")


def test_an_answer_that_needs_no_waiting_is_written_inside_the_read() -> None:
    async def scenario(conn: Connection, transport: RecordingTransport) -> None:
        def read_and_look() -> None:
            _feed(conn, PING * 3)  # three pipelined pings in one read
            assert transport.written.count(b"HTTP/1.1 200 OK\r\n") == 3  # before the read returned
            assert transport.written.endswith(b"\r\n\r\nOK")

        await _in_callback(read_and_look)

    _serve([Route("GET", "/_ping", _ping)], scenario)


def test_a_route_that_waits_is_answered_by_the_task_then_reads_are_served_inline_again() -> None:
    release = asyncio.Event()

    async def slow(request: Request) -> Response:
        await release.wait()
        return JsonResponse({"slow": True})

    async def scenario(conn: Connection, transport: RecordingTransport) -> None:
        await _in_callback(lambda: _feed(conn, b"GET /slow HTTP/1.1\r\nHost: d\r\n\r\n" + PING))
        assert transport.written == b""  # the slow route holds the connection; the ping waits
        release.set()
        for _ in range(100):
            if transport.written.count(b"HTTP/1.1 200 OK\r\n") == 2:
                break
            await asyncio.sleep(0.01)
        first = transport.written.index(b'{"slow":true}')
        assert first < transport.written.index(b"\r\n\r\nOK")  # in order
        written = len(transport.written)

        def inline_again() -> None:
            _feed(conn, PING)
            assert len(transport.written) > written

        await _in_callback(inline_again)

    _serve([Route("GET", "/_ping", _ping), Route("GET", "/slow", slow)], scenario)


def test_reading_pauses_while_a_route_holds_back_a_big_body_and_resumes_when_it_reads() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def upload(request: Request) -> Response:
        started.set()
        await release.wait()  # not reading yet: what the client sends must not pile up
        total = 0
        while piece := await request.body.read(1 << 16):
            total += len(piece)
        return JsonResponse({"total": total})

    size = 4 << 20

    async def scenario(conn: Connection, transport: RecordingTransport) -> None:
        head = b"POST /upload HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % size
        await _in_callback(lambda: _feed(conn, head))
        await started.wait()
        sent = 0
        while transport.reading and sent < size:  # a transport reads only while not paused
            piece = b"x" * 65536
            await _in_callback(functools.partial(_feed, conn, piece))
            sent += len(piece)
        assert not transport.reading and sent < 1 << 20  # paused long before the body is in
        release.set()
        while sent < size:
            while not transport.reading:
                await asyncio.sleep(0)
            piece = b"x" * min(65536, size - sent)
            await _in_callback(functools.partial(_feed, conn, piece))
            sent += len(piece)
        for _ in range(100):
            if b'{"total":%d}' % size in transport.written:
                break
            await asyncio.sleep(0.01)
        assert b'{"total":%d}' % size in transport.written
        assert transport.reading  # idle again: reading on

    _serve([Route("POST", "/upload", upload)], scenario)


def test_a_stream_waits_while_the_transport_is_paused_for_writing() -> None:
    produced: list[int] = []

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                produced.append(i)
                yield b"%d\n" % i

        return StreamResponse(chunks())

    async def scenario(conn: Connection, transport: RecordingTransport) -> None:
        conn.pause_writing()  # the client does not read
        await _in_callback(lambda: _feed(conn, b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert produced == []  # the head is written; nothing more is made until it drains
        conn.resume_writing()
        for _ in range(100):
            if transport.written.endswith(b"0\r\n\r\n"):
                break
            await asyncio.sleep(0.01)
        assert produced == [0, 1, 2, 3, 4] and transport.written.endswith(b"0\r\n\r\n")

    _serve([Route("GET", "/stream", stream)], scenario)


def test_the_clients_end_between_requests_closes_the_connection() -> None:
    async def scenario(conn: Connection, transport: RecordingTransport) -> None:
        await _in_callback(lambda: _feed(conn, PING))
        await _in_callback(lambda: conn.eof_received() and None)
        assert transport.closed

    _serve([Route("GET", "/_ping", _ping)], scenario)
