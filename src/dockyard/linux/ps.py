"""Running the host's `ps` for `docker top`, as dockerd does."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from dockyard.errors import Internal
from dockyard.linux.command import run_command
from dockyard.model.top import pids_argument

PS_TIMEOUT = 10.0


async def _run(argv: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
    done = await run_command(argv, timeout=timeout, what="ps")
    return done.returncode, done.stdout, done.stderr


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
