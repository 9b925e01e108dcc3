"""A tiny HTTP/1.1 client for the Engine API, so a figure can leave out the CLI's start-up.

One request per connection (as the CLI's short commands do), read to the end of the body
(Content-Length, chunked, or an upgraded stream until the daemon closes it). Unix sockets
and tcp:// only; no TLS. Stdlib only.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
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

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        upgrade: bool = False,
        versioned: bool = True,
    ) -> Reply:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {self.prefix if versioned else ''}{path} HTTP/1.1", "Host: docker"]
        head.append("User-Agent: dockyard-bench")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        if upgrade:
            head += ["Connection: Upgrade", "Upgrade: tcp"]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        t0 = time.perf_counter()
        with socket.socket(self.family, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            sock.sendall(raw)
            reader = _Reader(sock)
            status, headers = self._head(reader)
            while 100 <= status < 200 and status != 101:  # 100 Continue: the real head follows
                status, headers = self._head(reader)
            payload = self._body(reader, method, status, headers)
        return Reply(status, headers, payload, time.perf_counter() - t0)

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
