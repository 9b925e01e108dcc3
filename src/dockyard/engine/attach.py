"""An attach session: the client's hijacked connection joined to conmon's attach socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dockyard.runtime.attach import AttachConnection, Pipe

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
        out_task = asyncio.ensure_future(output())
        tasks = {out_task}
        if opts.stdin:
            tasks.add(asyncio.ensure_future(input_()))
        try:
            # Output decides when the session ends; input ends it early only when it fails.
            waiting = set(tasks)
            while out_task in waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if any(t.exception() is not None for t in done if t is not out_task):
                    break
            if out_task.done():
                with contextlib.suppress(ConnectionError, OSError):
                    out_task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                    await task
    finally:
        conn.close()
