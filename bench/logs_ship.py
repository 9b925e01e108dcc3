"""Log shipping with a real container (root: conmon + runc), no daemon.

    sudo .venv/bin/python bench/logs_ship.py [--mb 50] [--line 100] [--no-punch] [--paced]

A busybox container writes `--mb` MB of `--line`-byte lines as fast as it can
(`yes | head -c`); conmon spools them (k8s-file, --log-size-max 16 MiB) and one
LogShipper turns them into json-file at LogPath (default rotation: 5 x 20 MiB, so keep
--mb at or below ~80 to read all of it back). It reports:
- how long the container took to write (conmon's pace) and the shipper to finish, as MB/s
  of what the container wrote;
- the most spool space in use (st_blocks of the spool files) while it ran: what is not
  shipped yet, plus what is shipped but not given back: with `--paced` (a writer the
  shipper keeps up with) hole punching keeps it near one read block, `--no-punch` shows
  what conmon's rotation alone bounds;
- reading the whole log back as `docker logs` does (LogShipping.reader, then the 8-byte
  stdcopy header per record), as MB/s of LogPath.
A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from dockyard.linux.process import ProcessHandle  # noqa: E402
from dockyard.model.logs import LogQuery  # noqa: E402
from dockyard.runtime import conmon  # noqa: E402
from dockyard.runtime.logfile import LogFiles  # noqa: E402
from dockyard.runtime.logship import LogShipping  # noqa: E402
from dockyard.runtime.oci import OciRuntime  # noqa: E402
from dockyard.runtime.spec import SpecInput, build_spec  # noqa: E402
from dockyard.runtime.spool import SPOOL_MAX  # noqa: E402

_HEADER = struct.Struct(">BxxxI")


def rootfs(base: Path) -> Path:
    root = base / "rootfs"
    (root / "bin").mkdir(parents=True)
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "yes", "head", "printf"):
        os.symlink("busybox", root / "bin" / applet)
    return root


async def run(args: argparse.Namespace, base: Path) -> None:
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(base / "runc"))
    bundle = base / "run" / "bench"
    bundle.mkdir(parents=True)
    line = "x" * (args.line - 1)
    script = f"yes {line} | head -c {args.mb * 1_000_000}"
    if args.paced:  # about 10 MB/s: a MB, then a tenth of a second
        script = f"i=0; while [ $i -lt {args.mb} ]; do yes {line} | head -c 1000000; sleep 0.1; i=$((i+1)); done"
    spec = build_spec(SpecInput(rootfs=str(rootfs(base)), args=("sh", "-c", script), env=("PATH=/bin",), cwd="/",
                                hostname="bench", cgroups_path="/dockyard-bench/logs"))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = conmon.ConmonRequest(
        container_id="logs-bench", name="logs-bench", runtime_path=runtime.path, runtime_args=runtime.global_args,
        bundle=bundle, log_path=bundle / "ctr.log", exit_dir=base / "exits", persist_dir=bundle / "persist",
        tty=False, stdin=False, stdin_once=False, log_size_max=SPOOL_MAX,
    )  # fmt: skip
    files = LogFiles(base / "data" / "logs-bench-json.log", max_file=5)
    created = await conmon.create(req)
    monitor = ProcessHandle(created.monitor_pid)
    try:
        async with LogShipping() as shipping:
            shipper = await shipping.start(req.container_id, bundle, files, 20 * 1024 * 1024)
            shipper.spool.punching = not args.no_punch
            peak = 0

            async def sample() -> None:
                nonlocal peak
                while True:
                    used, seen = 0, set()
                    for path in bundle.glob("ctr.log*"):
                        try:
                            st = os.stat(path)
                        except FileNotFoundError:
                            continue
                        if st.st_ino not in seen:
                            seen.add(st.st_ino)
                            used += st.st_blocks * 512
                    peak = max(peak, used)
                    await asyncio.sleep(0.005)

            sampler = asyncio.create_task(sample())
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            await runtime.start(req.container_id)
            await monitor.wait()
            t_written = time.perf_counter() - t0
            await shipping.finish(req.container_id)
            t_shipped = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            ship_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
            sampler.cancel()
            t1 = time.perf_counter()
            records, framed = 0, 0
            async for batch in shipping.reader(req.container_id, files, LogQuery(), follow=False):
                pack = _HEADER.pack
                framed += len(b"".join([pack(1, len(r.data)) + r.data for r in batch]))
                records += len(batch)
            t_read = time.perf_counter() - t1
        log_bytes = sum(p.stat().st_size for p in files.path.parent.iterdir())
        mb = args.mb
        print(f"container wrote {mb} MB of {args.line}-byte lines in {t_written:.2f} s ({mb / t_written:.0f} MB/s)")
        print(f"shipped by {t_shipped:.2f} s: {mb / t_shipped:.0f} MB/s; "
              f"{t_shipped - t_written:.2f} s after the container's end; "
              f"{ship_cpu:.2f} CPU s in the shipper's process: {mb / ship_cpu:.0f} MB per CPU second")  # fmt: skip
        print(f"spool space at most {peak / 1e6:.1f} MB (hole punching {'off' if args.no_punch else 'on'})")
        print(f"read back {records} records, {log_bytes / 1e6:.0f} MB of LogPath in {t_read:.2f} s: "
              f"{log_bytes / t_read / 1e6:.0f} MB/s ({framed / t_read / 1e6:.0f} MB/s framed out)")  # fmt: skip
    finally:
        monitor.close()
        await runtime.delete(req.container_id, force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--line", type=int, default=100)
    parser.add_argument("--no-punch", action="store_true")
    parser.add_argument("--paced", action="store_true", help="write about 10 MB/s instead of flat out")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dockyard-logbench-"))
    try:
        asyncio.run(run(args, base))
    finally:
        subprocess.run(["runc", "--root", str(base / "runc"), "delete", "-f", "logs-bench"],
                       capture_output=True, check=False)  # fmt: skip
        for cg in Path("/sys/fs/cgroup").glob("*/dockyard-bench/logs"):
            cg.rmdir()
        for parent in Path("/sys/fs/cgroup").glob("*/dockyard-bench"):
            try:
                parent.rmdir()  # runc made it for the leaf; another run may still use it
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
