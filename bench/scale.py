"""Issue 6's workloads: many containers at once, memory per container, and /_ping on one
keep-alive connection. Registered in bench.py beside workloads.py's.

  burst20         20 `docker run -d IMAGE sleep 600` started at once (20 CLI processes);
                  wall time until all 20 exited (each checked: exit 0, its container running)
  seq50           50 `docker run -d IMAGE sleep 600` one after another: total, and runs/s
  mem             the daemon's RSS idle, then with 20 running `sleep`s: its growth per
                  container, each container's monitor (conmon; containerd-shim-runc-v2) RSS
                  and PSS, and per container the daemon's share plus its monitor's
  ping.keepalive  GET /_ping on one keep-alive connection: 200 warm-up requests, then 3000
                  timed one by one: median and p90 latency, req/s

The containers a round makes are removed after it (not timed). Stdlib only.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from dockercli import BenchError, Docker, Host
from procs import monitors, pss_kib, rss_kib, tree_without
from rawhttp import Client, HTTPError
from workloads import Workload, expect

SLEEP = ("sleep", "600")


Ran = list[tuple[float, subprocess.CompletedProcess[bytes]]]


def started_ids(host: Host, results: Ran, what: str, count: int) -> list[str]:
    """The container ids `docker run -d` printed; every CLI must have exited 0."""
    ids: list[str] = []
    failures: list[str] = []
    for _, proc in results:
        out = proc.stdout.decode().strip().splitlines()
        if proc.returncode == 0 and out:
            ids.append(out[-1])
        else:
            failures.append(proc.stderr.decode(errors="replace").strip()[:200])
    host.created.update(ids)
    if failures:
        raise BenchError(f"{host.label}: {what}: {len(failures)} of {count} failed: {failures[0]}")
    if len(set(ids)) != count:
        raise BenchError(f"{host.label}: {what}: {len(set(ids))} distinct ids, not {count}")
    return ids


def check_running(docker: Docker, host: Host, ids: list[str], what: str) -> None:
    _, proc = docker.call(host, "inspect", "--format", "{{.Id}} {{.State.Running}}", *ids)
    states = dict(line.split() for line in proc.stdout.decode().split("\n") if line.strip())
    down = [i for i in ids if states.get(i) != "true"]
    if down:
        raise BenchError(f"{host.label}: {what}: {len(down)} of {len(ids)} not running")


class Burst(Workload):
    """`count` `docker run -d IMAGE sleep 600` at once; wall time until all exited."""

    def __init__(self, count: int = 20) -> None:
        super().__init__(f"burst{count}", (f"burst{count}", f"burst{count}.cli"), default_runs=5)
        self.count = count

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        cmd = ["run", "-d", *docker.labels(), image, *SLEEP]
        wall, results = docker.parallel(host, [cmd] * self.count, self.count)
        ids = started_ids(host, results, self.name, self.count)
        check_running(docker, host, ids, self.name)
        self.put(host, record, self.name, wall)
        # each CLI's own time: how far the daemon serialises the twenty
        self.put(host, record, f"{self.name}.cli", statistics.median(t for t, _ in results))
        docker.remove(host, ids)


class Sequence(Workload):
    """`count` `docker run -d IMAGE sleep 600` one after another; total, and runs/s."""

    def __init__(self, count: int = 50) -> None:
        super().__init__(f"seq{count}", (f"seq{count}",), default_runs=3)
        self.count = count

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        ids: list[str] = []
        total = 0.0
        for _ in range(self.count):
            t, proc = docker.call(host, "run", "-d", *docker.labels(), image, *SLEEP)
            total += t
            cid = proc.stdout.decode().strip().splitlines()[-1]
            host.created.add(cid)
            ids.append(cid)
        check_running(docker, host, ids, self.name)
        self.put(host, record, self.name, total)
        docker.remove(host, ids)

    def rate_of(self, host: Host, metric: str) -> tuple[float, str] | None:
        return (float(self.count), "runs/s") if metric == self.name else None


MEM_METRICS = (
    "mem.idle",
    "mem.idle.children",
    "mem.loaded",
    "mem.loaded.children",
    "mem.delta",
    "mem.monitor.rss",
    "mem.monitor.pss",
    "mem.per_container.rss",
    "mem.per_container.pss",
)


class Memory(Workload):
    """Per round: the daemon's memory idle; `count` running `sleep`s (started 10 at a time,
    then `settle` seconds); the memory again and each container's monitor; remove them.

    mem.idle / mem.loaded: the daemon's RSS; .children: its descendants' (dockerd's managed
    containerd; monitors still under the daemon and their containers left out).
    mem.delta: (daemon + children, loaded - idle) / count. mem.monitor.*: the median monitor
    (all the pids found for one container summed). mem.per_container.*: delta + monitor."""

    def __init__(self, count: int = 20, settle: float = 2.0) -> None:
        super().__init__("mem", MEM_METRICS, default_runs=3)
        self.count = count
        self.settle = settle

    def unit(self, metric: str) -> str | None:
        return "MiB"

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        super().setup(docker, host, image)
        if host.pid is None:
            raise BenchError(f"{host.label}: mem needs the daemon's pid (--pidfile)")
        _, proc = docker.call(host, "ps", "-aq")
        present = len(proc.stdout.split())
        host.info["mem"] = {"containers_before": present, "count": self.count, "rounds": []}

    def snapshot(self, host: Host, excluded: set[int]) -> tuple[int, int]:
        """(daemon RSS, RSS of its other descendants), KiB."""
        assert host.pid is not None
        tree = tree_without(host.pid, excluded)
        own = rss_kib(host.pid) or 0
        return own, sum(rss_kib(p) or 0 for p in tree if p != host.pid)

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        time.sleep(self.settle)
        idle, idle_children = self.snapshot(host, set())
        cmd = ["run", "-d", *docker.labels(), image, *SLEEP]
        _, results = docker.parallel(host, [cmd] * self.count, 10)
        ids = started_ids(host, results, "mem", self.count)
        try:
            check_running(docker, host, ids, "mem")
            time.sleep(self.settle)
            found = monitors(ids)
            missing = [i for i, pids in found.items() if not pids]
            if missing:
                raise BenchError(
                    f"{host.label}: mem: no monitor found for {len(missing)} containers"
                )
            mon_pids = {p for pids in found.values() for p in pids}
            loaded, loaded_children = self.snapshot(host, mon_pids)
            rss = [sum(rss_kib(p) or 0 for p in pids) for pids in found.values()]
            pss = [sum(pss_kib(p) or 0 for p in pids) for pids in found.values()]
        finally:
            docker.remove(host, ids)
        delta = (loaded + loaded_children - idle - idle_children) / self.count
        mon_rss, mon_pss = statistics.median(rss), statistics.median(pss)
        values = {
            "mem.idle": idle,
            "mem.idle.children": idle_children,
            "mem.loaded": loaded,
            "mem.loaded.children": loaded_children,
            "mem.delta": delta,
            "mem.monitor.rss": mon_rss,
            "mem.monitor.pss": mon_pss,
            "mem.per_container.rss": delta + mon_rss,
            "mem.per_container.pss": delta + mon_pss,
        }
        for metric, kib in values.items():
            self.put(host, record, metric, kib / 1024)
        info = host.info["mem"]
        assert isinstance(info, dict)
        info["rounds"].append(
            {
                "record": record,
                **{k: round(v / 1024, 3) for k, v in values.items()},
                "monitor_pids_per_container": sorted({len(p) for p in found.values()}),
                "monitor_rss_kib": rss,
                "monitor_pss_kib": pss,
            }
        )


class PingKeepAlive(Workload):
    """GET /_ping on one keep-alive connection: `warmup` requests, then `count` timed one
    by one (send to the body's last byte). Per round: median and p90 latency, and the whole
    `count` (shown as req/s)."""

    def __init__(self, count: int = 3000, warmup: int = 200) -> None:
        metrics = ("ping.keepalive", "ping.keepalive.p90", "ping.keepalive.all")
        super().__init__("ping.keepalive", metrics, default_runs=10)
        self.count = count
        self.warmup = warmup

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        times: list[float] = []
        try:
            with Client(host.url).keep_alive() as conn:
                for i in range(self.warmup + self.count):
                    if i == self.warmup:
                        t0 = time.perf_counter()
                    reply = conn.request("GET", "/_ping", versioned=False)
                    expect(reply.status, (200,), "GET /_ping", host, reply.body)
                    if i >= self.warmup:
                        times.append(reply.seconds)
                total = time.perf_counter() - t0
        except (OSError, HTTPError) as exc:
            raise BenchError(f"{host.label}: keep-alive /_ping failed: {exc}") from exc
        times.sort()
        self.put(host, record, "ping.keepalive", statistics.median(times))
        self.put(host, record, "ping.keepalive.p90", times[int(0.9 * len(times)) - 1])
        self.put(host, record, "ping.keepalive.all", total)

    def rate_of(self, host: Host, metric: str) -> tuple[float, str] | None:
        return (float(self.count), "req/s") if metric == "ping.keepalive.all" else None


def scale_workloads() -> dict[str, Workload]:
    """Issue 6's workloads, in the order they run (after workloads.py's)."""
    all_ = [Burst(20), Sequence(50), Memory(), PingKeepAlive()]
    return {w.name: w for w in all_}
