"""Bytes between the API's bodies and blocking producers and consumers (tar writers,
extractions): an upload spooled to a file, a thread's output streamed back."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import threading
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from dockyard.errors import StorageFull


class Body(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


async def spool(body: Body, tmp_dir: Path, prefix: str = "upload") -> Path:
    """Receive an upload into a temporary file (what follows is blocking). The caller
    removes it; a failure here removes it already."""
    path = tmp_dir / f"{prefix}-{secrets.token_hex(8)}"
    try:
        with path.open("wb") as f:
            while chunk := await body.read(1 << 20):
                f.write(chunk)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise StorageFull("receiving the upload: no space left on device") from exc
        raise
    return path


def stream_from_thread(produce: Callable[[BinaryIO], None], name: str = "producer") -> AsyncGenerator[bytes, None]:
    """Run a blocking writer in a thread; yield what it writes, with back-pressure via a pipe.
    A failure of the writer is raised once what it wrote is out."""

    async def chunks() -> AsyncGenerator[bytes, None]:
        read_fd, write_fd = os.pipe()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with os.fdopen(write_fd, "wb") as out:
                    produce(out)
            except BaseException as exc:  # noqa: BLE001 - re-raised after the stream ends
                errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        try:
            while chunk := await reader.read(1 << 20):
                yield chunk
        finally:
            transport.close()
            await asyncio.to_thread(thread.join)
        if errors:
            raise errors[0]

    return chunks()
