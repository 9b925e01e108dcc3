"""One client connection: HTTP/1.1 keep-alive, chunked streams, and hijack.

api/http1 parses requests (llhttp underneath) and frames; this module only moves bytes.
Two things a Docker daemon needs that general-purpose servers make awkward are plain here:
answering `101 UPGRADED` and then owning the raw socket, and a client that half-closes
(EOF on its side) while we keep writing output.

Hostile or broken clients get what Go's net/http gives them from dockerd: a request
it cannot parse gets a plain-text `400 Bad Request` (431 for more than 1 MB of head)
and the connection ends; a body is never held whole here (routes pull it in pieces),
and one left unread past 256 KB ends the connection after the response rather than
being read to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from dockyard.api.bodies import READ_SIZE, ClientGone, HijackedStream, RequestBody
from dockyard.api.errors import status_for
from dockyard.api.handoff import Handoff, start
from dockyard.api.http1 import (
    BAD_REQUEST,
    CONTINUE,
    LAST_CHUNK,
    NEED_DATA,
    ProtocolError,
    RequestHead,
    RequestReader,
    Signal,
    chunk_prefix,
    header_block,
    status_line,
)
from dockyard.api.messages import (
    BytesResponse,
    EmptyResponse,
    HijackResponse,
    JsonResponse,
    Request,
    Response,
    StreamResponse,
)
from dockyard.api.router import Router
from dockyard.api.targets import parse_query, split_target
from dockyard.api.versioning import API_VERSION, split_version
from dockyard.errors import DockyardError, InvalidArgument

log = logging.getLogger(__name__)

_BIG_WRITE = 65536  # a response part this big is written in its pieces, not joined
_LINGER = 0.5  # Go's rstAvoidanceDelay: time for a refused client to read why, before the close
_PIPELINED = 1 << 20  # what a client may send ahead while a stream goes to it
_HIGH_WATER = 256 << 10  # received and not yet taken: reading pauses until the route wants more


def common_headers(server: str) -> list[tuple[str, str]]:
    return [
        ("Api-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Server", server),
    ]


@functools.lru_cache(maxsize=8)
def _common_block(server: str) -> bytes:
    return header_block(common_headers(server))


@functools.lru_cache(maxsize=256)
def _typed_block(content_type: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    # Most answers repeat their headers (/_ping's on every call): encoded once.
    return header_block((("Content-Type", content_type), *headers))


@functools.lru_cache(maxsize=1024)
def _whole_head(status: int, common: bytes, extra: bytes, length: int, framing: bytes) -> bytes:
    # The hottest answers (/_ping, /version, an empty 204) have the same head every time.
    length_line = b"" if length < 0 else b"Content-Length: %d\r\n" % length
    return b"".join((status_line(status), common, extra, length_line, framing, b"\r\n"))


Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[Any] | None"]


class Connection(asyncio.BufferedProtocol):
    """One client connection, served from the transport's callbacks and one task.

    Each read (`buffer_updated`) feeds the parser and answers, right there, each complete
    request whose exchange needs no waiting (a handler that returns at once, a socket that
    takes the answer): the hot path has no task switch and no extra turn of the loop. A request that must wait
    (a body to read, an engine call, a stream, a hijack) is handed to the connection's task
    (api/handoff), which serves it and what is pipelined behind it, then goes back to
    waiting; while it works, a read only stores bytes and wakes what waits on them.
    """

    def __init__(self, router: Router, server_header: str, spawn: Spawn, inbox: memoryview | None = None) -> None:
        self._router = router
        self._common = _common_block(server_header)
        self._spawn = spawn
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[Any] | None = None
        self._tls = False
        self._http = RequestReader()
        # Reads land here: asyncio's own reads allocate a fresh 256 KiB each time (malloc'd
        # by mmap, page-faulted in, freed), which costs more than the request it brings.
        # One buffer may serve every connection of a loop: each read is copied out of it
        # before the transport's callback returns.
        self._inbox = memoryview(bytearray(READ_SIZE)) if inbox is None else inbox
        self._head: RequestHead | None = None  # the request being served
        self._no_body = RequestBody(self, None)  # the body of every request without one
        self._debug = log.isEnabledFor(logging.DEBUG)  # no per-request logging work unless on
        self._continued = False  # 100 Continue sent for it
        self._pending: Handoff[bool] | None = None  # what the task is to take over
        self._busy = False  # the task has the connection: reads only store bytes
        self._done = False  # the connection is over (closed or closing)
        self._eof = False  # the client closed its side (or the connection is lost)
        self._lost = False
        self._discarding = False  # lingering: what the client still sends is dropped
        self._reading_paused = False
        self._writing_paused = False
        self._wakeup: asyncio.Future[None] | None = None  # the task, idle
        self._readable: asyncio.Future[None] | None = None  # a reader waiting for bytes
        self._drained: asyncio.Future[None] | None = None  # a writer waiting for the socket
        self._gone: asyncio.Future[None] | None = None  # a stream watching for the client's end

    # ---- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not its subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tls = transport.get_extra_info("sslcontext") is not None
        self._task = self._spawn(self._run(), "connection")
        if self._task is None:  # shutting down
            self._done = True
            transport.close()
        else:  # however it ends (cancelled before it ever ran, too), the connection goes with it
            self._task.add_done_callback(lambda _: self._finish())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._inbox

    def buffer_updated(self, nbytes: int) -> None:
        self._received(bytes(self._inbox[:nbytes]))

    def _received(self, data: bytes) -> None:
        if self._discarding or self._done and not self._busy:
            return
        http = self._http
        http.receive(data)
        if not self._busy:
            self._proceed()
            return
        _wake(self._readable)
        if self._gone is not None:
            if http.buffered > _PIPELINED:  # no HTTP client sends that much ahead
                _wake(self._gone)
        elif http.buffered > _HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            self._transport_or_fail().pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._http.receive(b"")
        if self._busy:
            _wake(self._readable)
            _wake(self._gone)
        elif not self._done:
            self._proceed()  # between requests: the end; inside a head: 400
        # Keep our side open: a half-closed client still reads what we write (docker run -i).
        # asyncio's TLS transport cannot half-close; it would only warn.
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self._eof:
            self._eof = True
            self._http.receive(b"")
        for waiter in (self._readable, self._drained, self._gone):
            _wake(waiter)
        if not self._busy:
            self._finish()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._drained)

    # ---- serving ---------------------------------------------------------------------

    def _proceed(self) -> None:
        work = self._advance()
        if work is not None:
            self._busy, self._pending = True, work
            _wake(self._wakeup)

    def _advance(self) -> Handoff[bool] | None:
        """Serve the requests complete in the buffer, each until it must wait: that one is
        returned, for the task. None: more bytes are needed, or the connection is over."""
        task = self._task
        assert task is not None
        while not self._done:
            exchange: Coroutine[Any, None, bool]
            try:
                event = self._http.next_event()
            except ProtocolError as exc:
                log.debug("unreadable request: %s", exc)
                exchange = self._refuse(exc.answer)
            else:
                if event is NEED_DATA:
                    return None
                if not isinstance(event, RequestHead):  # CLOSED: the client ended between requests
                    self._finish()
                    return None
                self._head, self._continued = event, False
                exchange = self._handle(event)
            try:
                outcome = start(exchange, task, self._loop)
            except ConnectionError:
                outcome = False
            except Exception:
                # One broken connection must never take the daemon (its TaskGroup) down.
                log.exception("connection failed")
                outcome = False
            if isinstance(outcome, Handoff):
                return outcome
            if not outcome:
                self._finish()
        return None

    async def _run(self) -> None:
        """The connection's task: idle until a request must wait, then it serves that one
        and what came behind it, and ends the connection when that is over."""
        try:
            while not self._done:
                work, self._pending = self._pending, None
                if work is None:
                    self._wakeup = self._loop.create_future()
                    try:
                        await self._wakeup
                    except asyncio.CancelledError:
                        if self._pending is None:
                            raise
                        self._pending.cancel()  # it is the request's: given to it, raised there
                    finally:
                        self._wakeup = None
                    continue
                if not await work:
                    break
                self._busy = False
                if self._reading_paused and not self._done:
                    self._reading_paused = False
                    self._transport_or_fail().resume_reading()
                self._proceed()
        except ConnectionError:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            if self._pending is not None:  # cancelled before it took the request over
                with contextlib.suppress(RuntimeError):
                    self._pending.close()
                self._pending = None
            self._busy = False
            self._finish()

    def _finish(self) -> None:
        if self._done and self._wakeup is None:
            return
        self._done = True
        if self._transport is not None:
            self._transport.close()  # what is written still goes out first
        _wake(self._wakeup)

    # ---- bytes in and out ------------------------------------------------------------

    def _transport_or_fail(self) -> asyncio.Transport:
        if self._transport is None:
            raise ConnectionResetError("no transport")
        return self._transport

    @property
    def waiting_for_continue(self) -> bool:
        """The client holds its body back until we say 100 Continue (or answer)."""
        head = self._head
        return head is not None and head.expect_continue and not self._continued and self._http.body_received == 0

    async def _more(self) -> None:
        """Wait until the client sends something, or ends."""
        if self._eof:
            return
        if self._reading_paused:
            self._reading_paused = False
            self._transport_or_fail().resume_reading()
        self._readable = self._loop.create_future()
        try:
            await self._readable
        finally:
            self._readable = None

    async def body_event(self) -> RequestHead | bytes | Signal:
        """The next piece of the current request's body (or END)."""
        while True:
            event = self._http.next_event()
            if event is not NEED_DATA:
                return event
            if self.waiting_for_continue:
                self._continued = True
                await self.write(CONTINUE)
            await self._more()

    async def raw_bytes(self) -> bytes:
        """After a hijack: what the client sent, as soon as there is some; b"" at its end."""
        while True:
            data = self._http.leftover()
            if data or self._eof:
                return data
            await self._more()

    async def write(self, *pieces: bytes) -> None:
        # One write per response part: a head and a small body leave in one segment; big
        # stream pieces (docker logs, save) are not copied once more into a joined buffer.
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            raise ConnectionResetError("client went away")
        if len(pieces) == 1:
            transport.write(pieces[0])
        elif sum(map(len, pieces)) < _BIG_WRITE:
            transport.write(b"".join(pieces))
        else:
            for piece in pieces:
                transport.write(piece)
        while self._writing_paused:  # the client does not read: wait for it (backpressure)
            if self._lost:
                raise ConnectionResetError("client went away")
            self._drained = self._loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        if self._lost:
            raise ConnectionResetError("client went away")

    async def _refuse(self, answer: bytes) -> bool:
        """Say why in plain text, as Go's net/http does, and end."""
        await self.write(answer)
        await self._linger()
        return False

    async def _linger(self) -> None:
        """Go's closeWriteAndWait: end our side, then drop what the client still sends for a
        moment, so that closing with its bytes unread does not reset what it has yet to read."""
        transport = self._transport_or_fail()
        if transport.can_write_eof():
            transport.write_eof()
        self._discarding = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LINGER):
                while not self._eof:
                    await self._more()

    async def _handle(self, head: RequestHead) -> bool:
        """Serve one request; False when the connection must end after it."""
        method = head.method
        target = split_target(head.target)
        if target is None:
            return await self._refuse(BAD_REQUEST)
        raw_path, raw_query = target
        body = RequestBody(self, head) if head.has_body else self._no_body
        started = time.perf_counter() if self._debug else 0.0
        try:
            versioned = split_version(raw_path)
            path = versioned.path
            handler, params = self._router.match("GET" if method == "HEAD" and path != "/_ping" else method, path)
            query = parse_query(raw_query) if raw_query else {}
            request = Request(method, path, versioned.version, query, head.headers, params, body, head.upgrade)
            response: Response = await handler(request)
        except ConnectionError as exc:  # ClientGone, or a client that left while we wrote
            log.debug("%s %s: the client went away (%s)", method, raw_path, exc)
            return False
        except DockyardError as exc:
            response = JsonResponse({"message": exc.message}, status_for(exc))
        except Exception as exc:  # a bug: log it whole, answer 500
            log.exception("%s %s failed", method, raw_path)
            response = JsonResponse({"message": str(exc) or type(exc).__name__}, 500)
        if self._debug:
            log.debug("%s %s -> %s in %.1f ms", method, raw_path, type(response).__name__,
                      (time.perf_counter() - started) * 1e3)  # fmt: skip

        if isinstance(response, HijackResponse):
            return await self._hijack(response, body)
        head_only = method == "HEAD"
        if isinstance(response, StreamResponse):
            return await self._stream(response, body, head_only) and head.keep_alive
        # The rest of a body the route left (or refused: 413) is not read to its end.
        complete = body is self._no_body or await body.discard()
        await self._send_whole(response, head_only, close=not complete)
        if not complete:
            await self._linger()
        return complete and head.keep_alive

    def _framing(self, close: bool) -> bytes:
        """The Connection header: close when we end it, or the client asked (or is HTTP/1.0)."""
        if close or (self._head is not None and not self._head.keep_alive):
            return b"Connection: close\r\n"
        return b""

    async def _send_whole(
        self, response: JsonResponse | EmptyResponse | BytesResponse, head_only: bool, *, close: bool = False
    ) -> None:
        payload = b""
        if isinstance(response, JsonResponse):
            try:
                payload = json.dumps(response.body, separators=(",", ":")).encode() + b"\n"
            except (TypeError, ValueError) as exc:  # a bug in a route: still an answer, not a cut
                log.exception("a response could not be encoded")
                response = JsonResponse({"message": f"response could not be encoded: {exc}"}, 500)
                payload = json.dumps(response.body, separators=(",", ":")).encode() + b"\n"
            extra = b"Content-Type: application/json\r\n"
        elif isinstance(response, BytesResponse):
            payload = response.body
            extra = _typed_block(response.content_type, tuple(response.headers.items()))
        else:
            extra = b""
        status = response.status
        bodiless = status in (204, 304)
        head = _whole_head(status, self._common, extra, -1 if bodiless else len(payload), self._framing(close))
        if payload and not head_only and not bodiless:
            await self.write(head, payload)
        else:
            await self.write(head)

    async def _stream(self, response: StreamResponse, body: RequestBody, head_only: bool) -> bool:
        """Send a chunked body until it ends (True) or the client goes away (False).

        The body's generator runs in one task, the pump; a watcher notices a client that
        closes its side and cancels the pump. Both are children of one TaskGroup, so
        neither outlives this response, and the generator is closed where it runs.
        """
        # An HTTP/1.0 client cannot read chunks: it gets the bytes as they are, then the close.
        chunked = self._head is None or self._head.version != "1.0"
        extra = _typed_block(response.content_type, tuple(response.headers.items()))
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        await self.write(status_line(response.status), self._common, extra, framing,
                          self._framing(not chunked), b"\r\n")  # fmt: skip
        completed = False
        try:
            async with asyncio.TaskGroup() as group:
                watcher: asyncio.Task[None] | None = None

                def watch_once_body_is_in() -> None:
                    # Until the body is in, the route itself reads the socket.
                    nonlocal watcher
                    if watcher is None and body.finished:
                        watcher = group.create_task(self._watch_disconnect())
                        watcher.add_done_callback(lambda _: pump.cancel())

                async def run() -> None:
                    nonlocal completed
                    watch_once_body_is_in()
                    async for chunk in response.chunks:
                        if chunk and not head_only:
                            if chunked:
                                await self.write(chunk_prefix(len(chunk)), chunk, b"\r\n")
                            else:
                                await self.write(chunk)
                        watch_once_body_is_in()
                    body_read = await body.discard()
                    if chunked and not head_only:
                        await self.write(LAST_CHUNK)
                    completed = body_read  # else the connection ends here
                    if watcher is not None:
                        watcher.cancel()

                pump = group.create_task(run())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        finally:
            aclose = getattr(response.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        return completed

    async def _watch_disconnect(self) -> None:
        """Returns when the client closes its side while we stream to it (or sends so much
        ahead of its next request that it is no HTTP client: we would hold all of it)."""
        if self._eof or self._http.buffered > _PIPELINED:
            return
        if self._reading_paused:
            self._reading_paused = False
            self._transport_or_fail().resume_reading()
        self._gone = self._loop.create_future()
        try:
            await self._gone
        finally:
            self._gone = None

    async def _hijack(self, response: HijackResponse, body: RequestBody) -> bool:
        if not await body.discard():
            if not isinstance(body.broken, ClientGone):
                refused = body.broken or InvalidArgument("request body too large for an upgraded connection")
                await self._send_whole(JsonResponse({"message": refused.message}, 400), False, close=True)
                await self._linger()
            return False
        kind = _typed_block(response.content_type, ())
        if self._head is not None and "upgrade" in self._head.headers:  # as dockerd: any Upgrade header
            await self.write(status_line(101, "UPGRADED"), kind, b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        else:
            # Old clients without Upgrade get 200 and then the raw stream, as dockerd does.
            await self.write(b"HTTP/1.1 200 OK\r\n", kind, b"\r\n")
        stream = HijackedStream(self)
        try:
            await response.session(stream)
        except ConnectionError:
            pass
        except DockyardError as exc:
            # The 101 is out: no status can change now. Say it in-band and end the stream.
            log.info("hijacked session ended: %s", exc.message)
            with contextlib.suppress(ConnectionError):
                await stream.write(response.error_frame(exc.message))
        return False


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


