"""Running the host's `ps` for `docker top`, as dockerd does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence

from dockyard.errors import Internal
from dockyard.model.top import pids_argument

PS_TIMEOUT = 10.0


async def _run(argv: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise Internal(f"ps: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        raise Internal(f"ps: timed out after {timeout:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave it behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out, err


async def run_ps(
    args: Sequence[str], pids: Collection[int], *, ps: str = "ps", timeout: float = PS_TIMEOUT
) -> str:
    """ps's output for `args` (from model.top.ps_arguments), restricted to `pids` with -q.
    Some options (forest listings such as `f`) refuse -q: then, as dockerd, run ps again
    without it and let the parser filter. A failure is a 500 with ps's first stderr line."""
    if pids:
        code, out, _ = await _run([ps, *args, pids_argument(pids)], timeout)
        if code == 0:
            return out.decode(errors="replace")
    code, out, err = await _run([ps, *args], timeout)
    if code != 0:
        first = err.decode(errors="replace").split("\n", 1)[0]
        raise Internal(f"ps: {first}" if first else f"ps: exit status {code}")
    return out.decode(errors="replace")
