#!/usr/bin/env python3
"""The monitor's own share of a container start, dockyard-monitor against conmon, no daemon.

    .venv/bin/python bench/monitor_start.py [--runs N] [--runtime runc|crun]

Each round, alternating between the monitors: a busybox container (`true`, no network, one
rootfs directory for all) is created under the monitor (runtime/monitor.py create: spawn,
detach, `<runtime> create`, the pid on the sync pipe), started, awaited (the monitor's exit,
its exit file) and deleted. Prints the median, p90 and min of `create` (what the monitor adds
to the runtime's create) and of the whole cycle, per monitor, and the monitor's RSS and PSS
(/proc/PID/smaps_rollup) while one container runs. Run as root, from the repository root.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dockyard.config import MonitorChoice, RuntimeOption, RuntimeOrigin
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import monitor as monitors
from dockyard.runtime.catalog import plan_runtimes, probe_host
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar


def _runtime(name: str, root: Path) -> OciRuntime:
    option = RuntimeOption(name, shutil.which(name) or f"/usr/bin/{name}", origin=RuntimeOrigin.BUILTIN)
    plan = plan_runtimes({name: option}, None, probe_host({name: option}))
    resolved = plan.runtimes[name]
    return OciRuntime(name, resolved.path, str(root / name), resolved.args, resolved.launcher)


def _memory(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])


async def _cycle(base: Path, runtime: OciRuntime, monitor: monitors.Monitor, n: int, args: tuple[str, ...]) -> tuple[float, float, int]:
    cid = f"ms-{monitor.kind.value}-{n}"
    bundle = base / "bundles" / cid
    bundle.mkdir(parents=True)
    spec = build_spec(SpecInput(rootfs=str(base / "rootfs"), args=args, env=("PATH=/bin",), cwd="/",
                                hostname="ms", cgroups_path=f"/dockyard-bench-ms/{cid}"))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = monitors.MonitorRequest(
        container_id=cid, name=cid, runtime_path=runtime.executable, runtime_args=runtime.global_args, bundle=bundle,
        log_path=bundle / "ctr.log", exit_dir=base / "exits", persist_dir=bundle / "persist",
        tty=False, stdin=False, stdin_once=False, monitor=monitor,
    )  # fmt: skip
    t0 = time.perf_counter()
    created = await monitors.create(req)
    t_created = time.perf_counter()
    handle = ProcessHandle(created.monitor_pid)
    await runtime.start(cid)
    await handle.wait()
    handle.close()
    t_end = time.perf_counter()
    code = monitors.read_exit_code(req.exit_dir, cid)
    await runtime.delete(cid, force=True)
    return (t_created - t0) * 1e3, (t_end - t0) * 1e3, code if code is not None else -1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--runtime", default="crun")
    opts = parser.parse_args()
    own = monitors.choose_monitor(MonitorChoice.AUTO)
    chosen = [own, monitors.CONMON_MONITOR] if own.kind is monitors.MonitorKind.DOCKYARD else [own]
    base = Path(tempfile.mkdtemp(prefix="dy-ms-", dir="/tmp"))
    try:
        (base / "rootfs").mkdir()
        with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
            tar.extractall(base / "rootfs", filter="tar")
        runtime = _runtime(opts.runtime, base)
        times: dict[str, tuple[list[float], list[float]]] = {m.kind.value: ([], []) for m in chosen}
        for n in range(opts.runs + 1):  # the first round warms up
            for monitor in chosen:
                create_ms, cycle_ms, code = await _cycle(base, runtime, monitor, n, ("true",))
                assert code == 0, code
                if n:
                    times[monitor.kind.value][0].append(create_ms)
                    times[monitor.kind.value][1].append(cycle_ms)
        print(f"{opts.runtime}, {opts.runs} rounds; ms: median / p90 / min")
        for name, (creates, cycles) in times.items():
            row = []
            for values in (creates, cycles):
                values.sort()
                row.append(f"{statistics.median(values):6.2f} / {values[int(len(values) * 0.9)]:6.2f} / {values[0]:6.2f}")
            print(f"  {name:17s} create {row[0]}   create+start+exit {row[1]}")
        for monitor in chosen:
            req_n = opts.runs + 1
            cid = f"ms-{monitor.kind.value}-{req_n}"
            bundle = base / "bundles" / cid
            bundle.mkdir(parents=True)
            spec = build_spec(SpecInput(rootfs=str(base / "rootfs"), args=("sleep", "60"), env=("PATH=/bin",), cwd="/",
                                        hostname="ms", cgroups_path=f"/dockyard-bench-ms/{cid}"))  # fmt: skip
            (bundle / "config.json").write_text(json.dumps(spec))
            req = monitors.MonitorRequest(
                container_id=cid, name=cid, runtime_path=runtime.executable, runtime_args=runtime.global_args,
                bundle=bundle, log_path=bundle / "ctr.log", exit_dir=base / "exits", persist_dir=bundle / "persist",
                tty=False, stdin=False, stdin_once=False, monitor=monitor,
            )  # fmt: skip
            created = await monitors.create(req)
            await runtime.start(cid)
            await asyncio.sleep(0.5)
            rss, pss = _memory(created.monitor_pid)
            print(f"  {monitor.kind.value:17s} one monitor alone: RSS {rss} KiB, PSS {pss} KiB")
            await runtime.delete(cid, force=True)
            handle = ProcessHandle(created.monitor_pid)
            await handle.wait()
            handle.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for parent in Path("/sys/fs/cgroup").glob("*/dockyard-bench-ms"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


if __name__ == "__main__":
    asyncio.run(main())
