"""One client connection: HTTP/1.1 via h11, keep-alive, chunked streams, and hijack.

h11 parses and frames; this module only moves bytes. Two things a Docker daemon
needs that general-purpose servers make awkward are plain here: answering
`101 UPGRADED` and then owning the raw socket, and a client that half-closes
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
import json
import logging
import re
import time
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from dockyard.api.decoder import deep_query_value
from dockyard.api.errors import status_for
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
_MAX_HEAD = 1 << 20  # Go's http.DefaultMaxHeaderBytes: a longer request head gets 431
_DISCARD = 256 << 10  # Go's maxPostHandlerReadBytes: what is read of a body nobody wanted
_LINGER = 0.5  # Go's rstAvoidanceDelay: time for a refused client to read why, before the close
_PIPELINED = 1 << 20  # what a client may send ahead while a stream goes to it
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class ClientGone(ConnectionResetError):
    """The client closed the connection before the end of its request body."""


def refusal(exc: h11.RemoteProtocolError) -> bytes:
    """What Go's net/http writes for a request head it cannot read, before it closes."""
    if exc.error_status_hint == 431:
        return _plain("431 Request Header Fields Too Large")
    if exc.error_status_hint == 501:
        return _plain("501 Not Implemented", "Unsupported transfer encoding")
    if "Host" in str(exc) and "Missing" in str(exc):
        return _plain("400 Bad Request: missing required Host header")
    return _plain("400 Bad Request")


def _plain(status: str, text: str | None = None) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{status if text is None else text}").encode()  # fmt: skip


def split_target(raw: bytes) -> tuple[str, str] | None:
    """A request target -> (path, query), or None where Go's url.ParseRequestURI fails."""
    target = raw.decode("latin-1")  # h11 let only visible ASCII through
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


class _H11Body:
    """The request body, pulled from h11 on demand so uploads stream.

    A body whose framing breaks (a bad chunk size) raises MalformedBody, one whose client
    leaves before its end raises ClientGone; every later read raises the same again."""

    def __init__(self, conn: Connection, declared: int | None) -> None:
        self._conn = conn
        self._declared = declared  # Content-Length; None when chunked or absent
        self._received = 0
        self._buffer = bytearray()
        self.finished = False
        self.broken: MalformedBody | ClientGone | None = None

    async def read(self, n: int = -1) -> bytes:
        if self.broken is not None:
            raise self.broken
        while not self.finished and (n < 0 or len(self._buffer) < n):
            try:
                event = await self._conn.next_event(body=True)
            except h11.RemoteProtocolError:
                self.finished = True
                if self._conn.saw_eof:
                    self.broken = ClientGone("the client went away in the middle of the request body")
                else:
                    self.broken = MalformedBody("malformed chunked encoding")
                raise self.broken from None
            if isinstance(event, h11.Data):
                self._buffer += event.data
                self._received += len(event.data)
                if n < 0 and len(self._buffer) > MAX_JSON_BODY:
                    self._buffer.clear()
                    raise BodyTooLarge(f"request body too large: more than {MAX_JSON_BODY >> 20} MB")
            else:  # EndOfMessage (ConnectionClosed and PAUSED cannot come before it)
                self.finished = True
        if n < 0 or n >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(memoryview(self._buffer)[:n])
            del self._buffer[:n]
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
        self._server = server_header
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self.saw_eof = False

    @property
    def waiting_for_continue(self) -> bool:
        return bool(self._h11.they_are_waiting_for_100_continue)

    async def next_event(self, *, body: bool = False) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            if body and self._h11.they_are_waiting_for_100_continue:
                await self._send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                data = b""
            if not data:
                self.saw_eof = True
            self._h11.receive_data(data)

    async def _send(self, *events: h11.Event) -> None:
        # One write per response part: headers and a small body leave in one segment. h11
        # hands a body chunk back as is (no copy into its framing): big streams (docker
        # logs, save) are not copied once more on their way out.
        pieces: list[bytes] = []
        for event in events:
            pieces.extend(self._h11.send_with_data_passthrough(event) or ())
        if sum(map(len, pieces)) < _BIG_WRITE:
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
                except h11.RemoteProtocolError as exc:
                    log.debug("unreadable request: %s", exc)
                    await self._refuse(refusal(exc))
                    break
                if not isinstance(event, h11.Request):
                    break
                if not event.http_version.startswith(b"1."):
                    await self._refuse(_plain("505 HTTP Version Not Supported: unsupported protocol version"))
                    break
                keep_going = await self._handle(event)
                if not keep_going or self._h11.our_state is h11.MUST_CLOSE:
                    break
                try:
                    self._h11.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, h11.RemoteProtocolError):
            pass
        except Exception:
            # One broken connection must never take the daemon (its TaskGroup) down.
            log.exception("connection failed")
        finally:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _refuse(self, answer: bytes) -> None:
        """Say why in plain text, outside h11 (which may not know the client's version), and end."""
        self._writer.write(answer)
        await self._writer.drain()
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

    async def _handle(self, event: h11.Request) -> bool:
        """Serve one request; False when the connection must end after it."""
        method = event.method.decode()
        target = split_target(event.target)
        if target is None:
            await self._refuse(_plain("400 Bad Request"))
            return False
        raw_path, raw_query = target
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        upgrade = "upgrade" in headers and "upgrade" in headers.get("connection", "").lower()
        length = headers.get("content-length", "")  # h11 checked it, unless chunked wins
        body = _H11Body(self, int(length) if length.isdigit() and "transfer-encoding" not in headers else None)
        started = time.perf_counter()
        try:
            versioned = split_version(raw_path)
            handler, params = self._router.match(
                "GET" if method == "HEAD" and versioned.path != "/_ping" else method,
                versioned.path,
            )
            bad_escape = _BAD_ESCAPE.search(raw_query)
            if bad_escape is not None:  # Go's r.ParseForm fails, dockerd answers 400
                raise InvalidArgument(f'invalid URL escape "{raw_query[bad_escape.start() : bad_escape.start() + 3]}"')
            query = {k: tuple(v) for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
            deep = deep_query_value(query)
            if deep is not None:  # what the route would parse is too deep for it (filters=...)
                raise InvalidArgument("invalid filter" if deep == "filters" else f"invalid value for {deep}: nested too deep")
            request = Request(
                method=method,
                path=versioned.path,
                api_version=versioned.version,
                query=query,
                headers=headers,
                params=params,
                body=body,
                upgrade=upgrade,
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
            if "content-length" not in headers and "transfer-encoding" not in headers:
                await body.discard()  # no body: finish it now so a disconnect can be noticed
            return await self._stream(response, body, head_only)
        # The rest of a body the route left (or refused: 413) is not read to its end.
        complete = await body.discard()
        await self._send_whole(response, head_only, close=not complete)
        if not complete:
            await self._linger()
        return complete

    async def _send_whole(
        self, response: JsonResponse | EmptyResponse | BytesResponse, head_only: bool, *, close: bool = False
    ) -> None:
        headers = common_headers(self._server)
        if close:
            headers.append(("Connection", "close"))
        payload = b""
        if isinstance(response, JsonResponse):
            try:
                payload = json.dumps(response.body, separators=(",", ":")).encode() + b"\n"
            except (TypeError, ValueError) as exc:  # a bug in a route: still an answer, not a cut
                log.exception("a response could not be encoded")
                response = JsonResponse({"message": f"response could not be encoded: {exc}"}, 500)
                payload = json.dumps(response.body, separators=(",", ":")).encode() + b"\n"
            headers.append(("Content-Type", "application/json"))
        elif isinstance(response, BytesResponse):
            payload = response.body
            headers.append(("Content-Type", response.content_type))
            headers.extend(response.headers.items())
        if response.status not in (204, 304):
            headers.append(("Content-Length", str(len(payload))))
        events: list[h11.Event] = [h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))]
        if payload and not head_only and response.status not in (204, 304):
            events.append(h11.Data(data=payload))
        events.append(h11.EndOfMessage())
        await self._send(*events)

    async def _stream(self, response: StreamResponse, body: _H11Body, head_only: bool) -> bool:
        """Send a chunked body until it ends (True) or the client goes away (False).

        The body's generator runs in one task, the pump; a watcher notices a client that
        closes its side and cancels the pump. Both are children of one TaskGroup, so
        neither outlives this response, and the generator is closed where it runs.
        """
        headers = common_headers(self._server)
        headers.append(("Content-Type", response.content_type))
        headers.extend(response.headers.items())
        await self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
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
                            await self._send(h11.Data(data=chunk))
                        watch_once_body_is_in()
                    body_read = await body.discard()
                    await self._send(h11.EndOfMessage())
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
        ahead of its next request that it is no HTTP client: h11 would hold all of it)."""
        ahead = 0
        while True:
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                return
            ahead += len(data)
            if not data or ahead > _PIPELINED:
                return
            self._h11.receive_data(data)

    async def _hijack(self, response: HijackResponse, body: _H11Body) -> bool:
        if not await body.discard():
            if not isinstance(body.broken, ClientGone):
                refused = body.broken or InvalidArgument("request body too large for an upgraded connection")
                await self._send_whole(JsonResponse({"message": refused.message}, 400), False, close=True)
                await self._linger()
            return False
        if self._h11.their_state is h11.MIGHT_SWITCH_PROTOCOL:  # type: ignore[attr-defined]
            await self._send(
                h11.InformationalResponse(
                    status_code=101,
                    reason=b"UPGRADED",
                    headers=[
                        ("Content-Type", response.content_type),
                        ("Connection", "Upgrade"),
                        ("Upgrade", "tcp"),
                    ],
                )
            )
            leftover = self._h11.trailing_data[0]
        else:
            # Old clients without Upgrade get 200 and then the raw stream, as dockerd does.
            head = "HTTP/1.1 200 OK\r\nContent-Type: " + response.content_type + "\r\n\r\n"
            self._writer.write(head.encode())
            await self._writer.drain()
            leftover = self._h11.trailing_data[0]
        stream = _Hijacked(self._reader, self._writer, leftover)
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


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
