"""What a route receives and what it returns: plain values, no sockets.

A route takes a `Request` and returns one of the response types below; the
connection (api/connection.py) turns those into bytes. Hijacked streams get a
`RawStream`, the narrow byte-pipe interface a session needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockyard.api.decoder import TRAILING_CONTENT, JsonError, decode
from dockyard.errors import InvalidArgument

_TRUE = frozenset({"1", "true", "True", "TRUE", "yes"})
_FALSE = frozenset({"0", "false", "False", "FALSE", "no", ""})
_GO_INT = re.compile(r"[+-]?[0-9]+")  # what strconv.Atoi takes (Python's int() takes more)
_INT64 = (-(2**63), 2**63 - 1)

# dockerd has no limit on a JSON body (its decoder reads it as a stream); we hold a body whole
# to parse it, so it gets one. A create or exec body is a few KB; a process cannot take more
# than ARG_MAX (2 MB) of arguments and environment anyway. Beyond it: 413 (BodyTooLarge).
MAX_JSON_BODY = 10 << 20
_PIECE = 1 << 16


class Body(Protocol):
    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes of the request body (all of it when n < 0); b"" at its end.

        Raises MalformedBody (a bad chunk) or ConnectionError (the client left mid-body)."""
        ...


class BodyTooLarge(InvalidArgument):
    """A request body beyond what the route holds in memory (413); the connection then ends."""


class MalformedBody(InvalidArgument):
    """The body's framing is broken (a bad chunk size): 400, and the connection ends."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the /v1.NN prefix
    api_version: str  # requested, or the server's default when unversioned
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]  # lower-case names
    params: Mapping[str, str]
    body: Body
    upgrade: bool = False  # client asked to hijack (Upgrade: tcp)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> tuple[str, ...]:
        return self.query.get(name, ())

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as Go clients (1/0) and docker-py (True/False) send it."""
        values = self.query.get(name)
        if not values:
            return default
        value = values[-1]
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise InvalidArgument(f"invalid value for {name}: {value!r}")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer as Go's strconv.Atoi reads it: ASCII digits, within int64."""
        value = self.arg(name)
        if value == "":
            return default
        if _GO_INT.fullmatch(value) and len(value) <= 20:
            number = int(value)
            if _INT64[0] <= number <= _INT64[1]:
                return number
        raise InvalidArgument(f"invalid value for {name}: {value[:64]!r}")

    async def json(self, *, allow_empty: bool = True) -> Any:
        """The body as one JSON document, read as Go reads it (api/decoder), at most MAX_JSON_BODY."""
        raw = await self._read_bounded(MAX_JSON_BODY)
        if not raw.strip():
            if allow_empty:
                return None
            raise InvalidArgument("invalid JSON: empty request body")
        try:
            return decode(raw)
        except JsonError as exc:
            message = str(exc)
            raise InvalidArgument(message if message == TRAILING_CONTENT else f"invalid JSON: {message}") from None

    async def read_bounded(self, limit: int) -> bytes:
        """The whole body, refused (BodyTooLarge) as soon as it passes `limit` bytes."""
        return bytes(await self._read_bounded(limit))

    async def _read_bounded(self, limit: int) -> bytearray:
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)  # refused before a byte of it is read
        buffer = bytearray()  # one growing block: freed whole, where 64 KB pieces would scatter
        while piece := await self.body.read(_PIECE):
            buffer += piece
            if len(buffer) > limit:
                raise _too_large(limit)
        return buffer


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body too large: a JSON body may have at most {limit >> 20} MB")


@dataclass(frozen=True)
class JsonResponse:
    body: Any
    status: int = 200


@dataclass(frozen=True)
class EmptyResponse:
    status: int = 204


@dataclass(frozen=True)
class BytesResponse:
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamResponse:
    """A chunked body; each yielded piece is flushed as it comes (progress, logs, events)."""

    chunks: AsyncIterator[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class RawStream(Protocol):
    """Both directions of a hijacked connection."""

    async def read(self, n: int = 65536) -> bytes:
        """Bytes from the client; b"" once it half-closed."""
        ...

    async def write(self, data: bytes) -> None:
        """Send and flush; raises ConnectionError when the client is gone."""
        ...


@dataclass(frozen=True)
class HijackResponse:
    """101 UPGRADED, then `session` owns the raw connection until it returns."""

    content_type: str
    session: Callable[[RawStream], Awaitable[None]]
    # How an error is said once the stream is raw (a systemerr frame, or plain text on a TTY).
    error_frame: Callable[[str], bytes] = lambda message: message.encode() + b"\n"


Response = JsonResponse | EmptyResponse | BytesResponse | StreamResponse | HijackResponse


def json_line(obj: Any) -> bytes:
    """One message of a newline-delimited JSON stream."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
