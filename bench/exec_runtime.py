#!/usr/bin/env python3
"""Time exec at the runtime level, without the daemon: conmon --exec + runc exec, and runc alone.

    sudo .venv/bin/python bench/exec_runtime.py [--runs N]

Starts one runc container (busybox-static rootfs, `sleep`) under conmon as the daemon does,
then times N execs of `true` for each way of running them:

  runc exec            `runc exec <id> true`, stdio on our pipes, until it exits
  runc exec -d         `runc exec --detach <id> true` (what conmon runs), until runc returns
  conmon attached      runtime.execsession.start_exec + output EOF + exit code (docker exec)
  conmon detached      the same with attach=False, until the exit code (docker exec -d + wait)
  conmon start only    start_exec returned (pid known, process running)

Everything it makes (container, conmons, cgroups, temporary directory) is removed at the end,
also after a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from dockyard.linux.process import ProcessHandle
from dockyard.runtime import conmon
from dockyard.runtime.execsession import ExecRequest, start_exec
from dockyard.runtime.execspec import ExecSpec
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar

CGROUP_PARENT = "dockyard-bench-exec"


async def _timed(runs: int, once: Callable[[], Awaitable[float | None]]) -> list[float]:
    """Milliseconds per call: the wall time, or what the call measured itself."""
    await once()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        measured = await once()
        out.append(measured if measured is not None else (time.perf_counter() - t) * 1e3)
    return out


async def bench(runs: int, base: Path) -> None:
    rootfs = base / "rootfs"
    rootfs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(rootfs, filter="tar")
    cid = "bench-" + uuid.uuid4().hex[:8]
    bundle = base / "bundle"
    bundle.mkdir()
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(base / "runc"))
    spec = build_spec(SpecInput(rootfs=str(rootfs), args=("sleep", "100000"), env=(), cwd="/",
                                hostname="bench", cgroups_path=f"/{CGROUP_PARENT}/{cid}"))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = conmon.ConmonRequest(
        container_id=cid, name=cid, runtime_path=runtime.path, runtime_args=runtime.global_args,
        bundle=bundle, log_path=bundle / "ctr.log", exit_dir=base / "exits", persist_dir=bundle / "persist",
        tty=False, stdin=False, stdin_once=True,
    )  # fmt: skip
    created = await conmon.create(req)
    monitor = ProcessHandle(created.monitor_pid)
    try:
        await runtime.start(cid)

        async def runc_exec() -> None:
            proc = await asyncio.create_subprocess_exec(
                runtime.path, *runtime.global_args, "exec", cid, "true",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await proc.communicate()

        async def runc_exec_detached() -> None:
            proc = await asyncio.create_subprocess_exec(
                runtime.path, *runtime.global_args, "exec", "--detach", cid, "true",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await proc.communicate()

        def request(attach: bool) -> ExecRequest:
            exec_id = uuid.uuid4().hex
            return ExecRequest(container_id=cid, exec_id=exec_id, bundle=bundle, directory=bundle / "exec" / exec_id,
                               runtime_path=runtime.path, runtime_args=runtime.global_args,
                               spec=ExecSpec(args=("true",), hostname="bench"), attach=attach)  # fmt: skip

        async def conmon_exec(attach: bool) -> None:
            session = await start_exec(request(attach))
            try:
                if session.attach is not None:
                    while await session.attach.receive() is not None:
                        pass
                assert await session.wait() == 0
            finally:
                session.close()

        async def conmon_started() -> float:
            t = time.perf_counter()
            session = await start_exec(request(False))
            elapsed = (time.perf_counter() - t) * 1e3
            await session.wait()
            session.close()
            return elapsed

        rows = [
            ("runc exec", await _timed(runs, runc_exec)),
            ("runc exec -d", await _timed(runs, runc_exec_detached)),
            ("conmon attached", await _timed(runs, lambda: conmon_exec(True))),
            ("conmon detached", await _timed(runs, lambda: conmon_exec(False))),
            ("conmon start only", await _timed(runs, conmon_started)),
        ]
        print(f"{'exec of `true`':<20} {'median':>8} {'p90':>8} {'min':>8}   ({runs} runs, ms)")
        for name, values in rows:
            values.sort()
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
            print(f"{name:<20} {statistics.median(values):8.1f} {p90:8.1f} {values[0]:8.1f}")
    finally:
        await runtime.kill(cid, 9, all_processes=True)
        await asyncio.wait_for(monitor.wait(), 10)
        monitor.close()
        await runtime.delete(cid, force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dy-bench-exec-"))
    try:
        asyncio.run(bench(args.runs, base))
    finally:
        for parent in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
