"""Times network/dns's embedded DNS server in a namespace of its own (root; dockyard importable).

    .venv/bin/python bench/dns_server.py [--queries 2000] [--names 50]

Prints: add() with and without the nft redirect, remove(); the latency of local answers
(UDP and TCP, one query at a time from a thread inside the namespace), of forwarded ones
(to a stub on 127.0.0.1 answering at once), and a burst of every name of a 50-container
network, counting failures. Nothing leaves the machine; everything made is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import socket
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from dockyard.model import dnsmessage as wire
from dockyard.model.dnsview import EndpointRecord, NameTable, NetworkNames, dns_names
from dockyard.network.dns import DnsServers, install_redirect
from dockyard.network.netns import create_netns, release_netns
from dockyard.network.upstream import Upstream

_libc = ctypes.CDLL(None, use_errno=True)


def query(name: str, qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def in_netns(path: Path, work: Callable[[], Any]) -> Any:
    out: list[Any] = []

    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        _libc.setns(fd, 0x40000000)
        os.close(fd)
        out.append(work())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def udp_latencies(names: list[str], count: int) -> tuple[list[float], int]:
    times, failures = [], 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for i in range(count):
            start = time.perf_counter()
            sock.sendto(query(names[i % len(names)], i & 0xFFFF), ("127.0.0.11", 53))
            try:
                reply = sock.recv(4096)
                ok = struct.unpack("!H", reply[:2])[0] == i & 0xFFFF and reply[3] & 0xF == 0 and struct.unpack("!H", reply[6:8])[0] > 0
            except TimeoutError:
                ok = False
            times.append(time.perf_counter() - start)
            failures += not ok
    return times, failures


def tcp_latencies(names: list[str], count: int) -> tuple[list[float], int]:
    times, failures = [], 0
    with socket.create_connection(("127.0.0.11", 53), timeout=2) as conn:
        for i in range(count):
            msg = query(names[i % len(names)], i & 0xFFFF)
            start = time.perf_counter()
            conn.sendall(struct.pack("!H", len(msg)) + msg)
            length = struct.unpack("!H", conn.recv(2))[0]
            reply = b""
            while len(reply) < length:
                reply += conn.recv(length - len(reply))
            times.append(time.perf_counter() - start)
            failures += reply[3] & 0xF != 0
    return times, failures


def burst(names: list[str]) -> int:
    """Every name at once (as 50 containers starting up would ask), then every reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for i, name in enumerate(names):
            sock.sendto(query(name, i), ("127.0.0.11", 53))
        got = set()
        try:
            while len(got) < len(names):
                reply = sock.recv(4096)
                if reply[3] & 0xF == 0 and struct.unpack("!H", reply[6:8])[0] == 1:
                    got.add(struct.unpack("!H", reply[:2])[0])
        except TimeoutError:
            pass
    return len(names) - len(got)


def summary(label: str, times: list[float], failures: int) -> None:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[int(len(ms) * 0.99) - 1]
    print(f"{label:<28} median {statistics.median(ms):7.3f} ms  p99 {p99:7.3f} ms  n={len(ms)}  failures={failures}")


class Stub(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        q = wire.parse_query(data)
        reply = wire.encode_response(q, wire.RCode.NOERROR, [wire.Record(q.question.name, 1, 60, b"\xc0\x00\x02\x01")])
        self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


async def main(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="dy-dns-bench-"))
    netns = base / "ns"
    create_netns(netns)
    endpoints = tuple(
        EndpointRecord(dns_names(f"c{i}", [f"svc{i % 5}"], f"{i:012x}" + "0" * 52), (ip_address(f"172.30.0.{i + 2}"),))
        for i in range(args.names)
    )
    table = NameTable((NetworkNames("app", endpoints),))
    names = [f"c{i}" for i in range(args.names)]
    loop = asyncio.get_running_loop()
    stub_transport, _ = await loop.create_datagram_endpoint(Stub, local_addr=("127.0.0.1", 0))
    stub = Upstream(ip_address("127.0.0.1"), stub_transport.get_extra_info("sockname")[1])
    try:
        async with DnsServers() as servers:
            for redirect in (False, True):
                adds, removes = [], []
                for _ in range(20):
                    start = time.perf_counter()
                    await servers.add(netns, lambda: table, [stub], redirect=redirect)
                    adds.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    await servers.remove(netns)
                    removes.append(time.perf_counter() - start)
                summary(f"add (redirect={redirect})", adds, 0)
                summary(f"remove (redirect={redirect})", removes, 0)
            await install_redirect(netns, 5300)
            adds, removes = [], []
            for _ in range(20):
                start = time.perf_counter()
                await servers.add(netns, lambda: table, [stub], port=5300, rules_ready=True)
                adds.append(time.perf_counter() - start)
                start = time.perf_counter()
                await servers.remove(netns, clear_redirect=False)
                removes.append(time.perf_counter() - start)
            summary("add (rule made ahead)", adds, 0)
            summary("remove (namespace going)", removes, 0)
            await servers.add(netns, lambda: table, [stub])
            times, failures = await asyncio.to_thread(in_netns, netns, lambda: udp_latencies(names, args.queries))
            summary("local A, UDP", times, failures)
            times, failures = await asyncio.to_thread(in_netns, netns, lambda: tcp_latencies(names, args.queries))
            summary("local A, TCP (one conn)", times, failures)
            times, failures = await asyncio.to_thread(in_netns, netns, lambda: udp_latencies(["example.test"], args.queries // 4))
            summary("forwarded A, UDP", times, failures)
            failed = [await asyncio.to_thread(in_netns, netns, lambda: burst(names)) for _ in range(20)]
            print(f"burst of {len(names)} names x 20 rounds: {sum(failed)} failures")
    finally:
        stub_transport.close()
        release_netns(netns)
        os.rmdir(base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--names", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
