"""conmon's attach socket: a SOCK_SEQPACKET unix socket.

Each packet from conmon is one byte naming the pipe (2 stdout, 3 stderr)
followed by the data. Each packet we send is stdin. Shutting down our write
side tells conmon that stdin ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from dockyard.errors import Conflict
from dockyard.model.stdio import Pipe

_PACKET = 65536
_STDIN_PACKET = 4096  # conmon reads stdin packets into a small buffer; larger ones would be cut


class AttachConnection:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, socket_path: Path) -> AttachConnection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        # sun_path holds 108 bytes; reach a long path through a directory fd instead.
        dir_fd = os.open(socket_path.parent, os.O_PATH | os.O_CLOEXEC)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/{socket_path.name}")
        except OSError as exc:
            sock.close()
            raise Conflict(f"cannot attach: the container's monitor is gone ({exc.strerror})") from exc
        finally:
            os.close(dir_fd)
        return cls(sock)

    async def receive(self) -> tuple[Pipe, bytes] | None:
        """The next output packet, or None once conmon closed the socket."""
        try:
            packet = await self._loop.sock_recv(self._sock, _PACKET)
        except OSError:
            return None
        if not packet:
            return None
        try:
            pipe = Pipe(packet[0])
        except ValueError:
            pipe = Pipe.STDOUT
        return pipe, packet[1:]

    async def send(self, data: bytes) -> None:
        for start in range(0, len(data), _STDIN_PACKET):
            await self._loop.sock_sendall(self._sock, data[start : start + _STDIN_PACKET])

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._sock.close()
