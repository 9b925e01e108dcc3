"""The docker CLI as bench.py drives it: one binary, a private DOCKER_CONFIG, one host at a time.

Stdlib only; imported by bench.py and workloads.py (run as `python3 bench/bench.py`, so this
directory is on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

LABEL = "dockyard-bench"


class BenchError(Exception):
    pass


@dataclass
class Host:
    label: str
    url: str
    pidfile: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    server: str = ""
    pid: int | None = None
    mem_before: dict[str, int | None] = field(default_factory=dict)
    mem_after: dict[str, int | None] = field(default_factory=dict)
    # daemon CPU per timed round, per workload: {"run": {"daemon_ms": .., "tree_ms": ..}}
    cpu: dict[str, dict[str, float | None]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    # facts a workload learnt while setting up (log size, list size, ...), for the JSON
    info: dict[str, object] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)


class Docker:
    def __init__(self, binary: str, config_dir: str, session: str, timeout: float) -> None:
        self.binary = binary
        self.config_dir = config_dir
        self.session = session
        self.timeout = timeout

    def env_for(self, url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = url
        env["DOCKER_CONFIG"] = self.config_dir
        env["DOCKER_CLI_HINTS"] = "false"
        return env

    def call(
        self,
        host: Host,
        *args: str,
        check: bool = True,
        stdin: bytes | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        """Run one CLI command against host; returns (seconds, completed process).

        stdout=None captures it; pass subprocess.DEVNULL (or a file) to send it there.
        """
        t0 = time.perf_counter()
        proc = subprocess.run(
            [self.binary, *args],
            check=False,
            env=host.env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            timeout=self.timeout,
        )
        elapsed = time.perf_counter() - t0
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise BenchError(
                f"{host.label}: `docker {' '.join(args)}` exited {proc.returncode}: {err}"
            )
        return elapsed, proc

    def parallel(
        self, host: Host, commands: list[list[str]], width: int
    ) -> tuple[float, list[tuple[float, subprocess.CompletedProcess[bytes]]]]:
        """Run CLI commands, at most `width` at a time (one thread waits on each process);
        returns the wall time until the last exited and each (seconds, process), in order.
        Nothing is checked: the caller looks at every exit status."""
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=width) as pool:
            futures = [pool.submit(self.call, host, *args, check=False) for args in commands]
            results = [f.result() for f in futures]
        return time.perf_counter() - t0, results

    def labels(self) -> list[str]:
        return ["--label", f"{LABEL}=1", "--label", f"{LABEL}.session={self.session}"]

    def run_detached(self, host: Host, image: str, *cmd: str) -> str:
        """`docker run -d` a labelled container; returns its id (tracked for cleanup)."""
        _, proc = self.call(host, "run", "-d", *self.labels(), image, *cmd)
        cid = proc.stdout.decode().strip().splitlines()[-1]
        host.created.add(cid)
        return cid

    def create(self, host: Host, image: str, *cmd: str) -> str:
        _, proc = self.call(host, "create", *self.labels(), image, *cmd)
        cid = proc.stdout.decode().strip().splitlines()[-1]
        host.created.add(cid)
        return cid

    def remove(self, host: Host, ids: list[str]) -> None:
        """`docker rm -f` in batches (one CLI call per 50 ids)."""
        for i in range(0, len(ids), 50):
            batch = ids[i : i + 50]
            self.call(host, "rm", "-f", *batch)
            host.created.difference_update(batch)


def cli_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=False)
        return out.stdout.decode(errors="replace").strip()
    except OSError as exc:
        raise BenchError(f"cannot run the docker CLI {binary!r}: {exc}") from exc
