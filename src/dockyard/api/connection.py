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
import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

from dockyard.api.decoder import deep_query_value
from dockyard.api.errors import status_for
from dockyard.api.http1 import (
    BAD_REQUEST,
    CONTINUE,
    LAST_CHUNK,
    NEED_DATA,
    BadChunk,
    ProtocolError,
    RequestHead,
    RequestReader,
    Signal,
    TruncatedBody,
    chunk_prefix,
    header_block,
    status_line,
)
from dockyard.api.messages import (
    MAX_JSON_BODY,
    BodyTooLarge,
    BytesResponse,
    EmptyResponse,
    HijackResponse,
    JsonResponse,
    MalformedBody,
    Request,
    Response,
    StreamResponse,
)
from dockyard.api.router import Router
from dockyard.api.versioning import API_VERSION, split_version
from dockyard.errors import DockyardError, InvalidArgument

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_BIG_WRITE = 65536  # a response part this big is written in its pieces, not joined
_DISCARD = 256 << 10  # Go's maxPostHandlerReadBytes: what is read of a body nobody wanted
_LINGER = 0.5  # Go's rstAvoidanceDelay: time for a refused client to read why, before the close
_PIPELINED = 1 << 20  # what a client may send ahead while a stream goes to it
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class ClientGone(ConnectionResetError):
    """The client closed the connection before the end of its request body."""


def split_target(raw: bytes) -> tuple[str, str] | None:
    """A request target -> (path, query), or None where Go's url.ParseRequestURI fails."""
    target = raw.decode("latin-1")  # llhttp let only visible ASCII through
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
    elif "://" in target:  # absolute form: http://host/path?query
        try:
            parts = urlsplit(target)
        except ValueError:
            return None
        path, query = parts.path or "/", parts.query
    else:
        return None
    if _BAD_ESCAPE.search(path):
        return None  # Go: invalid URL escape
    return unquote(path), query


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


class _Body:
    """The request body, pulled from the parser on demand so uploads stream: nothing is
    read from the socket until a route asks (backpressure).

    A body whose framing breaks (a bad chunk size) raises MalformedBody, one whose client
    leaves before its end raises ClientGone; every later read raises the same again."""

    def __init__(self, conn: Connection, head: RequestHead) -> None:
        self._conn = conn
        self._declared = head.length  # None when chunked or absent
        self._received = 0
        self._buffer = bytearray()
        self.finished = not head.has_body
        self.broken: MalformedBody | ClientGone | None = None

    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes, as soon as any are in (a piece as the parser cut it is not
        copied again); with n < 0, all of the body."""
        if self.broken is not None:
            raise self.broken
        if n >= 0 and self._buffer:
            data = bytes(memoryview(self._buffer)[:n])
            del self._buffer[:n]
            return data
        while not self.finished:
            try:
                event = await self._conn.next_event(body=True)
            except (BadChunk, TruncatedBody) as exc:
                self.finished = True
                if isinstance(exc, TruncatedBody):
                    self.broken = ClientGone("the client went away in the middle of the request body")
                else:
                    self.broken = MalformedBody("malformed chunked encoding")
                raise self.broken from None
            if not isinstance(event, bytes):  # END
                self.finished = True
                break
            self._received += len(event)
            if n >= 0:
                if len(event) <= n:
                    return event
                self._buffer += memoryview(event)[n:]
                return event[:n]
            self._buffer += event
            if len(self._buffer) > MAX_JSON_BODY:
                self._buffer.clear()
                raise BodyTooLarge(f"request body too large: more than {MAX_JSON_BODY >> 20} MB")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def discard(self, limit: int = _DISCARD) -> bool:
        """Read what is left of the body and drop it: True once it ended within `limit` bytes
        (False: too much of it, broken, or the client left; the connection must end)."""
        if not self.finished and self._conn.waiting_for_continue:
            return False  # the client waits for our word before it sends: it gets the answer
        if self._declared is not None and self._declared - self._received > limit:
            return False  # what is announced is too much to read for nothing (as Go)
        seen = 0
        while not self.finished:
            if seen > limit:
                return False
            try:
                seen += len(await self.read(_READ_SIZE))
            except (MalformedBody, ClientGone):
                return False
        self._buffer.clear()
        return self.broken is None


class _Hijacked:
    """The raw connection after 101: leftover bytes first, then the socket."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, leftover: bytes
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._leftover = leftover

    async def read(self, n: int = _READ_SIZE) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:n], self._leftover[n:]
            return data
        try:
            return await self._reader.read(n)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionResetError("client went away")
        self._writer.write(data)
        await self._writer.drain()


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        router: Router,
        server_header: str,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._router = router
        self._common = _common_block(server_header)
        self._http = RequestReader()
        self._head: RequestHead | None = None  # the request being served
        self._continued = False  # 100 Continue sent for it

    @property
    def waiting_for_continue(self) -> bool:
        """The client holds its body back until we say 100 Continue (or answer)."""
        head = self._head
        return head is not None and head.expect_continue and not self._continued and self._http.body_received == 0

    async def next_event(self, *, body: bool = False) -> RequestHead | bytes | Signal:
        while True:
            event = self._http.next_event()
            if event is not NEED_DATA:
                return event
            if body and self.waiting_for_continue:
                self._continued = True
                await self._write(CONTINUE)
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                data = b""
            self._http.receive(data)

    async def _write(self, *pieces: bytes) -> None:
        # One write per response part: a head and a small body leave in one segment; big
        # stream pieces (docker logs, save) are not copied once more into a joined buffer.
        if len(pieces) == 1:
            self._writer.write(pieces[0])
        elif sum(map(len, pieces)) < _BIG_WRITE:
            self._writer.write(b"".join(pieces))
        else:
            for piece in pieces:  # (3.11's writelines would join them: a copy)
                self._writer.write(piece)
        await self._writer.drain()

    async def serve(self) -> None:
        try:
            while True:
                try:
                    event = await self.next_event()
                except ProtocolError as exc:
                    log.debug("unreadable request: %s", exc)
                    await self._refuse(exc.answer)
                    break
                if not isinstance(event, RequestHead):
                    break  # the client closed between requests
                self._head, self._continued = event, False
                keep_going = await self._handle(event)
                if not keep_going or not event.keep_alive:
                    break
        except ConnectionError:
            pass
        except Exception:
            # One broken connection must never take the daemon (its TaskGroup) down.
            log.exception("connection failed")
        finally:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _refuse(self, answer: bytes) -> None:
        """Say why in plain text, as Go's net/http does, and end."""
        await self._write(answer)
        await self._linger()

    async def _linger(self) -> None:
        """Go's closeWriteAndWait: end our side, then drop what the client still sends for a
        moment, so that closing with its bytes unread does not reset what it has yet to read."""
        if self._writer.can_write_eof():
            self._writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(_LINGER):
                while await self._reader.read(_READ_SIZE):
                    pass

    async def _handle(self, head: RequestHead) -> bool:
        """Serve one request; False when the connection must end after it."""
        method = head.method
        target = split_target(head.target)
        if target is None:
            await self._refuse(BAD_REQUEST)
            return False
        raw_path, raw_query = target
        headers = head.headers
        body = _Body(self, head)
        started = time.perf_counter()
        try:
            versioned = split_version(raw_path)
            handler, params = self._router.match(
                "GET" if method == "HEAD" and versioned.path != "/_ping" else method,
                versioned.path,
            )
            if raw_query:
                query = _query(raw_query)
            else:
                query = {}
            request = Request(
                method=method,
                path=versioned.path,
                api_version=versioned.version,
                query=query,
                headers=headers,
                params=params,
                body=body,
                upgrade=head.upgrade,
            )
            response: Response = await handler(request)
        except ConnectionError as exc:  # ClientGone, or a client that left while we wrote
            log.debug("%s %s: the client went away (%s)", method, raw_path, exc)
            return False
        except DockyardError as exc:
            response = JsonResponse({"message": exc.message}, status_for(exc))
        except Exception as exc:  # a bug: log it whole, answer 500
            log.exception("%s %s failed", method, raw_path)
            response = JsonResponse({"message": str(exc) or type(exc).__name__}, 500)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %s in %.1f ms", method, raw_path, type(response).__name__,
                      (time.perf_counter() - started) * 1e3)  # fmt: skip

        if isinstance(response, HijackResponse):
            return await self._hijack(response, body)
        head_only = method == "HEAD"
        if isinstance(response, StreamResponse):
            return await self._stream(response, body, head_only)
        # The rest of a body the route left (or refused: 413) is not read to its end.
        complete = await body.discard()
        await self._send_whole(response, head_only, close=not complete)
        if not complete:
            await self._linger()
        return complete

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
        length = b"" if bodiless else b"Content-Length: %d\r\n" % len(payload)
        head = b"".join((status_line(status), self._common, extra, length, self._framing(close), b"\r\n"))
        if payload and not head_only and not bodiless:
            await self._write(head, payload)
        else:
            await self._write(head)

    async def _stream(self, response: StreamResponse, body: _Body, head_only: bool) -> bool:
        """Send a chunked body until it ends (True) or the client goes away (False).

        The body's generator runs in one task, the pump; a watcher notices a client that
        closes its side and cancels the pump. Both are children of one TaskGroup, so
        neither outlives this response, and the generator is closed where it runs.
        """
        # An HTTP/1.0 client cannot read chunks: it gets the bytes as they are, then the close.
        chunked = self._head is None or self._head.version != "1.0"
        extra = _typed_block(response.content_type, tuple(response.headers.items()))
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        await self._write(status_line(response.status), self._common, extra, framing,
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
                                await self._write(chunk_prefix(len(chunk)), chunk, b"\r\n")
                            else:
                                await self._write(chunk)
                        watch_once_body_is_in()
                    body_read = await body.discard()
                    if chunked and not head_only:
                        await self._write(LAST_CHUNK)
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
        ahead = 0
        while True:
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                return
            ahead += len(data)
            if not data or ahead > _PIPELINED:
                return
            self._http.receive(data)

    async def _hijack(self, response: HijackResponse, body: _Body) -> bool:
        if not await body.discard():
            if not isinstance(body.broken, ClientGone):
                refused = body.broken or InvalidArgument("request body too large for an upgraded connection")
                await self._send_whole(JsonResponse({"message": refused.message}, 400), False, close=True)
                await self._linger()
            return False
        kind = _typed_block(response.content_type, ())
        if self._head is not None and "upgrade" in self._head.headers:  # as dockerd: any Upgrade header
            await self._write(status_line(101, "UPGRADED"), kind, b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        else:
            # Old clients without Upgrade get 200 and then the raw stream, as dockerd does.
            await self._write(b"HTTP/1.1 200 OK\r\n", kind, b"\r\n")
        stream = _Hijacked(self._reader, self._writer, self._http.leftover())
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


def _query(raw_query: str) -> dict[str, tuple[str, ...]]:
    bad_escape = _BAD_ESCAPE.search(raw_query)
    if bad_escape is not None:  # Go's r.ParseForm fails, dockerd answers 400
        raise InvalidArgument(f'invalid URL escape "{raw_query[bad_escape.start() : bad_escape.start() + 3]}"')
    query = {k: tuple(v) for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
    deep = deep_query_value(query)
    if deep is not None:  # what the route would parse is too deep for it (filters=...)
        raise InvalidArgument("invalid filter" if deep == "filters" else f"invalid value for {deep}: nested too deep")
    return query
