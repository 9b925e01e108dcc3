"""A tiny HTTP/1.1 client for the Engine API, so a figure can leave out the CLI's start-up.

One request per connection (as the CLI's short commands do), read to the end of the body
(Content-Length, chunked, or an upgraded stream until the daemon closes it); or, with
`Client.keep_alive()`, many requests one after another on one connection. Unix sockets
and tcp:// only; no TLS. Stdlib only.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit


class HTTPError(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    seconds: float  # from connect to the last byte of the body

    def json(self) -> object:
        return json.loads(self.body)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        chunk = self.sock.recv(262144)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def until(self, sep: bytes) -> bytes:
        start = 0
        while (i := self.buf.find(sep, start)) < 0:
            start = max(0, len(self.buf) - len(sep) + 1)
            if not self._fill():
                raise HTTPError("connection closed in the middle of a response")
        out = bytes(self.buf[:i])
        del self.buf[: i + len(sep)]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise HTTPError("connection closed in the middle of a body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


class Client:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.address: str | tuple[str, int]
        if parts.scheme == "unix":
            self.family, self.address = socket.AF_UNIX, parts.path
        elif parts.scheme == "tcp":
            self.family, self.address = socket.AF_INET, (parts.hostname or "", parts.port or 2375)
        else:
            raise HTTPError(f"the raw client speaks unix:// and tcp:// only, not {url!r}")
        self.timeout = timeout
        self.prefix = ""  # "/v1.50" once negotiate() ran

    def negotiate(self) -> str:
        """Take the daemon's API version from /_ping, as the CLI does; later paths use it."""
        reply = self.request("GET", "/_ping", versioned=False)
        version = reply.headers.get("api-version", "")
        if reply.status != 200 or not version:
            raise HTTPError(f"/_ping answered {reply.status} without an API-Version")
        self.prefix = f"/v{version}"
        return version

    def encode(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        upgrade: bool = False,
        versioned: bool = True,
    ) -> bytes:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {self.prefix if versioned else ''}{path} HTTP/1.1", "Host: docker"]
        head.append("User-Agent: dockyard-bench")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        if upgrade:
            head += ["Connection: Upgrade", "Upgrade: tcp"]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data

    def connect(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
        except BaseException:
            sock.close()
            raise
        return sock

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        upgrade: bool = False,
        versioned: bool = True,
    ) -> Reply:
        raw = self.encode(method, path, body, upgrade=upgrade, versioned=versioned)
        t0 = time.perf_counter()
        with self.connect() as sock:
            sock.sendall(raw)
            status, headers, payload = self._response(_Reader(sock), method)
        return Reply(status, headers, payload, time.perf_counter() - t0)

    def keep_alive(self) -> KeepAlive:
        """One connection for many requests in turn (close it, or use it in a `with`)."""
        return KeepAlive(self, self.connect())

    @classmethod
    def _response(cls, reader: _Reader, method: str) -> tuple[int, dict[str, str], bytes]:
        status, headers = cls._head(reader)
        while 100 <= status < 200 and status != 101:  # 100 Continue: the real head follows
            status, headers = cls._head(reader)
        return status, headers, cls._body(reader, method, status, headers)

    @staticmethod
    def _head(reader: _Reader) -> tuple[int, dict[str, str]]:
        lines = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError) as exc:
            raise HTTPError(f"not an HTTP status line: {lines[0]!r}") from exc
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    @staticmethod
    def _body(reader: _Reader, method: str, status: int, headers: dict[str, str]) -> bytes:
        if method == "HEAD" or status in (204, 304):
            return b""
        if status == 101:  # hijacked: the raw stream runs until the daemon closes it
            return reader.rest()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(reader.until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while reader.until(b"\r\n"):  # trailers, then the empty line
                        pass
                    return b"".join(parts)
                parts.append(reader.exactly(size))
                reader.exactly(2)
        if "content-length" in headers:
            return reader.exactly(int(headers["content-length"]))
        return reader.rest()


class KeepAlive:
    """Requests one after another on one open connection; each Reply's `seconds` runs from
    the send to the last byte of its body (no connect). A request the daemon answers with
    `Connection: close` (or with a body read to EOF) ends the connection."""

    def __init__(self, client: Client, sock: socket.socket) -> None:
        self.client = client
        self.sock: socket.socket | None = sock
        self.reader = _Reader(sock)

    def request(
        self, method: str, path: str, body: object | None = None, *, versioned: bool = True
    ) -> Reply:
        if self.sock is None:
            raise HTTPError("the daemon closed the keep-alive connection")
        raw = self.client.encode(method, path, body, versioned=versioned)
        t0 = time.perf_counter()
        self.sock.sendall(raw)
        status, headers, payload = self.client._response(self.reader, method)
        seconds = time.perf_counter() - t0
        framed = (
            "content-length" in headers
            or "chunked" in headers.get("transfer-encoding", "").lower()
            or method == "HEAD"
            or status in (204, 304)
        )
        if headers.get("connection", "").lower() == "close" or not framed:
            self.close()
        return Reply(status, headers, payload, seconds)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
