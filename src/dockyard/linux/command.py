"""Running a host command: an argument list, a deadline, and nothing left behind.

The process is killed and reaped when the deadline passes or the caller is cancelled; its
stderr comes back with the result, for the error that the caller raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.errors import Internal


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_command(
    argv: Sequence[str], *, timeout: float, what: str, input: bytes | None = None
) -> Completed:
    """Run `argv` with `input` on its stdin (/dev/null when None), wait at most `timeout`
    seconds. `what` starts the message of the Internal error raised when it cannot be
    started or takes too long."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise Internal(f"{what}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(input)
    except TimeoutError:
        raise Internal(f"{what}: timed out after {timeout:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave it behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Completed(proc.returncode, out, err)
