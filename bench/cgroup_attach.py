#!/usr/bin/env python3
"""How a pause before a cgroup migration changes its cost (root; stdlib only).

    python3 bench/cgroup_attach.py [--runs 30] [--pauses 0,10,30,100]
                                   [--runc-root DIR --container ID]

For each pause (ms) it moves a `sleep` back and forth between two fresh v1 `pids` cgroups
(a write of its pid to cgroup.procs), sleeping the pause before each move, and prints the
median and max of the write. With --runc-root and --container (a running container of that
runc root, e.g. dockyard's `<exec-root>/runtime/runc`), it also times `runc exec ID true`
with the same pauses: what `docker exec` pays when execs are not back to back.

The two cgroups and their parent are removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def moves(runs: int, pause: float, a: Path, b: Path, pid: int) -> list[float]:
    out = []
    for i in range(runs):
        time.sleep(pause)
        t0 = time.perf_counter()
        ((a if i % 2 else b) / "cgroup.procs").write_text(str(pid))
        out.append(time.perf_counter() - t0)
    return out


def execs(runs: int, pause: float, runc: str, root: str, container: str) -> list[float]:
    out = []
    for _ in range(runs):
        time.sleep(pause)
        t0 = time.perf_counter()
        # Pipes, not inherited stdio: with a timeout and no pipes, subprocess polls for the
        # exit with sleeps of up to 50 ms, which would show up in the figure.
        subprocess.run(
            [runc, "--root", root, "exec", container, "true"],
            check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
        )  # fmt: skip
        out.append(time.perf_counter() - t0)
    return out


def line(what: str, pause_ms: int, xs: list[float]) -> str:
    return (
        f"{what:<28} pause {pause_ms:4d} ms: median {statistics.median(xs) * 1e3:7.3f} ms, "
        f"max {max(xs) * 1e3:7.2f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--pauses", default="0,10,30,100", help="milliseconds, comma-separated")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--runc-root")
    ap.add_argument("--container")
    args = ap.parse_args()
    pauses = [int(p) for p in args.pauses.split(",") if p.strip()]
    base = Path(f"/sys/fs/cgroup/pids/dockyard-bench-attach-{os.getpid()}")
    a, b = base / "a", base / "b"
    sleeper = subprocess.Popen(["sleep", "3600"])
    try:
        for d in (base, a, b):
            d.mkdir()
        for p in pauses:
            print(
                line(
                    "cgroup.procs write (v1 pids)", p, moves(args.runs, p / 1e3, a, b, sleeper.pid)
                )
            )
        if args.runc_root and args.container:
            for p in pauses:
                xs = execs(args.runs, p / 1e3, args.runc, args.runc_root, args.container)
                print(line("runc exec true", p, xs))
    finally:
        sleeper.kill()
        sleeper.wait()
        for d in (a, b, base):
            for _ in range(50):  # the killed sleep leaves its cgroup a moment later
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                print(f"warning: could not remove {d}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
