"""A small HTTP/1.1 client over asyncio streams, for registries: one connection per request,
responses parsed by httptools (llhttp), bodies streamed chunk by chunk.

Registries answer a handful of request shapes (GET, POST, PUT, HEAD), so this is all the
distribution client needs, without a heavy HTTP library beside the one parser we already use.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.model.registries import OfflinePolicy

_READ = 1 << 20
_BUFFER = 4 << 20  # what a connection may buffer before reading pauses: blobs stream through
CONNECT_TIMEOUT = 30.0
# A registry silent for this long mid-response is given up on.
IDLE_TIMEOUT = 60.0


# Checked here, where every registry connection is made, so that no caller can miss it.
OFFLINE = OfflinePolicy.from_env(os.environ)


class TransportError(Unavailable):
    """The connection failed: refused, reset, TLS, a malformed answer, a timeout."""


@dataclass(frozen=True)
class Url:
    scheme: str  # "http" or "https"
    host: str  # a name or an address, brackets off
    port: int
    target: str  # path and query

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def parse_url(text: str, base: Url | None = None) -> Url:
    """An absolute URL, or one relative to `base` (a Location header)."""
    parts = urlsplit(text)
    if not parts.scheme and base is not None:
        target = text if text.startswith("/") else "/" + text
        return Url(base.scheme, base.host, base.port, target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"unsupported URL {text!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(parts.scheme, parts.hostname, port, target)


@dataclass
class _Parsed:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    head_done: bool = False
    done: bool = False
    chunks: list[bytes] = field(default_factory=list)
    _name: bytes = b""

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self.done = True


class Response:
    """A response whose body is read on demand; close() it (or read it all) when done."""

    def __init__(self, url: Url, method: str, parsed: _Parsed, parser: httptools.HttpResponseParser,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.url = url
        self.status = parsed.status
        self.headers = tuple(parsed.headers)
        self._parsed = parsed
        self._parser = parser
        self._reader = reader
        self._writer = writer
        # A HEAD answer has a Content-Length but no body.
        self._no_body = method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            if self._no_body:
                return
            while True:
                while self._parsed.chunks:
                    yield self._parsed.chunks.pop(0)
                if self._parsed.done:
                    return
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        data = await self._reader.read(_READ)
                except (OSError, TimeoutError) as exc:
                    raise TransportError(f"reading from {self.url}: {exc or 'timeout'}") from exc
                if not data:
                    try:
                        self._parser.feed_data(b"")  # ends a body read to EOF
                    except httptools.HttpParserError:
                        pass
                    if self._parsed.done:
                        continue
                    raise TransportError(f"reading from {self.url}: unexpected EOF")
                try:
                    self._parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    raise TransportError(f"reading from {self.url}: {exc}") from exc
        finally:
            await self.close()

    async def read(self, limit: int) -> bytes:
        """The whole body; more than `limit` bytes is an error."""
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                await self.close()
                raise InvalidArgument(f"response from {self.url} is larger than {limit} bytes")
        return bytes(out)

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


async def request(
    method: str,
    url: Url,
    headers: Mapping[str, str] | None = None,
    body: bytes | AsyncIterable[bytes] = b"",
    tls: ssl.SSLContext | None = None,
) -> Response:
    """Send one request on a new connection and read the response's head. A body that is
    an async iterable is streamed with chunked transfer encoding (a blob upload whose
    length is known only at its end), a chunk at a time as it comes."""
    refusal = OFFLINE.refusal(url.host)
    if refusal is not None:
        raise TransportError(f'{method.title()} "{url}": {refusal}')
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            if url.scheme == "https":
                reader, writer = await asyncio.open_connection(
                    url.host, url.port, ssl=tls or ssl.create_default_context(), server_hostname=url.host, limit=_BUFFER
                )
            else:
                reader, writer = await asyncio.open_connection(url.host, url.port, limit=_BUFFER)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise TransportError(f'{method.title()} "{url}": {_describe(exc)}') from exc
    lines = [f"{method} {url.target} HTTP/1.1", f"Host: {url.authority}", "Connection: close",
             "User-Agent: dockyard"]  # fmt: skip
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value:
            raise InvalidArgument(f"invalid header value for {name}")
        lines.append(f"{name}: {value}")
    if not isinstance(body, bytes):
        lines.append("Transfer-Encoding: chunked")
    elif body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    parsed = _Parsed()
    parser = httptools.HttpResponseParser(parsed)
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, bytes):
            writer.write(head + body)
        else:
            writer.write(head)
            await _send_chunked(writer, body)
        async with asyncio.timeout(IDLE_TIMEOUT):
            await writer.drain()
            while not parsed.head_done:
                data = await reader.read(_READ)
                if not data:
                    raise TransportError(f'{method.title()} "{url}": EOF before a response')
                parser.feed_data(data)
    except (OSError, TimeoutError, ssl.SSLError, httptools.HttpParserError) as exc:
        writer.close()
        raise TransportError(f'{method.title()} "{url}": {_describe(exc)}') from exc
    except BaseException:
        writer.close()
        raise
    parsed.status = parser.get_status_code()
    return Response(url, method, parsed, parser, reader, writer)


async def _send_chunked(writer: asyncio.StreamWriter, body: AsyncIterable[bytes]) -> None:
    async for chunk in body:
        if chunk:
            # Three writes, not writelines: that would copy the chunk into one joined buffer.
            writer.write(b"%x\r\n" % len(chunk))
            writer.write(chunk)
            writer.write(b"\r\n")
            async with asyncio.timeout(IDLE_TIMEOUT):
                await writer.drain()
    writer.write(b"0\r\n\r\n")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls: failed to verify certificate: x509: " + _X509.get(exc.verify_code, exc.verify_message or str(exc))
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return "http: server gave HTTP response to HTTPS client"  # Go's words for a plain-HTTP server
    if isinstance(exc, ssl.SSLError) and exc.reason in _ALERTS:
        return "remote error: tls: " + _ALERTS[exc.reason]
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    return str(exc) or type(exc).__name__


# OpenSSL's verify codes in Go's crypto/x509 words, which clients and scripts match on.
_X509 = {
    2: "certificate signed by unknown authority",
    18: "certificate signed by unknown authority",
    19: "certificate signed by unknown authority",
    20: "certificate signed by unknown authority",
    21: "certificate signed by unknown authority",
    9: "certificate has expired or is not yet valid",
    10: "certificate has expired or is not yet valid",
    62: "certificate is not valid for the host it was asked for",
    64: "certificate is not valid for the address it was asked for",
}
_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate required",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown certificate authority",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failure",
}
