"""Where the API listens: unix sockets and TCP (optionally with mutual TLS).

Connections are tasks of the server's TaskGroup, so shutdown can end them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import stat
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from dockyard.api.bodies import READ_SIZE
from dockyard.api.connection import Connection
from dockyard.api.router import Router
from dockyard.config import TlsOptions
from dockyard.errors import Conflict, InvalidArgument
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

def unix_socket_in_use(path: Path) -> bool:
    """True when something answers on `path` (a live daemon); False for a stale file."""
    try:
        if not stat.S_ISSOCK(path.stat().st_mode):
            return False
    except FileNotFoundError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()

def tls_context(options: TlsOptions) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.cert is None or options.key is None:
        raise InvalidArgument("TLS needs --tlscert and --tlskey")
    ctx.load_cert_chain(options.cert, options.key)
    if options.verify:
        if options.ca_cert is None:
            raise InvalidArgument("--tlsverify needs --tlscacert")
        ctx.load_verify_locations(options.ca_cert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx

class ApiServer(Component):
    """The listeners, and one task per client connection, all ended when it is left."""

    def __init__(self, router: Router, server_header: str, tls: TlsOptions | None) -> None:
        self._router = router
        self._server_header = server_header
        self._tls = tls
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[Path] = []
        self._tasks = Tasks("api")
        self._inbox = memoryview(bytearray(READ_SIZE))  # where every connection's reads land

    def check_free(self, hosts: tuple[str, ...]) -> None:
        """Refuse to take a socket another live daemon answers on (dockerd's docker.sock)."""
        for host in hosts:
            if host.startswith("unix://"):
                path = Path(host[len("unix://"):])
                if unix_socket_in_use(path):
                    raise Conflict(
                        f"another daemon is already listening on {host}; refusing to take its "
                        "socket (stop it, or give dockyard another one with -H)"
                    )

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self._servers:
            server.close()
        try:
            await super().__aexit__(kind, exc, tb)  # cancels the connections
        finally:
            for server in self._servers:
                with contextlib.suppress(Exception):
                    await server.wait_closed()
            for path in self._unix_paths:
                path.unlink(missing_ok=True)

    async def listen(self, hosts: tuple[str, ...]) -> None:
        loop = asyncio.get_running_loop()
        for host in hosts:
            if host.startswith("unix://"):
                path = Path(host[len("unix://"):])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.unlink(missing_ok=True)
                server = await loop.create_unix_server(self._connection, path=str(path))
                os.chmod(path, 0o660)
                self._unix_paths.append(path)
            elif host.startswith("tcp://"):
                parts = urlsplit(host)
                ctx = tls_context(self._tls) if self._tls is not None else None
                if ctx is None and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                    log.warning("API on %s without TLS: anyone who can reach it is root", host)
                server = await loop.create_server(
                    self._connection, host=parts.hostname or "0.0.0.0", port=parts.port or 2375, ssl=ctx
                )
            else:
                raise InvalidArgument(f"unsupported listener {host}")
            self._servers.append(server)
            log.info("API listening on %s", host)

    def _connection(self) -> Connection:
        return Connection(self._router, self._server_header, self._spawn, self._inbox)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[Any] | None:
        if not self._tasks.active:  # shutting down: the connection is closed at once
            work.close()
            return None
        return self._tasks.spawn(work, name)
