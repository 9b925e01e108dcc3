#!/usr/bin/env python3
"""Time the docker CLI against one or two daemons (dockyard, dockerd, ...), side by side.

    python3 bench/bench.py [--only NAME,...] [--runs N] [--rounds NAME=N ...] [--image busybox]
                           [--prepare] [--json FILE] [--pidfile PATH ...] HOST [HOST2 [HOST3]]

HOST is a DOCKER_HOST value (`unix:///tmp/x.sock`, `tcp://127.0.0.1:2375`), optionally
labelled: `dockyard=unix:///tmp/dy-bench/dockyard.sock`.

For each host, with the real `docker` CLI (one binary for all hosts, a private temporary
DOCKER_CONFIG, DOCKER_HOST set), each selected workload (default: all, in this order) sets
up, runs one warm-up round and N rounds (default 15), and removes what it made:

  version   `docker version`: the CLI's own start-up plus one round trip (a floor for the rest)
  run       `docker run --rm IMAGE true`
  cycle     `docker create IMAGE sleep 60`, `docker start`, `docker stop -t 0`, `docker rm`
            (the whole cycle, and each of its four steps)
  exec      `docker exec C true` in a running `sleep`; exec.api: the same three requests
            over the raw socket (create, start upgraded and read to EOF, inspect)
  logs      `docker logs C > /dev/null` of a stopped container that wrote --logs-mb MB of
            --logs-line-byte lines (`yes ... | head -n ...`); also as MB/s
  ps100     100 created containers: GET /containers/json?all=1 over the raw socket (10 per
            round, each on a new connection, beside GET /_ping as a floor), `docker ps -a`
  stats10   `docker stats --no-stream` of 10 running `sleep`s; stats.api: one
            GET /containers/C/stats?stream=0 over the raw socket
  burst20, seq50, mem, ping.keepalive   issue 6's (scale.py): 20 `run -d` at once,
            50 one after another, memory per running container, /_ping on one
            keep-alive connection; fewer rounds by default (--rounds NAME=N)

Rounds alternate between the hosts, so drift on the machine hits all alike. Each CLI figure
is the wall time of one CLI process (time.perf_counter around subprocess.run); each raw-API
figure (`*.api`) runs from connect to the last byte of the answer (rawhttp.py). The table
gives median, p90 and min per host, and host1/hostN of the medians for each other host.

The daemon's CPU time per round is read per workload and its resident memory before and
after: the process listening on the socket (from --pidfile, else found by matching the
socket's inode in /proc/net/unix against /proc/*/fd), and that process with all its
descendants (dockerd's managed containerd, ...).

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
from datetime import UTC, datetime
from pathlib import Path

from dockercli import LABEL, BenchError, Docker, Host, cli_version
from procs import cpu, find_daemon_pid, memory
from scale import scale_workloads
from workloads import Workload, workloads

PREPARE_HINT = """\
The image {image!r} is not on {label} ({host}). Import one from the host's busybox-static
(apt-get install -y busybox-static), either with

    python3 bench/bench.py --prepare {host}

or by hand:

    mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox /tmp/bb/bin/$a; done
    tar -C /tmp/bb -c . | DOCKER_HOST={host} docker import --change 'CMD ["sh"]' - busybox:latest
"""


class Interrupted(BaseException):
    """Raised from the SIGTERM handler, so `finally` blocks (cleanup) run as for Ctrl-C."""


# ---------------------------------------------------------------- image and cleanup


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
    if x is None:
        return "-"
    return f"{x * 1e3:.2f}" if x < 0.01 else f"{x * 1e3:.1f}"


def mib(k: int | None) -> str:
    return "-" if k is None else f"{k / 1024:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def value(x: float | None, unit: str | None) -> str:
    """Seconds as ms (unit None), anything else as recorded."""
    if unit is None or x is None:
        return ms(x)
    return f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def table(hosts: list[Host], selected: list[Workload]) -> str:
    head = ["metric (ms)"]
    for h in hosts:
        head += [f"{h.label} median", "p90", "min"]
    others = hosts[1:]
    head += [f"{hosts[0].label}/{h.label}" for h in others]
    rows = [head]

    def ratios(vals: list[float | None]) -> list[str]:
        return [ratio(vals[0], v) for v in vals[1:]]

    for w in selected:
        for m in w.metrics:
            unit = w.unit(m)
            row = [m if unit is None else f"{m} ({unit})"]
            meds = []
            for h in hosts:
                s = summary(h.samples.get(m, [])) or {}
                row += [value(s.get(k), unit) for k in ("median", "p90", "min")]
                meds.append(s.get("median"))
            rows.append(row + ratios(meds))
            rates_of = [w.rate_of(h, m) for h in hosts]
            if not any(rates_of):
                continue
            # A rate from the median, p90 and fastest time (so "min" is the best rate).
            label = next(rt[1] for rt in rates_of if rt)
            row = [f"{m} ({label})"]
            rates = []
            for h, rt in zip(hosts, rates_of):
                s = summary(h.samples.get(m, [])) or {}
                amount = rt[0] if rt else 0
                vals = [amount / s[k] if s.get(k) else None for k in ("median", "p90", "min")]
                row += ["-" if v is None else f"{v:.1f}" for v in vals]
                rates.append(vals[0])
            rows.append(row + ratios(rates))
    for w in selected:
        for key, name in (("daemon_ms", "daemon CPU"), ("tree_ms", "daemon+children CPU")):
            row = [f"{w.name}: {name} per round (ms)"]
            vals = [h.cpu.get(w.name, {}).get(key) for h in hosts]
            for v in vals:
                row += ["-" if v is None else f"{v:.1f}", "", ""]
            rows.append(row + ratios(vals))
    for key, name in (
        ("rss_kib", "daemon RSS (MiB)"),
        ("tree_rss_kib", "daemon+children RSS (MiB)"),
    ):
        row = [f"{name} before/after"]
        for h in hosts:
            row += [f"{mib(h.mem_before.get(key))} / {mib(h.mem_after.get(key))}", "", ""]
        after: list[float | None] = [h.mem_after.get(key) for h in hosts]
        rows.append(row + ratios(after))
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


def run_workload(
    docker: Docker, hosts: list[Host], w: Workload, image: str, runs: int, progress: bool
) -> None:
    """Set up on every host, one warm-up round each, `runs` rounds alternating, tear down."""
    try:
        for h in hosts:
            w.setup(docker, h, image)
        for h in hosts:
            w.round(docker, h, image, record=False)
        cpu_before = [cpu(h.pid) for h in hosts]
        for i in range(runs):
            for h in hosts:
                w.round(docker, h, image, record=True)
            if progress:
                print(f"\r# {w.name}: round {i + 1}/{runs}", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        for h, before in zip(hosts, cpu_before):
            after = cpu(h.pid)
            h.cpu[w.name] = {}
            for key in ("daemon", "tree"):
                x, y = after[f"{key}_s"], before[f"{key}_s"]
                h.cpu[w.name][f"{key}_ms"] = (
                    None if x is None or y is None else (x - y) * 1e3 / runs
                )
    finally:
        for h in hosts:
            try:
                w.teardown(docker, h)
            except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
                print(f"warning: {h.label}: {w.name} teardown: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("hosts", nargs="+", metavar="HOST", help="[label=]DOCKER_HOST, one to three")
    ap.add_argument(
        "--runs",
        type=int,
        default=15,
        help="timed rounds per host for workloads without their own default (default 15)",
    )
    ap.add_argument(
        "--rounds",
        action="append",
        default=[],
        metavar="NAME=N",
        help="timed rounds for one workload (burst20 5, seq50 3, mem 3, ping.keepalive 10 by default)",
    )
    ap.add_argument(
        "--only",
        metavar="NAME,...",
        help="workloads to run, comma-separated (default all: version,run,cycle,exec,logs,"
        "ps100,stats10,burst20,seq50,mem,ping.keepalive)",
    )
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
    ap.add_argument(
        "--logs-mb", type=float, default=50, help="MB (10^6 bytes) the logs writer writes"
    )
    ap.add_argument(
        "--logs-line", type=int, default=100, help="bytes per log line, newline included"
    )
    args = ap.parse_args(argv)
    if not 1 <= len(args.hosts) <= 3:
        ap.error("give one to three hosts")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if len(args.pidfile) > len(args.hosts):
        ap.error("more --pidfile than hosts")
    try:
        known = workloads(int(args.logs_mb * 1e6), args.logs_line)
    except BenchError as exc:
        ap.error(str(exc))
    known.update(scale_workloads())
    rounds: dict[str, int] = {}
    for item in args.rounds:
        name, _, n = item.partition("=")
        if name not in known or not n.isdigit() or int(n) < 1:
            ap.error(
                f"--rounds takes NAME=N with NAME one of {','.join(known)}, N >= 1; not {item!r}"
            )
        rounds[name] = int(n)
    names = list(known) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        ap.error(f"--only takes some of {','.join(known)}; not {','.join(unknown) or args.only!r}")
    selected = [w for n, w in known.items() if n in names]

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
        print(
            f"# {', '.join(w.name for w in selected)}: each a warm-up, then "
            f"{args.runs} rounds (unless named: {rounds or 'own defaults'}) "
            "alternating between hosts ...",
            flush=True,
        )
        progress = sys.stderr.isatty()
        loads: dict[str, str] = {}
        runs_of = {w.name: rounds.get(w.name, w.default_runs or args.runs) for w in selected}
        for w in selected:
            run_workload(docker, hosts, w, args.image, runs_of[w.name], progress)
            loads[w.name] = loadavg()
        cleanup(docker, hosts)
        for h in hosts:
            h.mem_after = memory(h.pid)
        facts["loadavg_after"] = loadavg()
        print(f"# load average after each workload: {loads}")
        for h in hosts:
            for name, info in h.info.items():
                print(f"# {h.label} {name}: {json.dumps(info)}")
        print(table(hosts, selected))
        if args.json:
            doc = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": facts,
                "loadavg_after_workload": loads,
                "cli": cli,
                "runs": args.runs,
                "rounds": runs_of,
                "image": args.image,
                "workloads": [w.name for w in selected],
                "hosts": [
                    {
                        "label": h.label,
                        "host": h.url,
                        "server": h.server,
                        "pid": h.pid,
                        "memory_before": h.mem_before,
                        "memory_after": h.mem_after,
                        "cpu_per_round": h.cpu,
                        "info": h.info,
                        "metrics": {
                            m: {
                                "unit": w.unit(m) or "s",
                                "summary": summary(h.samples.get(m, [])),
                                "samples": h.samples.get(m, []),
                            }
                            for w in selected
                            for m in w.metrics
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
