"""Attach: a client's hijacked connection joined to conmon's attach socket.

`Attachments` is the rendezvous: an attach to a running container connects at once; an
attach to one not started yet (`docker run` attaches before it starts) waits, and is
connected by the start before the process runs, so no output is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict
from dockyard.model.containers import Container
from dockyard.model.stdio import Pipe
from dockyard.runtime.attach import AttachConnection

_DRAIN_QUIET = 0.2  # seconds without output that end a session whose stdin closed


class ClientStream(Protocol):
    async def read(self, n: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


Framer = Callable[[Pipe, bytes], bytes]  # how output is put on the wire (raw or 8-byte frames)


@dataclass(frozen=True)
class AttachOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    stdin_once: bool  # client EOF closes the container's stdin (docker run -i)


class Attachments:
    def __init__(self, table: ContainerTable, socket_of: Callable[[str], Path]) -> None:
        self._table = table
        self._socket_of = socket_of
        self._waiting: dict[str, list[asyncio.Future[AttachConnection | None]]] = {}

    async def connect(self, c: Container) -> AttachConnection | None:
        """The container's attach socket: now if it runs, else once it starts.

        None when the container ends or goes away before there is anything to attach to.
        """
        if c.state.running:
            try:
                return await AttachConnection.connect(self._socket_of(c.id))
            except Conflict:
                current = self._table.get(c.id)
                if current is not None and current.state.running and self._table.live(c.id).monitor is not None:
                    raise
                return None  # it exited just now: nothing more to attach to
        fut: asyncio.Future[AttachConnection | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(c.id, []).append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._waiting.get(c.id, []).remove(fut)
            connected = fut.result() if fut.done() and not fut.cancelled() else None
            if connected is not None:
                connected.close()
            raise

    async def connect_waiting(self, container_id: str) -> None:
        """At a start, before the process runs: everyone who attached early is connected."""
        waiting = self._waiting.pop(container_id, [])
        path = self._socket_of(container_id)
        for fut in waiting:
            if not fut.done():
                fut.set_result(await AttachConnection.connect(path))

    async def join(self, c: Container, client: ClientStream, opts: AttachOptions, frame: Framer) -> None:
        """One attach session: the client joined to the container's streams until either ends."""
        conn = await self.connect(c)
        if conn is not None:
            await pump(client, conn, opts, frame)

    def release(self, container_id: str) -> None:
        """No start is coming (it failed, or the container is gone): early attaches end."""
        for fut in self._waiting.pop(container_id, []):
            if not fut.done():
                fut.set_result(None)


async def pump(client: ClientStream, conn: AttachConnection, opts: AttachOptions, frame: Framer) -> None:
    """Copy both ways until the container's output ends or the client leaves.

    A client EOF on stdin does not stop output (docker half-closes right away
    when it sends no stdin). With StdinOnce it closes the container's stdin;
    without, it ends this attach session, as dockerd does, but only once the
    output has been quiet for a moment, so the answer to the last input is not cut off.
    """
    stdin_done = asyncio.Event()

    async def output() -> None:
        while True:
            if stdin_done.is_set():
                try:
                    packet = await asyncio.wait_for(conn.receive(), _DRAIN_QUIET)
                except TimeoutError:
                    return
            else:
                packet = await conn.receive()
            if packet is None:
                return
            pipe, data = packet
            if (pipe is Pipe.STDERR and not opts.stderr) or (pipe is Pipe.STDOUT and not opts.stdout):
                continue
            if data:
                await client.write(frame(pipe, data))

    async def input_() -> None:
        while True:
            data = await client.read()
            if not data:
                break
            await conn.send(data)
        if opts.stdin_once:
            conn.close_stdin()
        else:
            stdin_done.set()

    try:
        # Output decides when the session ends; input ends it early only when it fails.
        async with asyncio.TaskGroup() as group:
            out_task = group.create_task(output())
            if opts.stdin:
                in_task = group.create_task(input_())
                out_task.add_done_callback(lambda _: in_task.cancel())
    except* (ConnectionError, OSError):
        pass  # the client or the monitor went away: the session is over
    finally:
        conn.close()
