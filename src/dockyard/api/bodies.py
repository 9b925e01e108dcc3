"""What a route reads from a connection: the request body, or the raw stream after a hijack.

Both pull from the connection on demand (`BodySource`), so nothing is read from the socket
until a route asks: an upload streams with back-pressure instead of piling up.
"""

from __future__ import annotations

from typing import Protocol

from dockyard.api.http1 import BadChunk, RequestHead, Signal, TruncatedBody
from dockyard.api.messages import MAX_JSON_BODY, BodyTooLarge, MalformedBody

READ_SIZE = 65536
_DISCARD = 256 << 10  # Go's maxPostHandlerReadBytes: what is read of a body nobody wanted


class BodySource(Protocol):
    """The connection, as a body and a hijacked stream see it."""

    @property
    def waiting_for_continue(self) -> bool: ...

    async def body_event(self) -> RequestHead | bytes | Signal: ...

    async def raw_bytes(self) -> bytes: ...

    async def write(self, *pieces: bytes) -> None: ...


class ClientGone(ConnectionResetError):
    """The client closed the connection before the end of its request body."""


class RequestBody:
    """The request body, pulled from the parser on demand so uploads stream: nothing is
    read from the socket until a route asks (backpressure).

    A body whose framing breaks (a bad chunk size) raises MalformedBody, one whose client
    leaves before its end raises ClientGone; every later read raises the same again."""

    def __init__(self, conn: BodySource, head: RequestHead | None) -> None:
        self._conn = conn
        self._declared = None if head is None else head.length  # None when chunked or absent
        self._received = 0
        self._buffer = bytearray()
        self.finished = head is None or not head.has_body
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
                event = await self._conn.body_event()
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
                seen += len(await self.read(READ_SIZE))
            except (MalformedBody, ClientGone):
                return False
        self._buffer.clear()
        return self.broken is None


class HijackedStream:
    """The raw connection after 101: the bytes received behind the request first, then
    what comes; b"" once the client closed its side (we may still write)."""

    def __init__(self, conn: BodySource) -> None:
        self._conn = conn
        self._pending = b""

    async def read(self, n: int = READ_SIZE) -> bytes:
        while not self._pending:
            self._pending = await self._conn.raw_bytes()
            if not self._pending:
                return b""
        if len(self._pending) <= n:
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        return data

    async def write(self, data: bytes) -> None:
        await self._conn.write(data)
