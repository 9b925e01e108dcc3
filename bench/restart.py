#!/usr/bin/env python3
"""How fast a daemon is back after `kill -9` with many running containers (root).

    python3 bench/restart.py [--count 50] [--runs 3] [--image busybox] [--json FILE] \\
        --host unix:///tmp/x/d.sock --pidfile /tmp/x/d.pid [--log FILE] -- DAEMON COMMAND ...

It starts the daemon itself from the command after `--` (nothing may answer on --host yet),
and every run then: starts --count labelled `sh -c 'echo ready; exec sleep 600'` containers
(10 CLIs at a time, not timed; the echo gives `docker logs` a line to check; the image is
imported from the host's busybox-static as `bench.py --prepare` does where missing), notes each one's
pid, kills the daemon with SIGKILL (the pid in --pidfile), waits until it is gone, starts the
same command again and times, from that start:

  ping     until GET /_ping answers 200 (polled every 2 ms on new connections)
  listed   until GET /containers/json lists all --count of them running
  exec     until `docker exec C true` succeeded in every one (10 CLIs at a time)
  logs     `docker logs` of one: its own time (its output must be "ready")
  stop     `docker stop -t 0` of one: its own time (then it must be `exited`)

and counts the containers adopted: running with the same pid as before the kill. Then it
removes them (not timed). At the end it removes every container it made and stops the
daemon it started (SIGTERM, waits). Any daemon that keeps containers across a crash fits:
dockyard, or dockerd with --live-restore. Its output goes to --log (default: discarded).
Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote

from dockercli import LABEL, BenchError, Docker, Host, cli_version
from procs import rss_kib
from rawhttp import Client, HTTPError

from bench import busybox_rootfs_tar

SCRIPT = "echo ready; exec sleep 600"


@dataclass(frozen=True)
class Run:
    killed_pid: int
    new_pid: int
    count: int
    adopted: int  # running with the pid they had before the kill
    ping_s: float  # from the restart
    listed_s: float
    exec_s: float
    exec_phase_s: float  # from listed to the last exec
    logs_s: float  # its own time
    stop_s: float
    rss_kib_before_kill: int | None  # the daemon with `count` running, before the kill
    rss_kib_adopted: int | None  # the restarted daemon once all execs were done
    loadavg: str

    def line(self) -> str:
        return (
            f"ping {self.ping_s * 1e3:.0f} ms, listed {self.listed_s * 1e3:.0f} ms, "
            f"{self.count} execs done {self.exec_s * 1e3:.0f} ms, logs {self.logs_s * 1e3:.0f} ms, "
            f"stop {self.stop_s * 1e3:.0f} ms; adopted {self.adopted}/{self.count}; "
            f"RSS {mib(self.rss_kib_before_kill)} MiB before, {mib(self.rss_kib_adopted)} after; "
            f"load {self.loadavg}"
        )


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


class Daemon:
    """The daemon process this script started (so it can reap it), from one command line."""

    def __init__(self, command: list[str], pidfile: str, log: IO[bytes]) -> None:
        self.command = command
        self.pidfile = pidfile
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def pid(self) -> int:
        try:
            return int(Path(self.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise BenchError(f"cannot read the daemon's pid from {self.pidfile}: {exc}") from exc

    def kill(self) -> int:
        """SIGKILL the pid in the pidfile and wait until it is gone; returns that pid."""
        pid = self.pid()
        if self.proc is None or self.proc.pid != pid:
            raise BenchError(f"the pidfile names {pid}, not the daemon this script started")
        os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        return pid

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print("warning: the daemon ignored SIGTERM; killing it", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def answers(url: str) -> bool:
    try:
        return Client(url, timeout=5).request("GET", "/_ping", versioned=False).status == 200
    except (OSError, HTTPError):
        return False


def wait_for_ping(url: str, deadline: float) -> float:
    while True:
        if answers(url):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise BenchError(f"no /_ping answer at {url}")
        time.sleep(0.002)


def wait_for_listed(url: str, session: str, ids: set[str], deadline: float) -> float:
    client = Client(url, timeout=30)
    client.negotiate()
    query = json.dumps({"label": [f"{LABEL}.session={session}"], "status": ["running"]})
    path = "/containers/json?filters=" + quote(query)
    while True:
        reply = client.request("GET", path)
        if reply.status == 200:
            listed = reply.json()
            rows = listed if isinstance(listed, list) else []
            if ids <= {c.get("Id") for c in rows if isinstance(c, dict)}:
                return time.perf_counter()
        if time.monotonic() > deadline:
            raise BenchError(f"GET /containers/json did not list all {len(ids)} running")
        time.sleep(0.005)


def pids_of(docker: Docker, host: Host, ids: list[str]) -> dict[str, tuple[str, str]]:
    """id -> (State.Status, State.Pid)."""
    _, proc = docker.call(
        host, "inspect", "--format", "{{.Id}} {{.State.Status}} {{.State.Pid}}", *ids
    )
    out: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


def one_run(
    docker: Docker,
    host: Host,
    daemon: Daemon,
    image: str,
    count: int,
    deadline_s: float,
    delay: float,
) -> Run:
    cmd = ["run", "-d", *docker.labels(), image, "sh", "-c", SCRIPT]
    _, results = docker.parallel(host, [cmd] * count, 10)
    ids = []
    for _, proc in results:
        if proc.returncode != 0:
            raise BenchError(f"docker run failed: {proc.stderr.decode(errors='replace')[:300]}")
        ids.append(proc.stdout.decode().split()[-1])
    host.created.update(ids)
    before = pids_of(docker, host, ids)
    if sum(1 for s, _ in before.values() if s == "running") != count:
        raise BenchError(f"not all {count} containers are running before the kill")

    rss_before = rss_kib(daemon.pid())
    killed = daemon.kill()
    time.sleep(delay)
    t0 = time.perf_counter()
    daemon.start()
    deadline = time.monotonic() + deadline_s
    t_ping = wait_for_ping(host.url, deadline)
    t_listed = wait_for_listed(host.url, docker.session, set(ids), deadline)
    _, execs = docker.parallel(host, [["exec", cid, "true"] for cid in ids], 10)
    t_exec = time.perf_counter()
    failed = [p.stderr.decode(errors="replace").strip() for _, p in execs if p.returncode != 0]
    if failed:
        raise BenchError(f"{len(failed)} of {count} execs failed after the restart: {failed[0]}")
    rss_adopted = rss_kib(daemon.pid())
    after = pids_of(docker, host, ids)
    adopted = sum(1 for i in ids if after.get(i) == before[i])
    t_logs, proc = docker.call(host, "logs", ids[0])
    if proc.stdout.decode().strip() != "ready":
        raise BenchError(f"docker logs after the restart gave {proc.stdout[:100]!r}")
    t_stop, _ = docker.call(host, "stop", "-t", "0", ids[-1])
    status = pids_of(docker, host, [ids[-1]]).get(ids[-1], ("?", ""))[0]
    if status != "exited":
        raise BenchError(f"the stopped container is {status!r}, not exited")
    docker.remove(host, ids)
    return Run(
        killed_pid=killed,
        new_pid=daemon.pid(),
        count=count,
        adopted=adopted,
        ping_s=t_ping - t0,
        listed_s=t_listed - t0,
        exec_s=t_exec - t0,
        exec_phase_s=t_exec - t_listed,
        logs_s=t_logs,
        stop_s=t_stop,
        rss_kib_before_kill=rss_before,
        rss_kib_adopted=rss_adopted,
        loadavg=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if "--" not in args_in:
        print("usage: restart.py [options] --host URL --pidfile PATH -- DAEMON COMMAND ...")
        return 2
    split = args_in.index("--")
    command = args_in[split + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True, help="DOCKER_HOST of the daemon the command starts")
    ap.add_argument("--pidfile", required=True, help="the pidfile the command writes")
    ap.add_argument("--count", type=int, default=50, help="running containers (default 50)")
    ap.add_argument("--runs", type=int, default=3, help="kill/restart rounds (default 3)")
    ap.add_argument("--image", default="busybox")
    ap.add_argument("--log", help="append the daemon's output to this file")
    ap.add_argument("--json", metavar="FILE", help="write every run's figures to FILE")
    ap.add_argument("--deadline", type=float, default=60, help="seconds allowed per restart")
    ap.add_argument(
        "--restart-delay",
        type=float,
        default=0,
        metavar="S",
        help="wait S seconds between the daemon's death and the restart (not timed; dockerd "
        "20.10 restarted at once can find its killed containerd 'still running' and hang)",
    )
    ap.add_argument("--docker", default=shutil.which("docker") or "docker")
    args = ap.parse_args(args_in[:split])
    if not command:
        ap.error("give the daemon's command after --")

    config_dir = tempfile.mkdtemp(prefix="dockyard-bench-config.")
    docker = Docker(args.docker, config_dir, uuid.uuid4().hex[:12], 120)
    host = Host(label="daemon", url=args.host)
    host.env = docker.env_for(args.host)
    log = open(args.log, "ab") if args.log else open(os.devnull, "wb")  # noqa: SIM115
    daemon = Daemon(command, args.pidfile, log)
    runs: list[Run] = []
    status = 0
    try:
        if answers(args.host):
            raise BenchError(f"a daemon already answers at {args.host}; this script starts its own")
        daemon.start()
        wait_for_ping(args.host, time.monotonic() + args.deadline)
        _, proc = docker.call(host, "version", "--format", "{{.Server.Version}}")
        server = proc.stdout.decode().strip()
        rss_fresh = rss_kib(daemon.pid())
        if docker.call(host, "image", "inspect", args.image, check=False)[1].returncode != 0:
            # as bench.py --prepare: the host's busybox-static as a rootfs
            tar = busybox_rootfs_tar(shutil.which("busybox") or "/bin/busybox")
            docker.call(host, "import", "--change", 'CMD ["sh"]', "-", args.image, stdin=tar)
        print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()}, {server}")
        print(f"# {args.runs} runs of {args.count} containers; command: {' '.join(command)}")
        print(f"# the daemon's RSS just after its first start: {mib(rss_fresh)} MiB")
        for n in range(args.runs):
            r = one_run(
                docker, host, daemon, args.image, args.count, args.deadline, args.restart_delay
            )
            runs.append(r)
            print(f"run {n + 1}: {r.line()}", flush=True)
        for key in ("ping_s", "listed_s", "exec_s", "exec_phase_s", "logs_s", "stop_s"):
            med = statistics.median(getattr(r, key) for r in runs)
            print(f"median {key[:-2]}: {med * 1e3:.0f} ms")
        if args.json:
            doc = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "cli": cli_version(args.docker),
                "server": server,
                "command": command,
                "count": args.count,
                "script": SCRIPT,
                "rss_kib_fresh": rss_fresh,
                "runs": [asdict(r) for r in runs],
            }
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
            print(f"# wrote {args.json}")
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if daemon.proc is not None and daemon.proc.poll() is None:
                _, proc = docker.call(
                    host,
                    "ps",
                    "-aq",
                    "--filter",
                    f"label={LABEL}.session={docker.session}",
                    check=False,
                )
                ids = proc.stdout.decode().split() or sorted(host.created)
                if ids:
                    docker.remove(host, ids)
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"warning: cleanup: {exc}", file=sys.stderr)
        daemon.stop()
        log.close()
        shutil.rmtree(config_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
