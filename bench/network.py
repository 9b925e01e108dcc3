#!/usr/bin/env python3
"""Issue 7's network figures, for one or two daemons side by side (root; stdlib only).

    python3 bench/network.py [--runs 20] [--containers 50] [--seconds 5] [--only NAME,...]
                             [label=]HOST [[label=]HOST2]

Workloads (each host in turn; every name made starts with `dybench-` and is removed at the end,
also after a failure):
- `netapi`: `docker network create --subnet ...` and `docker network rm`, each timed as a CLI
  and as the one API request it sends (POST /networks/create, DELETE /networks/ID over the raw
  socket), a quarter second apart; and `--runs` removals in a row.
- `setup`: `docker run --rm busybox true` on the default bridge and with `--network none`,
  alternating: the difference of the medians is what network setup adds to a run.
- `dns`: `--containers` sleeping containers on one user network; each resolves every name
  (busybox nslookup through the container's resolv.conf); failures are counted.
- `throughput`: iperf3 (TCP, `--seconds` each, 3 runs, median Gbit/s) between two containers
  on one user network and from the host to a port published on 127.0.0.1, beside the same tool
  over plain veth pairs the bench makes: namespace to namespace, and host to namespace.
  The iperf3 image is made from the host's /usr/bin/iperf3 and its libraries
  (`apt-get install iperf3`). All traffic stays on this machine: loopback, and veths between
  namespaces made here or by the daemon.

`busybox` must be an image on every host (bench.py --prepare makes it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rawhttp import Client
from sidebyside import Host, main

PREFIX = "dybench-"
IPERF_IMAGE = "dybench-iperf:latest"
BASE_NETS = ("10.254.250.0/30", "10.254.251.0/30")  # the bench's own veth pairs


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  p90 {sorted(values)[int(len(values) * 0.9) - 1]:7.1f}  min {min(values):7.1f}"


def netapi(h: Host, args: argparse.Namespace) -> dict[str, object]:
    """Each change a quarter second after the last: a bridge's deletion goes on in the kernel
    after `rm` answers (25-60 ms of RCU grace periods here, holding the rtnl lock), so a
    change right after a removal waits for it, on either daemon; `in a row` shows that."""
    raw = Client(h.url)
    raw.negotiate()
    out: dict[str, list[float]] = {k: [] for k in ("network create (CLI)", "network rm (CLI)", "POST /networks/create",
                                                   "DELETE /networks/ID", "DELETE /networks/ID, in a row")}  # fmt: skip
    subnets = [f"10.254.{100 + i % 50}.0/24" for i in range(args.runs)]

    def api_create(i: int, subnet: str) -> str:
        made = raw.request("POST", "/networks/create", {"Name": f"{PREFIX}api{i}", "IPAM": {"Config": [{"Subnet": subnet}]}})
        if made.status != 201:
            raise RuntimeError(f"{h.label}: POST /networks/create answered {made.status}: {made.body[:200]!r}")
        out["POST /networks/create"].append(made.seconds * 1e3)
        return str(json.loads(made.body)["Id"])

    for i, subnet in enumerate(subnets):
        out["network create (CLI)"].append(h.timed("network", "create", "--subnet", subnet, f"{PREFIX}net{i}"))
        time.sleep(0.25)
        out["network rm (CLI)"].append(h.timed("network", "rm", f"{PREFIX}net{i}"))
        time.sleep(0.25)
        network_id = api_create(i, subnet)
        time.sleep(0.25)
        out["DELETE /networks/ID"].append(raw.request("DELETE", f"/networks/{network_id}").seconds * 1e3)
        time.sleep(0.25)
    made = []
    for i, subnet in enumerate(subnets):
        made.append(api_create(i, subnet))
        time.sleep(0.25)
    for network_id in made:
        out["DELETE /networks/ID, in a row"].append(raw.request("DELETE", f"/networks/{network_id}").seconds * 1e3)
    time.sleep(1)
    return dict(out)


def setup(h: Host, args: argparse.Namespace) -> dict[str, object]:
    bridged, none = [], []
    h.docker("run", "--rm", "busybox", "true")
    for _ in range(args.runs):
        bridged.append(h.timed("run", "--rm", "busybox", "true"))
        none.append(h.timed("run", "--rm", "--network", "none", "busybox", "true"))
    added = statistics.median(bridged) - statistics.median(none)
    return {"run --rm (default bridge)": bridged, "run --rm (--network none)": none, "network setup added (ms)": added}


def dns(h: Host, args: argparse.Namespace) -> dict[str, object]:
    net = f"{PREFIX}dns"
    h.docker("network", "create", "--subnet", "10.254.200.0/24", net)
    names = [f"{PREFIX}dns{i}" for i in range(args.containers)]
    for name in names:
        h.docker("run", "-d", "--network", net, "--name", name, "busybox", "sleep", "600")
    script = f"f=0; for n in {' '.join(names)}; do nslookup $n >/dev/null 2>&1 || f=$((f+1)); done; echo $f"
    t0 = time.perf_counter()
    failures = sum(int(h.docker("exec", name, "sh", "-c", script)) for name in names)
    seconds = time.perf_counter() - t0
    h.docker("rm", "-f", *names)
    h.docker("network", "rm", net)
    return {"lookups": len(names) ** 2, "failures": failures, "seconds (all lookups, with the execs)": round(seconds, 2)}


def _iperf_image(h: Host) -> None:
    if h.docker("images", "-q", IPERF_IMAGE):
        return
    libs = subprocess.run(["ldd", "/usr/bin/iperf3"], capture_output=True, text=True, check=True).stdout
    paths = {"/usr/bin/iperf3", "/bin/busybox"}
    paths |= {p for line in libs.splitlines() for p in line.split() if p.startswith("/")}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(paths):
            tar.add(os.path.realpath(p), arcname=p.lstrip("/"))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    h.docker("import", "-", IPERF_IMAGE, input=buf.getvalue())


def _gbits(report: str) -> float:
    return float(json.loads(report)["end"]["sum_received"]["bits_per_second"]) / 1e9


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True)


class Veths:
    """Two plain veth pairs: namespace a <-> namespace b, and the host <-> namespace c."""

    def __init__(self) -> None:
        self.ns = [f"{PREFIX}tp{os.getpid()}{x}" for x in "abc"]

    def __enter__(self) -> Veths:
        a, b, c = self.ns
        for ns in self.ns:
            _ip("netns", "add", ns)
        _ip("link", "add", "dybtp-a", "netns", a, "type", "veth", "peer", "name", "dybtp-b", "netns", b)
        _ip("addr", "add", "10.254.250.1/30", "dev", "dybtp-a", ns=a)
        _ip("addr", "add", "10.254.250.2/30", "dev", "dybtp-b", ns=b)
        _ip("link", "add", "dybtp-h", "type", "veth", "peer", "name", "dybtp-c", "netns", c)
        _ip("addr", "add", "10.254.251.1/30", "dev", "dybtp-h")
        _ip("addr", "add", "10.254.251.2/30", "dev", "dybtp-c", ns=c)
        _ip("link", "set", "dybtp-h", "up")
        for ns, dev in ((a, "dybtp-a"), (b, "dybtp-b"), (c, "dybtp-c")):
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("link", "set", dev, "up", ns=ns)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", "dybtp-h"], capture_output=True)
        for ns in self.ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _served(server_argv: list[str], client: Callable[[], str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        server = subprocess.Popen(server_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            out.append(_gbits(client()))
        finally:
            server.terminate()
            server.wait(timeout=10)
    return out


def throughput(h: Host, args: argparse.Namespace) -> dict[str, object]:
    _iperf_image(h)
    secs, runs = str(args.seconds), 3
    results: dict[str, object] = {}
    with Veths() as v:
        a, b, c = v.ns

        def in_ns(ns: str, *argv: str) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True).stdout

        results["plain veth, namespace to namespace (Gbit/s)"] = _served(
            ["ip", "netns", "exec", a, "iperf3", "-s", "-1"], lambda: in_ns(b, "iperf3", "-c", "10.254.250.1", "-t", secs, "-J"), runs
        )
        results["plain veth, host to namespace (Gbit/s)"] = _served(
            ["ip", "netns", "exec", c, "iperf3", "-s", "-1"],
            lambda: subprocess.run(["iperf3", "-c", "10.254.251.2", "-t", secs, "-J"], capture_output=True, text=True, check=True).stdout,
            runs,
        )
    net = f"{PREFIX}tp"
    h.docker("network", "create", "--subnet", "10.254.201.0/24", net)
    h.docker("run", "-d", "--network", net, "--name", f"{PREFIX}tps", IPERF_IMAGE, "iperf3", "-s")
    time.sleep(0.5)
    results["container to container, one network (Gbit/s)"] = [
        _gbits(h.docker("run", "--rm", "--network", net, IPERF_IMAGE, "iperf3", "-c", f"{PREFIX}tps", "-t", secs, "-J"))
        for _ in range(runs)
    ]
    h.docker("run", "-d", "-p", "127.0.0.1::5201", "--name", f"{PREFIX}tpp", IPERF_IMAGE, "iperf3", "-s")
    port = h.docker("port", f"{PREFIX}tpp", "5201/tcp").splitlines()[0].rpartition(":")[2]
    time.sleep(0.5)
    try:
        results["host to 127.0.0.1 published port (Gbit/s)"] = [
            _gbits(subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", port, "-t", secs, "-J"],
                                  capture_output=True, text=True, check=True, timeout=args.seconds + 30).stdout)
            for _ in range(runs)
        ]  # fmt: skip
    except subprocess.CalledProcessError as exc:
        results["host to 127.0.0.1 published port (Gbit/s)"] = f"failed: {exc.stdout[-300:]}"
    h.docker("rm", "-f", f"{PREFIX}tps", f"{PREFIX}tpp")
    h.docker("network", "rm", net)
    return results


WORKLOADS = {"netapi": netapi, "setup": setup, "dns": dns, "throughput": throughput}


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--containers", type=int, default=50)
    p.add_argument("--seconds", type=int, default=5)


if __name__ == "__main__":
    main(__doc__ or "", WORKLOADS, options)
