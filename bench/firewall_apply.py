"""Time the firewall's whole-table replacement and host port reservation (root).

    python3 bench/firewall_apply.py [--runs N]

In a network namespace of its own (deleted afterwards): `Firewall.apply` of a plan with one
bridge and 1, 10, 50, 200, 500 published ports (one `nft -f -`: render + nft's start-up +
the kernel transaction), the same plan grown by one port (applied as additions), `Firewall.remove`, and `PortAllocator.reserve` + `release` of 1 and
10 random TCP ports on every address (v4). Prints median and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import os
import secrets
import statistics
import subprocess
import time
from ipaddress import IPv4Address, IPv4Network

from dockyard.model.ports import ANY_V4, BindRequest, Proto, Published
from dockyard.network.firewall import BridgePlan, Firewall, FirewallPlan, PortForward, render
from dockyard.network.portalloc import PortAllocator

CLONE_NEWNET = 0x40000000


def plan(ports: int) -> FirewallPlan:
    bridge = BridgePlan("dybench0", IPv4Network("10.77.0.0/16"), IPv4Address("10.77.0.1"))
    forwards = tuple(
        PortForward("dybench0", Published(Proto.TCP, IPv4Address(f"10.77.{1 + i // 250}.{1 + i % 250}"), 80, ANY_V4, 20000 + i))
        for i in range(ports)
    )
    return FirewallPlan("dybench", (bridge,), forwards)


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"median {statistics.median(samples) * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    name = f"dybench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        assert libc.setns(fd, CLONE_NEWNET) == 0  # this process stays here until it exits
        subprocess.run(["ip", "link", "add", "dybench0", "type", "bridge"], check=True)
        fw = Firewall("dybench")
        for ports in (1, 10, 50, 200, 500):
            p = plan(ports)
            t0 = time.perf_counter()
            for _ in range(100):
                render(p)
            rendered = (time.perf_counter() - t0) / 100
            samples = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                asyncio.run(fw.apply(p, whole=True))
                samples.append(time.perf_counter() - t0)
            print(f"apply  {ports:4d} ports: {ms(samples[1:])}   (render alone {rendered * 1000:.2f} ms)")
            grown = plan(ports + 1)
            samples = []
            for _ in range(runs):
                asyncio.run(fw.apply(p, whole=True))
                time.sleep(0.05)  # let the replacement's deferred freeing finish first
                t0 = time.perf_counter()
                asyncio.run(fw.apply(grown))  # one more container's port: rules added
                samples.append(time.perf_counter() - t0)
            print(f"  add 1 port to {ports:4d}: {ms(samples)}")
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            asyncio.run(fw.remove())
            samples.append(time.perf_counter() - t0)
        print(f"remove           : {ms(samples)}")
        alloc = PortAllocator()
        for count in (1, 10):
            requests = [BindRequest(Proto.TCP, IPv4Address("10.77.0.2"), 80 + i, ANY_V4) for i in range(count)]
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                alloc.reserve(requests).release()
                samples.append(time.perf_counter() - t0)
            print(f"reserve+release {count:2d}: {ms(samples)}")
    finally:
        os.close(fd)
        subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    main()
