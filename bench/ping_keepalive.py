"""GET /_ping on one keep-alive unix-socket connection: the API's fast path, req/s and latency.

    python3 bench/ping_keepalive.py [-n 3000] [--warmup 200] [--pid PID] SOCKET

Stdlib only. One connection, `GET /_ping HTTP/1.1` with a Host header and nothing else,
answers read by their Content-Length; `-n` timed requests after `--warmup` untimed ones.
Prints req/s (timed requests over their wall time), median and p90 latency (send to last byte)
and, with `--pid`, the daemon's CPU time (utime+stime, /proc ticks) per request, which
a busy or stolen CPU disturbs less than the wall times.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

REQUEST = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"


def one(sock: socket.socket, buf: bytearray) -> None:
    sock.sendall(REQUEST)
    while (end := buf.find(b"\r\n\r\n")) < 0:
        _recv(sock, buf)
    head = bytes(buf[:end])
    if not head.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"unexpected answer: {head[:200]!r}")
    at = head.lower().find(b"\r\ncontent-length:")
    total = end + 4 + int(head[at + 17 :].split(b"\r\n", 1)[0])
    while len(buf) < total:
        _recv(sock, buf)
    del buf[:total]


def _recv(sock: socket.socket, buf: bytearray) -> None:
    more = sock.recv(65536)
    if not more:
        raise SystemExit("the daemon closed the connection")
    buf += more


def cpu_seconds(pid: int | None) -> float:
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("socket")
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--pid", type=int, help="the daemon's pid: print its CPU time per request")
    args = parser.parse_args()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(args.socket)
        buf = bytearray()
        for _ in range(args.warmup):
            one(sock, buf)
        latencies = []
        cpu_before, started = cpu_seconds(args.pid), time.perf_counter()
        for _ in range(args.n):
            sent = time.perf_counter()
            one(sock, buf)
            latencies.append(time.perf_counter() - sent)
        wall, cpu = time.perf_counter() - started, cpu_seconds(args.pid) - cpu_before
    latencies.sort()
    line = (f"{args.n / wall:.0f} req/s  median {statistics.median(latencies) * 1e3:.3f} ms  "
            f"p90 {latencies[int(len(latencies) * 0.9)] * 1e3:.3f} ms")  # fmt: skip
    if args.pid:
        line += f"  daemon CPU {cpu / args.n * 1e6:.0f} us/req"
    print(line)


if __name__ == "__main__":
    main()
