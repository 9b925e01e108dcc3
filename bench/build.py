#!/usr/bin/env python3
"""A 5-step classic build from busybox, cold and fully cached (issue 10's figures).

    python3 bench/build.py [--runs 10] [--image busybox] [--busybox /bin/busybox] [--json FILE] HOST

HOST is a DOCKER_HOST value (unix:///tmp/x.sock). The Dockerfile is

    FROM busybox / ENV GREETING=hello / COPY app.txt /app/ / RUN cat /app/app.txt > /app/copy / CMD ["cat", "/app/copy"]

Each round sends the same small context tar as `POST /build?version=1` over the raw socket
(read to the end of the stream, which must say "Successfully built"), so the figures leave out
the CLI's start-up:

  cold     with nocache=1: every step runs (the RUN in a real container) and is committed
  cached   without it: every step must come from the cache ("Using cache" 4 times)
  cli.cold, cli.cached  the same through `DOCKER_BUILDKIT=0 docker build -q`, as a user times it

The busybox image is imported from the host's busybox-static where missing (as bench.py
--prepare does). The images built are removed at the end. Stdlib only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench import busybox_rootfs_tar

DOCKERFILE = """FROM {image}
ENV GREETING=hello
COPY app.txt /app/
RUN cat /app/app.txt > /app/copy
CMD ["cat", "/app/copy"]
"""
TAG = "dockyard-bench-build:latest"


def context_tar(image: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", DOCKERFILE.format(image=image).encode()), ("app.txt", b"bench\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def post_build(url: str, body: bytes, nocache: bool) -> tuple[float, str]:
    """POST /build with the context; the seconds until the stream ended, and its text."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        raise SystemExit("bench/build.py speaks unix:// only")
    query = urlencode({"t": TAG, "nocache": "1" if nocache else "0", "version": "1"})
    head = (f"POST /build?{query} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    t0 = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(parts.path)
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break  # dockerd closes without reading the context's trailing padding: a reset
            if not data:
                break
            chunks.append(data)
    seconds = time.perf_counter() - t0
    raw = b"".join(chunks)
    status = raw.split(b"\r\n", 1)[0]
    if b" 200 " not in status:
        raise SystemExit(f"POST /build: {raw[:2000].decode(errors='replace')}")
    return seconds, raw.decode(errors="replace")


def cli_build(host: str, context: Path, nocache: bool) -> float:
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"}
    args = ["docker", "build", "-q", "-t", TAG, *(["--no-cache"] if nocache else []), str(context)]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env, timeout=120)
    return time.perf_counter() - t0


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_s": statistics.median(ordered), "min_s": ordered[0],
            "p90_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", default="busybox")
    parser.add_argument("--busybox", default="/bin/busybox")
    parser.add_argument("--json")
    opts = parser.parse_args()
    env = {**os.environ, "DOCKER_HOST": opts.host}
    have = subprocess.run(["docker", "image", "inspect", opts.image], capture_output=True, env=env)
    if have.returncode != 0:
        subprocess.run(["docker", "import", "--change", 'CMD ["sh"]', "-", opts.image], check=True, env=env,
                       input=busybox_rootfs_tar(opts.busybox), capture_output=True)  # fmt: skip
    body = context_tar(opts.image)
    results: dict[str, list[float]] = {"cold": [], "cached": [], "cli.cold": [], "cli.cached": []}
    with tempfile.TemporaryDirectory(prefix="dy-bench-build-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            tar.extractall(tmp, filter="data")
        post_build(opts.host, body, nocache=True)  # warm-up: the cache holds this build from here on
        for _ in range(opts.runs):
            seconds, text = post_build(opts.host, body, nocache=True)
            if "Successfully built" not in text or "Using cache" in text:
                raise SystemExit(f"a cold build that was not one:\n{text}")
            results["cold"].append(seconds)
            seconds, text = post_build(opts.host, body, nocache=False)
            if text.count("Using cache") != 4:
                raise SystemExit(f"a cached build that was not one:\n{text}")
            results["cached"].append(seconds)
            results["cli.cold"].append(cli_build(opts.host, Path(tmp), nocache=True))
            results["cli.cached"].append(cli_build(opts.host, Path(tmp), nocache=False))
    subprocess.run(["docker", "rmi", TAG], capture_output=True, env=env)
    figures = {name: summary(values) for name, values in results.items()}
    for name, figure in figures.items():
        print(f"{name:>10}: median {figure['median_s'] * 1e3:7.1f} ms  min {figure['min_s'] * 1e3:7.1f} ms  "
              f"p90 {figure['p90_s'] * 1e3:7.1f} ms")  # fmt: skip
    if opts.json:
        Path(opts.json).write_text(json.dumps({"runs": opts.runs, "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
