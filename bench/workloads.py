"""What bench.py times: one Workload per selectable name (`--only exec,logs`).

Each workload sets up what it needs on every host (labelled containers), then bench.py runs
one warm-up round and N timed rounds per host, alternating between the hosts, then the
workload removes what it made. A round appends wall times (seconds) to host.samples.
Stdlib only.
"""

from __future__ import annotations

import glob
import os
import string
import subprocess
import time
from dataclasses import dataclass, field

from dockercli import BenchError, Docker, Host
from rawhttp import Client, HTTPError

CYCLE_STEPS = ("create", "start", "stop", "rm")


@dataclass
class Workload:
    name: str
    metrics: tuple[str, ...]
    # per host label: what setup made (container ids) for the rounds to use
    state: dict[str, list[str]] = field(default_factory=dict)
    # rounds when --rounds does not name this workload (None: --runs)
    default_runs: int | None = None

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        self.state[host.label] = []

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        raise NotImplementedError

    def teardown(self, docker: Docker, host: Host) -> None:
        ids = self.state.pop(host.label, [])
        if ids:
            docker.remove(host, ids)

    def bytes_per_sample(self, host: Host, metric: str) -> int | None:
        """For throughput figures: the payload one sample of `metric` moved."""
        return None

    def rate_of(self, host: Host, metric: str) -> tuple[float, str] | None:
        """For a rate row beside `metric`: how much one sample did, and the rate's unit."""
        size = self.bytes_per_sample(host, metric)
        return (size / 1e6, "MB/s") if size else None

    def unit(self, metric: str) -> str | None:
        """None: samples are seconds (shown as ms); else the unit they are recorded in."""
        return None

    @staticmethod
    def put(host: Host, record: bool, metric: str, seconds: float) -> None:
        if record:
            host.samples.setdefault(metric, []).append(seconds)


def client(host: Host) -> Client:
    c = Client(host.url)
    c.negotiate()
    return c


def field_of(doc: object, key: str) -> object:
    return doc.get(key) if isinstance(doc, dict) else None


def expect(reply_status: int, wanted: tuple[int, ...], what: str, host: Host, body: bytes) -> None:
    if reply_status not in wanted:
        raise BenchError(f"{host.label}: {what} answered {reply_status}: {body[:300]!r}")


# ---------------------------------------------------------------- the CLI basics


class Version(Workload):
    """`docker version`: the CLI's start-up plus one round trip, a floor under the others."""

    def __init__(self) -> None:
        super().__init__("version", ("version",))

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        t, _ = docker.call(host, "version")
        self.put(host, record, "version", t)


class Run(Workload):
    """`docker run --rm IMAGE true`."""

    def __init__(self) -> None:
        super().__init__("run", ("run",))

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        t, _ = docker.call(host, "run", "--rm", *docker.labels(), image, "true")
        self.put(host, record, "run", t)


class Cycle(Workload):
    """create `sleep 60`, start, stop -t 0, rm: the whole and each step."""

    def __init__(self) -> None:
        super().__init__("cycle", ("cycle",) + tuple(f"cycle.{s}" for s in CYCLE_STEPS))

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        times: dict[str, float] = {}
        times["create"], proc = docker.call(host, "create", *docker.labels(), image, "sleep", "60")
        cid = proc.stdout.decode().strip().splitlines()[-1]
        host.created.add(cid)
        times["start"], _ = docker.call(host, "start", cid)
        times["stop"], _ = docker.call(host, "stop", "-t", "0", cid)
        times["rm"], _ = docker.call(host, "rm", cid)
        host.created.discard(cid)
        self.put(host, record, "cycle", sum(times.values()))
        for s in CYCLE_STEPS:
            self.put(host, record, f"cycle.{s}", times[s])


# ---------------------------------------------------------------- issue 5


class Exec(Workload):
    """`docker exec C true` in a running `sleep`; and the same three calls over the raw API
    (POST /containers/C/exec, POST /exec/E/start upgraded to EOF, GET /exec/E/json)."""

    def __init__(self) -> None:
        steps = ("create", "start", "inspect")
        super().__init__("exec", ("exec", "exec.api") + tuple(f"exec.api.{s}" for s in steps))

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        self.state[host.label] = [docker.run_detached(host, image, "sleep", "3600")]

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        cid = self.state[host.label][0]
        t, _ = docker.call(host, "exec", cid, "true")
        self.put(host, record, "exec", t)
        c = client(host)
        body = {"AttachStdout": True, "AttachStderr": True, "Cmd": ["true"]}
        made = c.request("POST", f"/containers/{cid}/exec", body)
        expect(made.status, (201,), "exec create", host, made.body)
        eid = str(field_of(made.json(), "Id"))
        started = c.request(
            "POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False}, upgrade=True
        )
        expect(started.status, (101, 200), "exec start", host, started.body)
        seen = c.request("GET", f"/exec/{eid}/json")
        expect(seen.status, (200,), "exec inspect", host, seen.body)
        code = field_of(seen.json(), "ExitCode")
        if code != 0:
            raise BenchError(f"{host.label}: exec of true ended with ExitCode {code!r}")
        self.put(host, record, "exec.api", made.seconds + started.seconds + seen.seconds)
        self.put(host, record, "exec.api.create", made.seconds)
        self.put(host, record, "exec.api.start", started.seconds)
        self.put(host, record, "exec.api.inspect", seen.seconds)


class Logs(Workload):
    """`docker logs C > /dev/null` of a stopped container that wrote `total` bytes of
    `line`-byte lines to stdout: `yes <line-1 chars> | head -n <count>` (the same on every
    host). Setup waits until `docker logs` returns every byte (the daemon may still be
    shipping after the exit), so the rounds read a complete, settled log."""

    def __init__(self, total: int, line: int) -> None:
        super().__init__("logs", ("logs",))
        if line < 2 or total < line:
            raise BenchError("--logs-line must be >= 2 and --logs-mb at least one line")
        self.line = line
        self.count = total // line
        self.total = self.count * line

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        text = (string.ascii_letters + string.digits) * (self.line // 62 + 1)
        script = f"yes {text[: self.line - 1]} | head -n {self.count}"
        t0 = time.perf_counter()
        cid = docker.run_detached(host, image, "sh", "-c", script)
        self.state[host.label] = [cid]
        _, proc = docker.call(host, "wait", cid)
        written = time.perf_counter() - t0
        if proc.stdout.decode().strip() != "0":
            raise BenchError(f"{host.label}: the log writer exited {proc.stdout.decode().strip()}")
        deadline = time.monotonic() + 300
        while True:
            _, proc = docker.call(host, "logs", cid)
            got = len(proc.stdout)
            if got == self.total or time.monotonic() > deadline:
                break
            time.sleep(1)
        if got != self.total:
            raise BenchError(f"{host.label}: docker logs gave {got} bytes, not {self.total}")
        settled = time.perf_counter() - t0
        _, proc = docker.call(host, "inspect", "--format", "{{.LogPath}}", cid)
        log_path = proc.stdout.decode().strip()
        files = sorted(glob.glob(glob.escape(log_path) + "*")) if log_path else []
        on_disk = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        host.info["logs"] = {
            "bytes": self.total,
            "lines": self.count,
            "line_bytes": self.line,
            "command": script,
            "write_s": round(written, 3),
            "complete_s": round(settled, 3),
            "log_path": log_path,
            "log_files": len(files),
            "log_bytes_on_disk": on_disk,
        }

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        t, _ = docker.call(host, "logs", self.state[host.label][0], stdout=subprocess.DEVNULL)
        self.put(host, record, "logs", t)

    def bytes_per_sample(self, host: Host, metric: str) -> int | None:
        return self.total if metric == "logs" else None


class Ps100(Workload):
    """100 created containers; GET /containers/json?all=1 over the raw socket (new
    connection each, `per_round` times a round, beside as many GET /_ping as a floor), and
    one `docker ps -a`."""

    def __init__(self, count: int = 100, per_round: int = 10) -> None:
        super().__init__("ps100", ("ps100.api", "ping.api", "ps100.cli"))
        self.count = count
        self.per_round = per_round

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        self.state[host.label] = ids = []
        for _ in range(self.count):
            ids.append(docker.create(host, image, "true"))
        reply = client(host).request("GET", "/containers/json?all=1")
        expect(reply.status, (200,), "GET /containers/json", host, reply.body)
        listed = reply.json()
        n = len(listed) if isinstance(listed, list) else -1
        if n < self.count:
            raise BenchError(f"{host.label}: /containers/json?all=1 lists {n}, not {self.count}")
        host.info["ps100"] = {"listed": n, "response_bytes": len(reply.body)}

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        c = client(host)
        for _ in range(self.per_round):
            try:
                ping = c.request("GET", "/_ping", versioned=False)
                listed = c.request("GET", "/containers/json?all=1")
            except (OSError, HTTPError) as exc:
                raise BenchError(f"{host.label}: raw request failed: {exc}") from exc
            expect(listed.status, (200,), "GET /containers/json", host, listed.body)
            self.put(host, record, "ping.api", ping.seconds)
            self.put(host, record, "ps100.api", listed.seconds)
        t, _ = docker.call(host, "ps", "-a")
        self.put(host, record, "ps100.cli", t)


class Stats10(Workload):
    """`docker stats --no-stream` of 10 running `sleep`s (named on the command line), and
    one GET /containers/C/stats?stream=0 over the raw socket."""

    def __init__(self, count: int = 10) -> None:
        super().__init__("stats10", ("stats10", "stats.api"))
        self.count = count

    def setup(self, docker: Docker, host: Host, image: str) -> None:
        self.state[host.label] = ids = []
        for _ in range(self.count):
            ids.append(docker.run_detached(host, image, "sleep", "3600"))
        _, proc = docker.call(host, "stats", "--no-stream", *ids)
        rows = proc.stdout.decode().strip().splitlines()
        if len(rows) != self.count + 1:
            raise BenchError(f"{host.label}: docker stats printed {len(rows)} lines: {rows[:3]}")

    def round(self, docker: Docker, host: Host, image: str, record: bool) -> None:
        ids = self.state[host.label]
        t, _ = docker.call(host, "stats", "--no-stream", *ids)
        self.put(host, record, "stats10", t)
        reply = client(host).request("GET", f"/containers/{ids[0]}/stats?stream=0")
        expect(reply.status, (200,), "GET /containers/{id}/stats", host, reply.body)
        self.put(host, record, "stats.api", reply.seconds)


def workloads(logs_bytes: int, logs_line: int) -> dict[str, Workload]:
    """Every selectable workload, in the order they run."""
    all_ = [Version(), Run(), Cycle(), Exec(), Logs(logs_bytes, logs_line), Ps100(), Stats10()]
    return {w.name: w for w in all_}
