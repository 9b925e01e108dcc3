"""One client connection: HTTP/1.1 via h11, keep-alive, chunked streams, and hijack.

h11 parses and frames; this module only moves bytes. Two things a Docker daemon
needs that general-purpose servers make awkward are plain here: answering
`101 UPGRADED` and then owning the raw socket, and a client that half-closes
(EOF on its side) while we keep writing output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from dockyard.api.errors import status_for
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
from dockyard.api.versioning import API_VERSION, split_version
from dockyard.errors import DockyardError

log = logging.getLogger(__name__)

_READ_SIZE = 65536
_BIG_WRITE = 65536  # a response part this big is written in its pieces, not joined


def common_headers(server: str) -> list[tuple[str, str]]:
    return [
        ("Api-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Server", server),
    ]


class _H11Body:
    """The request body, pulled from h11 on demand so uploads stream."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._buffer = bytearray()
        self.finished = False

    async def read(self, n: int = -1) -> bytes:
        while not self.finished and (n < 0 or len(self._buffer) < n):
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                self._buffer += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.finished = True
            else:  # ConnectionClosed, PAUSED: the body ends here
                self.finished = True
        take = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        return data

    async def drain(self) -> None:
        while not self.finished:
            await self.read(_READ_SIZE)
            self._buffer.clear()


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
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                data = b""
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
                event = await self.next_event()
                if not isinstance(event, h11.Request):
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

    async def _handle(self, event: h11.Request) -> bool:
        """Serve one request; False when the connection must end after it."""
        method = event.method.decode()
        target = urlsplit(event.target.decode("latin-1"))
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        upgrade = "upgrade" in headers and "upgrade" in headers.get("connection", "").lower()
        body = _H11Body(self)
        started = time.perf_counter()
        try:
            versioned = split_version(unquote(target.path))
            handler, params = self._router.match(
                "GET" if method == "HEAD" and versioned.path != "/_ping" else method,
                versioned.path,
            )
            request = Request(
                method=method,
                path=versioned.path,
                api_version=versioned.version,
                query={k: tuple(v) for k, v in parse_qs(target.query, keep_blank_values=True).items()},
                headers=headers,
                params=params,
                body=body,
                upgrade=upgrade,
            )
            response: Response = await handler(request)
        except DockyardError as exc:
            response = JsonResponse({"message": exc.message}, status_for(exc))
        except Exception as exc:  # a bug: log it whole, answer 500
            log.exception("%s %s failed", method, target.path)
            response = JsonResponse({"message": str(exc) or type(exc).__name__}, 500)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %s in %.1f ms", method, target.path, type(response).__name__,
                      (time.perf_counter() - started) * 1e3)  # fmt: skip

        if isinstance(response, HijackResponse):
            return await self._hijack(response, body)
        head_only = method == "HEAD"
        if isinstance(response, StreamResponse):
            if "content-length" not in headers and "transfer-encoding" not in headers:
                await body.drain()  # no body: finish it now so a disconnect can be noticed
            return await self._stream(response, body, head_only)
        else:
            await body.drain()
            await self._send_whole(response, head_only)
        return True

    async def _send_whole(
        self, response: JsonResponse | EmptyResponse | BytesResponse, head_only: bool
    ) -> None:
        headers = common_headers(self._server)
        payload = b""
        if isinstance(response, JsonResponse):
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
                    await body.drain()
                    await self._send(h11.EndOfMessage())
                    completed = True
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
        """Returns when the client closes its side while we stream to it."""
        while True:
            try:
                data = await self._reader.read(_READ_SIZE)
            except ConnectionError:
                return
            if not data:
                return
            self._h11.receive_data(data)

    async def _hijack(self, response: HijackResponse, body: _H11Body) -> bool:
        await body.drain()
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
