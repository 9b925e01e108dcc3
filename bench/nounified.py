#!/usr/bin/env python3
"""What running crun through dockyard-nounified costs, against the other ways to hide the
cgroup v2 mount from it on a hybrid host (runtime/catalog.py, runtime/nounified.c).

    python3 bench/nounified.py [--runs N] [--helper PATH]

Legs, each N times, alternating (medians, p10, p90 in ms):
  exec          /bin/true, then the same through the helper, through `unshare -m` (util-linux)
                and through a shell script doing what the helper does: the launch overhead alone
  crun run      `crun run` of a bare busybox bundle (create, start, wait, delete), through the
                helper and through the shell script; runc beside it
  in-namespace  the same `crun run` with no launcher at all, from a process already in a mount
                namespace without the unified mount (the script re-runs itself there), beside
                the helper in that namespace: what the helper adds to each runtime call

Needs root, crun, runc and /bin/busybox; it makes its bundles under a temporary directory and
its cgroups under /dockyard-nounified-bench, and removes both. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNIFIED = "/sys/fs/cgroup/unified"
CGROUP_PARENT = "dockyard-nounified-bench"
SHELL_WRAPPER = f"""#!/bin/sh
exec unshare -m --propagation unchanged sh -c \
  'mount --make-private {UNIFIED} 2>/dev/null && umount -l {UNIFIED}; exec "$@"' nounified "$@"
"""


def default_helper() -> str:
    return str(Path(sys.prefix) / "libexec" / "dockyard" / "dockyard-nounified")


def bundle(root: Path) -> Path:
    b = root / "bundle"
    for d in ("bin", "dev", "proc"):
        (b / "rootfs" / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", b / "rootfs" / "bin" / "busybox")
    os.symlink("busybox", b / "rootfs" / "bin" / "true")
    spec = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "/",
                    "env": ["PATH=/bin"]},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
                  "resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 100}}},
    }  # fmt: skip
    (b / "config.json").write_text(json.dumps(spec))
    return b


def timed(argv: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1e3


def crun_run(launcher: list[str], runtime: str, root: Path, b: Path, n: int) -> float:
    spec = json.loads((b / "config.json").read_text())
    cid = f"{Path(runtime).name}-{len(launcher)}-{n}"
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
    (b / "config.json").write_text(json.dumps(spec))
    return timed([*launcher, runtime, "--root", str(root / Path(runtime).name), "run", cid], cwd=b)


def report(samples: dict[str, list[float]]) -> None:
    for name, values in samples.items():
        xs = sorted(values)
        p10, p90 = xs[int(0.1 * len(xs))], xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        print(f"  {name:38} median {statistics.median(xs):6.2f}  p10 {p10:6.2f}  p90 {p90:6.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--helper", default=default_helper())
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    crun, runc = shutil.which("crun"), shutil.which("runc")
    if os.geteuid() != 0 or not crun or not runc or not os.access(args.helper, os.X_OK):
        print("needs root, crun, runc and the helper (dev/setup builds it)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="dy-nounified-bench-"))
    try:
        shell = tmp / "nounified.sh"
        shell.write_text(SHELL_WRAPPER)
        shell.chmod(0o755)
        b = bundle(tmp)
        helper = [args.helper]
        samples: dict[str, list[float]] = {}

        def add(name: str, value: float) -> None:
            samples.setdefault(name, []).append(value)

        if args.inside:
            assert not os.path.ismount(UNIFIED), "not in a namespace without the unified mount"
            for n in range(args.runs):
                add("crun run, no launcher", crun_run([], crun, tmp, b, n))
                add("crun run, helper", crun_run(helper, crun, tmp, b, n))
            print("in a mount namespace without the unified mount:")
            report(samples)
            return 0
        for n in range(args.runs):
            add("exec /bin/true", timed(["/bin/true"]))
            add("exec helper /bin/true", timed([*helper, "/bin/true"]))
            add("exec unshare -m /bin/true", timed(["unshare", "-m", "--propagation", "unchanged", "/bin/true"]))
            add("exec shell wrapper /bin/true", timed([str(shell), "/bin/true"]))
        for n in range(args.runs):
            add("crun run, helper", crun_run(helper, crun, tmp, b, n))
            add("crun run, shell wrapper", crun_run([str(shell)], crun, tmp, b, n))
            add("runc run", crun_run([], runc, tmp, b, n))
        print("on the host:")
        report(samples)
        sys.stdout.flush()
        subprocess.run([*helper, sys.executable, __file__, "--inside", "--runs", str(args.runs),
                        "--helper", args.helper], check=True)  # fmt: skip
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.inside:
            for parent in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
                for child in parent.iterdir():
                    if child.is_dir():
                        child.rmdir()
                parent.rmdir()


if __name__ == "__main__":
    sys.exit(main())
