#!/usr/bin/env python3
"""Time the docker CLI against one or two daemons (dockyard, dockerd, ...), side by side.

    python3 bench/bench.py [--runs N] [--image busybox] [--prepare] [--json FILE]
                           [--pidfile PATH ...] HOST [HOST2]

HOST is a DOCKER_HOST value (`unix:///tmp/x.sock`, `tcp://127.0.0.1:2375`), optionally
labelled: `dockyard=unix:///tmp/dy-bench/dockyard.sock`.

For each host, with the real `docker` CLI (one binary for all hosts, a private temporary
DOCKER_CONFIG, DOCKER_HOST set), after one warm-up round, N rounds (default 15) of:

  version   `docker version`: the CLI's own start-up plus one round trip (a floor for the rest)
  run       `docker run --rm IMAGE true`
  cycle     `docker create IMAGE sleep 60`, `docker start`, `docker stop -t 0`, `docker rm`
            (the whole cycle, and each of its four steps)

Rounds alternate between the hosts, so drift on the machine hits both alike. Each figure is
the wall time of one CLI process (time.perf_counter around subprocess.run). The table gives
median, p90 and min per host, and host1/host2 of the medians when there are two.

The daemon's resident memory is read before and after: the process listening on the socket
(from --pidfile, else found by matching the socket's inode in /proc/net/unix against
/proc/*/fd), and that process with all its descendants (dockerd's managed containerd, ...).

Every container it makes carries the labels dockyard-bench=1 and dockyard-bench.session=ID
and is removed by that filter at the end, also after a failure, Ctrl-C or SIGTERM.
Stdlib only.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LABEL = "dockyard-bench"
CYCLE_STEPS = ("create", "start", "stop", "rm")
METRICS = ("version", "run", "cycle") + tuple(f"cycle.{s}" for s in CYCLE_STEPS)

PREPARE_HINT = """\
The image {image!r} is not on {label} ({host}). Import one from the host's busybox-static
(apt-get install -y busybox-static), either with

    python3 bench/bench.py --prepare {host}

or by hand:

    mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox /tmp/bb/bin/$a; done
    tar -C /tmp/bb -c . | DOCKER_HOST={host} docker import --change 'CMD ["sh"]' - busybox:latest
"""


class BenchError(Exception):
    pass


class Interrupted(BaseException):
    """Raised from the SIGTERM handler, so `finally` blocks (cleanup) run as for Ctrl-C."""


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
    cpu: dict[str, float | None] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    created: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- docker CLI


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
        self, host: Host, *args: str, check: bool = True, stdin: bytes | None = None
    ) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        """Run one CLI command against host; returns (seconds, completed process)."""
        t0 = time.perf_counter()
        proc = subprocess.run(
            [self.binary, *args],
            check=False,
            env=host.env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=self.timeout,
        )
        elapsed = time.perf_counter() - t0
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise BenchError(
                f"{host.label}: `docker {' '.join(args)}` exited {proc.returncode}: {err}"
            )
        return elapsed, proc

    def labels(self) -> list[str]:
        return ["--label", f"{LABEL}=1", "--label", f"{LABEL}.session={self.session}"]


def cli_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=False)
        return out.stdout.decode(errors="replace").strip()
    except OSError as exc:
        raise BenchError(f"cannot run the docker CLI {binary!r}: {exc}") from exc


# ---------------------------------------------------------------- the benchmark


def run_once(docker: Docker, host: Host, image: str) -> float:
    elapsed, _ = docker.call(host, "run", "--rm", *docker.labels(), image, "true")
    return elapsed


def cycle_once(docker: Docker, host: Host, image: str) -> dict[str, float]:
    times: dict[str, float] = {}
    times["create"], proc = docker.call(host, "create", *docker.labels(), image, "sleep", "60")
    cid = proc.stdout.decode().strip().splitlines()[-1]
    host.created.add(cid)
    times["start"], _ = docker.call(host, "start", cid)
    times["stop"], _ = docker.call(host, "stop", "-t", "0", cid)
    times["rm"], _ = docker.call(host, "rm", cid)
    host.created.discard(cid)
    return times


def round_on(docker: Docker, host: Host, image: str, record: bool) -> None:
    t_version, _ = docker.call(host, "version")
    t_run = run_once(docker, host, image)
    steps = cycle_once(docker, host, image)
    if record:
        host.samples["version"].append(t_version)
        host.samples["run"].append(t_run)
        host.samples["cycle"].append(sum(steps.values()))
        for s in CYCLE_STEPS:
            host.samples[f"cycle.{s}"].append(steps[s])


def has_image(docker: Docker, host: Host, image: str) -> bool:
    _, proc = docker.call(host, "image", "inspect", image, check=False)
    return proc.returncode == 0


def busybox_rootfs_tar(busybox: str) -> bytes:
    """A rootfs with /bin/busybox and a symlink per applet (`busybox --list`)."""
    applets = (
        subprocess.run([busybox, "--list"], capture_output=True, check=True).stdout.decode().split()
    )
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, now
        tar.addfile(d)
        data = Path(busybox).read_bytes()
        f = tarfile.TarInfo("bin/busybox")
        f.size, f.mode, f.mtime = len(data), 0o755, now
        tar.addfile(f, io.BytesIO(data))
        for a in sorted(set(applets)):
            if a == "busybox" or "/" in a:
                continue
            link = tarfile.TarInfo(f"bin/{a}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, now
            tar.addfile(link)
    return buf.getvalue()


def prepare(docker: Docker, host: Host, image: str, busybox: str) -> None:
    if has_image(docker, host, image):
        print(f"{host.label}: {image} is already there")
        return
    ref = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    data = busybox_rootfs_tar(busybox)
    docker.call(host, "import", "--change", 'CMD ["sh"]', "-", ref, stdin=data)
    print(f"{host.label}: imported {ref} from {busybox}")


def cleanup(docker: Docker, hosts: list[Host]) -> None:
    """Remove every container this session made, by its label; retry while some remain."""
    for host in hosts:
        if not host.env:
            continue
        for attempt in range(5):
            try:
                _, proc = docker.call(
                    host,
                    "ps",
                    "-aq",
                    "--no-trunc",
                    "--filter",
                    f"label={LABEL}.session={docker.session}",
                    check=False,
                )
            except (subprocess.TimeoutExpired, OSError):
                break
            ids = set(proc.stdout.decode().split()) if proc.returncode == 0 else set()
            ids |= host.created
            if not ids:
                break
            try:
                docker.call(host, "rm", "-f", *sorted(ids), check=False)
            except (subprocess.TimeoutExpired, OSError):
                pass
            host.created.clear()
            time.sleep(0.2 * (attempt + 1))
        else:
            print(
                f"warning: {host.label}: containers labelled {LABEL}.session={docker.session} may remain",
                file=sys.stderr,
            )


# ---------------------------------------------------------------- daemon memory


def unix_socket_path(url: str) -> str | None:
    return url[len("unix://") :] if url.startswith("unix://") else None


def listening_inodes(path: str) -> set[str]:
    inodes: set[str] = set()
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return inodes
    for line in lines:
        parts = line.split(None, 7)
        # Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 = listening
        if len(parts) == 8 and parts[7] == path and int(parts[3], 16) & 0x10000:
            inodes.add(parts[6])
    return inodes


def pids_holding(inodes: set[str]) -> set[int]:
    wanted = {f"socket:[{i}]" for i in inodes}
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if os.readlink(fd) in wanted:
                        pids.add(int(proc.name))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    return pids


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def find_daemon_pid(host: Host) -> int | None:
    if host.pidfile:
        try:
            return int(Path(host.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            print(f"warning: {host.label}: cannot read pid from {host.pidfile}", file=sys.stderr)
            return None
    path = unix_socket_path(host.url)
    if path is None:
        return None
    pids = pids_holding(listening_inodes(os.path.realpath(path)) | listening_inodes(path))
    # A child that inherited the listening fd is not the daemon: keep the topmost holders.
    top = sorted(p for p in pids if parent_of(p) not in pids)
    return top[0] if top else None


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            ppid = parent_of(int(proc.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pid: int | None) -> dict[str, int | None]:
    if pid is None:
        return {"rss_kib": None, "tree_rss_kib": None, "tree_procs": None}
    tree = [(p, rss_kib(p)) for p in descendants(pid)]
    return {
        "rss_kib": rss_kib(pid),
        "tree_rss_kib": sum(r for _, r in tree if r) or None,
        "tree_procs": sum(1 for _, r in tree if r is not None),
    }


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu(pid: int | None) -> dict[str, float | None]:
    if pid is None:
        return {"daemon_s": None, "tree_s": None}
    tree = [cpu_seconds(p) for p in descendants(pid)]
    return {"daemon_s": cpu_seconds(pid), "tree_s": sum(t for t in tree if t is not None)}


# ---------------------------------------------------------------- report


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def summary(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {
        "median": statistics.median(xs),
        "p90": p90(xs),
        "min": min(xs),
        "mean": statistics.fmean(xs),
    }


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.1f}"


def mib(k: int | None) -> str:
    return "-" if k is None else f"{k / 1024:.1f}"


def table(hosts: list[Host]) -> str:
    head = ["metric (ms)"]
    for h in hosts:
        head += [f"{h.label} median", "p90", "min"]
    if len(hosts) == 2:
        head.append(f"{hosts[0].label}/{hosts[1].label}")
    rows = [head]
    for m in METRICS:
        row = [m]
        meds = []
        for h in hosts:
            s = summary(h.samples[m]) or {}
            row += [ms(s.get("median")), ms(s.get("p90")), ms(s.get("min"))]
            meds.append(s.get("median"))
        if len(hosts) == 2:
            row.append(f"{meds[0] / meds[1]:.2f}" if meds[0] and meds[1] else "-")
        rows.append(row)
    for key, name in (
        ("daemon_ms", "daemon CPU per round (ms)"),
        ("tree_ms", "daemon+children CPU per round (ms)"),
    ):
        row = [name]
        vals = [h.cpu.get(key) for h in hosts]
        for v in vals:
            row += ["-" if v is None else f"{v:.1f}", "", ""]
        if len(hosts) == 2:
            row.append(f"{vals[0] / vals[1]:.2f}" if vals[0] and vals[1] else "-")
        rows.append(row)
    for key, name in (
        ("rss_kib", "daemon RSS (MiB)"),
        ("tree_rss_kib", "daemon+children RSS (MiB)"),
    ):
        row = [f"{name} before/after"]
        for h in hosts:
            row += [f"{mib(h.mem_before.get(key))} / {mib(h.mem_after.get(key))}", "", ""]
        if len(hosts) == 2:
            a, b = hosts[0].mem_after.get(key), hosts[1].mem_after.get(key)
            row.append(f"{a / b:.2f}" if a and b else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths))
                + "|"
            )
    return "\n".join(lines)


def machine_facts() -> dict[str, str | int]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "nproc": os.cpu_count() or 0,
        "kernel": platform.release(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "loadavg": loadavg(),
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


# ---------------------------------------------------------------- main


def parse_host(arg: str, n: int) -> Host:
    label, sep, url = arg.partition("=")
    if not sep or "://" in label:
        url = arg
        label = url.split("://", 1)[-1].rstrip("/").rsplit("/", 1)[-1] or f"host{n}"
    if "://" not in url:
        raise SystemExit(f"not a DOCKER_HOST value: {url!r} (e.g. unix:///tmp/x.sock)")
    return Host(label=label, url=url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("hosts", nargs="+", metavar="HOST", help="[label=]DOCKER_HOST, one or two")
    ap.add_argument("--runs", type=int, default=15, help="timed rounds per host (default 15)")
    ap.add_argument("--image", default="busybox", help="image to run (default busybox)")
    ap.add_argument("--json", metavar="FILE", help="write samples and summaries to FILE")
    ap.add_argument(
        "--pidfile",
        action="append",
        default=[],
        metavar="PATH",
        help="daemon pid file, in host order (default: find the socket's listener)",
    )
    ap.add_argument(
        "--prepare",
        action="store_true",
        help="import IMAGE from the host's busybox where it is missing, then bench",
    )
    ap.add_argument(
        "--busybox",
        default=shutil.which("busybox") or "/bin/busybox",
        help="static busybox binary for --prepare (default: busybox on PATH)",
    )
    ap.add_argument(
        "--docker", default=shutil.which("docker") or "docker", help="docker CLI binary"
    )
    ap.add_argument("--timeout", type=float, default=120, help="seconds allowed per CLI call")
    args = ap.parse_args(argv)
    if not 1 <= len(args.hosts) <= 2:
        ap.error("give one or two hosts")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if len(args.pidfile) > len(args.hosts):
        ap.error("more --pidfile than hosts")

    hosts = [parse_host(a, i + 1) for i, a in enumerate(args.hosts)]
    for h, pf in zip(hosts, args.pidfile):
        h.pidfile = pf or None

    def on_term(signum: int, frame: object) -> None:
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    config_dir = tempfile.mkdtemp(prefix="dockyard-bench-config.")
    docker = Docker(args.docker, config_dir, uuid.uuid4().hex[:12], args.timeout)
    status = 0
    try:
        cli = cli_version(args.docker)
        for h in hosts:
            h.env = docker.env_for(h.url)
            _, proc = docker.call(
                h,
                "version",
                "--format",
                "{{.Server.Version}} (API {{.Server.APIVersion}})",
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(
                    f"{h.label}: no daemon answers at {h.url}: "
                    f"{proc.stderr.decode(errors='replace').strip()}"
                )
            h.server = proc.stdout.decode().strip()
            if args.prepare:
                prepare(docker, h, args.image, args.busybox)
            if not has_image(docker, h, args.image):
                print(
                    PREPARE_HINT.format(image=args.image, label=h.label, host=h.url),
                    file=sys.stderr,
                )
                return 2
            h.pid = find_daemon_pid(h)
            h.mem_before = memory(h.pid)
        facts = machine_facts()
        print(
            f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {facts['nproc']} CPUs ({facts['cpu']}), "
            f"{facts['memory']}, kernel {facts['kernel']}, load {facts['loadavg']}; {cli} ({args.docker})"
        )
        for h in hosts:
            print(f"# {h.label}: {h.url}, server {h.server}, pid {h.pid}")
        print(f"# warm-up, then {args.runs} rounds alternating between hosts ...", flush=True)
        for h in hosts:
            round_on(docker, h, args.image, record=False)
        cpu_before = [cpu(h.pid) for h in hosts]
        progress = sys.stderr.isatty()
        for i in range(args.runs):
            for h in hosts:
                round_on(docker, h, args.image, record=True)
            if progress:
                print(f"\r# round {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        for h, before in zip(hosts, cpu_before):
            after = cpu(h.pid)
            for key in ("daemon", "tree"):
                a, b = after[f"{key}_s"], before[f"{key}_s"]
                h.cpu[f"{key}_ms"] = None if a is None or b is None else (a - b) * 1e3 / args.runs
        cleanup(docker, hosts)
        for h in hosts:
            h.mem_after = memory(h.pid)
        facts["loadavg_after"] = loadavg()
        print(f"# load average after: {facts['loadavg_after']}")
        print(table(hosts))
        if args.json:
            doc = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": facts,
                "cli": cli,
                "runs": args.runs,
                "image": args.image,
                "hosts": [
                    {
                        "label": h.label,
                        "host": h.url,
                        "server": h.server,
                        "pid": h.pid,
                        "memory_before": h.mem_before,
                        "memory_after": h.mem_after,
                        "cpu_per_round": h.cpu,
                        "metrics": {
                            m: {"summary": summary(h.samples[m]), "samples": h.samples[m]}
                            for m in METRICS
                        },
                    }
                    for h in hosts
                ],
            }
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
            print(f"# wrote {args.json}")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    except subprocess.TimeoutExpired as exc:
        print(f"error: timed out: {exc}", file=sys.stderr)
        status = 1
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted; cleaning up", file=sys.stderr)
        status = 130
    finally:
        # Ignore further Ctrl-C/SIGTERM while removing what we made.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup(docker, hosts)
        shutil.rmtree(config_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
