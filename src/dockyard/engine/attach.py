"""Attach: a client's hijacked connection joined to conmon's attach socket.

`Attachments` is the rendezvous: an attach to a running container connects at once; an
attach to one not started yet (`docker run` attaches before it starts) waits, and is
connected by the start before the process runs, so no output is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict
from dockyard.model.containers import Container
from dockyard.model.detachkeys import DetachKeys
from dockyard.model.events import attributes_of
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
    stdin_once: bool  # client EOF closes the process's stdin (docker run -i, exec -i)
    tty: bool = False
    detach_keys: DetachKeys | None = None  # honoured on a TTY only, as dockerd does


class SessionEnd(enum.Enum):
    OUTPUT_ENDED = "output-ended"  # the process closed its output (it exited)
    DETACHED = "detached"  # the client typed the detach keys: the process goes on
    CLIENT_LEFT = "client-left"  # the client went away or closed a TTY session's stdin


class Attachments:
    def __init__(self, table: ContainerTable, socket_of: Callable[[str], Path], events: EventBus) -> None:
        self._table = table
        self._events = events
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
        if conn is not None and await pump(client, conn, opts, frame) is SessionEnd.DETACHED:
            self._events.publish("container", "detach", c.id, attributes_of(c))

    def release(self, container_id: str) -> None:
        """No start is coming (it failed, or the container is gone): early attaches end."""
        for fut in self._waiting.pop(container_id, []):
            if not fut.done():
                fut.set_result(None)


async def pump(client: ClientStream, conn: AttachConnection, opts: AttachOptions, frame: Framer) -> SessionEnd:
    """Copy both ways until the process's output ends or the client leaves or detaches.

    A client EOF on stdin does not stop output (docker half-closes right away when it
    sends no stdin). With StdinOnce it closes the process's stdin; on a TTY it ends the
    session and leaves stdin open (dockerd never closes a TTY's stdin); otherwise it ends
    the session once output has been quiet for a moment, so the answer to the last input
    is not cut off.
    """
    stdin_done = asyncio.Event()
    ended = SessionEnd.OUTPUT_ENDED

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

    async def input_() -> bool:
        """True when the session must end now (detached, or a TTY's stdin closed)."""
        nonlocal ended
        scan = opts.detach_keys.scan() if opts.tty and opts.detach_keys is not None else None
        while data := await client.read():
            if scan is None:
                await conn.send(data)
                continue
            scanned = scan.feed(data)
            scan = scanned.next
            if scanned.passed:
                await conn.send(scanned.passed)
            if scanned.detached:
                ended = SessionEnd.DETACHED
                return True
        if scan is not None and (held := scan.flush()):
            await conn.send(held)
        if opts.tty:
            ended = SessionEnd.CLIENT_LEFT
            return True
        if opts.stdin_once:
            conn.close_stdin()
        else:
            stdin_done.set()
        return False

    try:
        # Output decides when the session ends; input ends it early when it says so or fails.
        async with asyncio.TaskGroup() as group:
            out_task = group.create_task(output())
            if opts.stdin:
                in_task = group.create_task(input_())
                out_task.add_done_callback(lambda _: in_task.cancel())
                in_task.add_done_callback(
                    lambda t: out_task.cancel() if not t.cancelled() and t.exception() is None and t.result() else None
                )
    except* (ConnectionError, OSError):
        ended = SessionEnd.CLIENT_LEFT  # the client or the monitor went away
    finally:
        conn.close()
    return ended
