"""An attach session: the client's hijacked connection joined to conmon's attach socket."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

from dockyard.runtime.attach import AttachConnection, Pipe


class ClientStream(Protocol):
    async def read(self, n: int = 65536) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class Framer(Protocol):
    def __call__(self, pipe: Pipe, data: bytes) -> bytes: ...


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
    without, it ends this attach session, as dockerd does.
    """

    async def output() -> None:
        while True:
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
            await asyncio.Event().wait()  # output decides when the session ends

    try:
        out_task = asyncio.ensure_future(output())
        tasks = {out_task}
        if opts.stdin:
            tasks.add(asyncio.ensure_future(input_()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                with contextlib.suppress(ConnectionError):
                    task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                    await task
    finally:
        conn.close()
