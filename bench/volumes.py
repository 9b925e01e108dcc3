#!/usr/bin/env python3
"""Issue 8's volume figures, for one or two daemons side by side (root; stdlib only).

    python3 bench/volumes.py [--runs 20] [--mib 512] [--rounds 7] [--only NAME,...] [--json FILE]
                             [label=]HOST [[label=]HOST2]

Workloads (each host in turn; every name made starts with `dybench-` and is removed at the end,
also after a failure):
- `throughput`: busybox `time dd` writing `--mib` MiB (1 MiB blocks, `conv=fsync`, so the figure is
  the disk's and not the page cache's) into a named volume from inside a container, and the
  same host binary writing the same into a directory beside the daemon's volumes on the host;
  then each reads its file back. `--rounds` (7) runs each, alternating,
  after a sync, median MB/s
  (from `time`'s 10 ms clock: keep `--mib` large).
- `mounts`: what 10 named volumes add to a container start: containers created with none and
  with 10 (`-v dybench-m0:/m0 ...`, volumes made and copied up beforehand), their
  `POST /containers/ID/start` timed over the raw socket, alternating, `--runs` each; the
  difference of the medians.

`busybox` must be an image on every host (bench.py --prepare makes it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rawhttp import Client
from sidebyside import Host, main

PREFIX = "dybench-"  # as sidebyside.PREFIX: cleanup removes these
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
_REAL = re.compile(r"real\s+(\d+)m\s*([\d.]+)s")


def _mbps(time_stderr: str, mib: int) -> float:
    """MB/s (10^6 bytes) from busybox `time`'s real line (Debian's busybox dd prints no rate)."""
    found = _REAL.search(time_stderr)
    if found is None:
        raise RuntimeError(f"no time in the output: {time_stderr.strip()[-200:]}")
    seconds = int(found[1]) * 60 + float(found[2])
    return mib * 1048576 / 1e6 / max(seconds, 0.01)


def throughput(h: Host, args: argparse.Namespace) -> dict[str, object]:
    root = h.docker("info", "--format", "{{.DockerRootDir}}")
    host_dir = Path(root) / f"{PREFIX}hostdir"  # the same filesystem as the volumes
    host_dir.mkdir(exist_ok=True)
    vol = f"{PREFIX}tput"
    h.docker("volume", "create", vol)
    write = ["time", "dd", "if=/dev/zero", "bs=1M", f"count={args.mib}", "conv=fsync"]
    read = ["time", "dd", "bs=1M", "of=/dev/null"]
    out: dict[str, list[float]] = {"volume write MB/s": [], "host write MB/s": [], "volume read MB/s": [], "host read MB/s": []}
    try:
        for _ in range(args.rounds):
            os.sync()  # each write starts with nothing dirty of the last one's
            r = h.run("run", "--rm", "-v", f"{vol}:/v", "busybox", *write, "of=/v/f")
            out["volume write MB/s"].append(_mbps(r.stderr.decode(), args.mib))
            r = h.run("run", "--rm", "-v", f"{vol}:/v", "busybox", *read, "if=/v/f")
            out["volume read MB/s"].append(_mbps(r.stderr.decode(), args.mib))
            os.sync()
            hr = subprocess.run([BUSYBOX, *write, f"of={host_dir}/f"], capture_output=True, text=True, check=True)
            out["host write MB/s"].append(_mbps(hr.stderr, args.mib))
            hr = subprocess.run([BUSYBOX, *read, f"if={host_dir}/f"], capture_output=True, text=True, check=True)
            out["host read MB/s"].append(_mbps(hr.stderr, args.mib))
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
    found: dict[str, object] = dict(out)
    for kind in ("write", "read"):
        found[f"volume/host {kind}"] = round(
            statistics.median(out[f"volume {kind} MB/s"]) / statistics.median(out[f"host {kind} MB/s"]), 3
        )
    return found


def mounts(h: Host, args: argparse.Namespace) -> dict[str, object]:
    raw = Client(h.url)
    raw.negotiate()
    names = [f"{PREFIX}m{i}" for i in range(10)]
    for name in names:
        h.docker("volume", "create", name)
    binds = [a for i, name in enumerate(names) for a in ("-v", f"{name}:/m{i}")]
    h.docker("run", "--rm", *binds, "busybox", "true")  # copy-up (nothing to copy) done once

    def timed_start(extra: list[str]) -> float:
        cid = h.docker("create", *extra, "busybox", "true")
        reply = raw.request("POST", f"/containers/{cid}/start")
        if reply.status != 204:
            raise RuntimeError(f"start answered {reply.status}: {reply.body[:200]!r}")
        h.docker("wait", cid)
        h.docker("rm", cid)
        return reply.seconds * 1e3

    timed_start([])
    none, ten = [], []
    for _ in range(args.runs):
        none.append(timed_start([]))
        time.sleep(0.1)
        ten.append(timed_start(binds))
        time.sleep(0.1)
    return {"start, no volumes": none, "start, 10 volumes": ten,
            "10 volumes added (ms)": round(statistics.median(ten) - statistics.median(none), 2)}  # fmt: skip


WORKLOADS = {"throughput": throughput, "mounts": mounts}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--rounds", type=int, default=7, help="throughput runs of each kind")


if __name__ == "__main__":
    main(__doc__ or "", WORKLOADS, options)
