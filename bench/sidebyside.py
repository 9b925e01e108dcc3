"""What the per-issue benches share: a daemon under test as the docker CLI sees it, and the
loop that runs each workload on each daemon in turn and reports the figures side by side
(stdlib only)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

PREFIX = "dybench-"  # every name a bench makes starts so, and is removed at the end


class Host:
    def __init__(self, label: str, url: str, docker: str) -> None:
        self.label, self.url = label, url
        self.env = {**os.environ, "DOCKER_HOST": url, "DOCKER_CONFIG": tempfile.mkdtemp(prefix="dybench-cfg-")}
        self.env.pop("DOCKER_CONTEXT", None)
        self.docker_bin = docker

    def run(self, *args: str, check: bool = True, timeout: float = 300, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        r = subprocess.run([self.docker_bin, *args], env=self.env, capture_output=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.label}: docker {' '.join(args)}: {r.stderr.decode().strip()}")
        return r

    def docker(self, *args: str, check: bool = True, timeout: float = 300, input: bytes | None = None) -> str:
        return self.run(*args, check=check, timeout=timeout, input=input).stdout.decode().strip()

    def timed(self, *args: str) -> float:
        t0 = time.perf_counter()
        self.docker(*args)
        return (time.perf_counter() - t0) * 1e3

    def close(self) -> None:
        """cleanup(), and the CLI config directory this host was given."""
        self.cleanup()
        shutil.rmtree(self.env["DOCKER_CONFIG"], ignore_errors=True)

    def cleanup(self) -> None:
        """Containers, networks and volumes named PREFIX*."""
        ids = self.docker("ps", "-aq", "--filter", f"name={PREFIX}", check=False).split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        nets = [n for n in self.docker("network", "ls", "--format", "{{.Name}}", check=False).split() if n.startswith(PREFIX)]
        if nets:
            self.docker("network", "rm", *nets, check=False)
        vols = [v for v in self.docker("volume", "ls", "-q", check=False).split() if v.startswith(PREFIX)]
        if vols:
            self.docker("volume", "rm", "-f", *vols, check=False)


Workload = Callable[[Host, argparse.Namespace], Mapping[str, object]]


def shown(value: object) -> object:
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        ordered = sorted(value)
        return (f"median {statistics.median(ordered):8.1f}  p90 {ordered[max(0, int(len(ordered) * 0.9) - 1)]:8.1f}"
                f"  min {ordered[0]:8.1f}")  # fmt: skip
    return value


def main(description: str, workloads: Mapping[str, Workload], add_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    """Parse `[label=]HOST ...`, `--only`, `--docker`, `--json` and the bench's own options; run
    each workload on each host in turn (a host's failure is a row, not the end of the run)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hosts", nargs="+")
    p.add_argument("--only", default=",".join(workloads))
    p.add_argument("--docker", default="docker")
    p.add_argument("--json")
    add_arguments(p)
    args = p.parse_args()
    hosts = []
    for spec in args.hosts:
        label, _, url = spec.rpartition("=")
        hosts.append(Host(label or url, url, args.docker))
    report: dict[str, dict[str, object]] = {}
    try:
        for name in args.only.split(","):
            for h in hosts:
                h.cleanup()
                try:
                    found = workloads[name](h, args)
                except Exception as exc:
                    found = {"error": str(exc)[:300]}
                    h.cleanup()
                for metric, value in found.items():
                    report.setdefault(f"{name}: {metric}", {})[h.label] = value
                    print(f"{h.label:10s} {name}: {metric}: {shown(value)}", flush=True)
    finally:
        for h in hosts:
            h.close()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
