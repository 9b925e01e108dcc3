#!/usr/bin/env python3
"""Where a CLI command's wall time goes on the wire: a timestamping unix-socket relay.

    python3 bench/wiretime.py --daemon /tmp/dy-bench/dockyard.sock [--runs 10] -- exec C true

Listens on a temporary socket, runs `docker <args>` with DOCKER_HOST pointing at it `--runs`
times, relays every byte to the daemon's socket and notes, per run, when (ms after the CLI
process was started) each request's first byte arrived, when the daemon's first and last
bytes of the answer went back, when either side closed its half, and the CLI's exit. Prints the
median of each mark over the runs. The relay adds a hop (tens of microseconds per chunk),
so absolute figures are a little above bench.py's; the gaps between marks are what it is
for: which part is the daemon's and which the CLI's own. Stdlib only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

REQUEST_LINE = re.compile(rb"^(GET|HEAD|POST|PUT|DELETE) (\S+) HTTP/1\.[01]\r\n", re.MULTILINE)


class Recorder:
    def __init__(self) -> None:
        self.t0 = 0.0
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        self.marks.append((name, (time.perf_counter() - self.t0) * 1e3))


async def relay(
    rec: Recorder, conn: int, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool
) -> None:
    first = True
    last = 0.0
    while chunk := await src.read(262144):
        if up:
            for m in REQUEST_LINE.finditer(chunk):
                path = m.group(2).decode(errors="replace").split("?")[0]
                path = re.sub(r"[0-9a-f]{12,64}", "{id}", path)
                rec.mark(f"c{conn} {m.group(1).decode()} {path}")
        elif first:
            rec.mark(f"c{conn} answer begins")
            first = False
        last = time.perf_counter()
        dst.write(chunk)
        await dst.drain()
    if up:
        rec.mark(f"c{conn} client half-close")
    else:
        rec.mark(f"c{conn} daemon closes")
        if last:
            rec.marks.append((f"c{conn} last byte from the daemon", (last - rec.t0) * 1e3))
    if dst.can_write_eof():
        try:
            dst.write_eof()
        except OSError:
            pass


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.mkdtemp(prefix="dockyard-wiretime.")
    sock = os.path.join(tmp, "relay.sock")
    rec = Recorder()
    count = 0

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        conn = count
        dr, dw = await asyncio.open_unix_connection(args.daemon)
        try:
            await asyncio.gather(relay(rec, conn, r, dw, True), relay(rec, conn, dr, w, False))
        finally:
            dw.close()
            w.close()

    server = await asyncio.start_unix_server(on_client, sock)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env |= {"DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": tmp, "DOCKER_CLI_HINTS": "false"}
    runs: list[list[tuple[str, float]]] = []
    try:
        for i in range(args.runs + 1):  # the first is a warm-up
            rec.marks, count = [], 0
            rec.t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                args.docker, *args.cmd, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            code = await asyncio.wait_for(proc.wait(), 120)
            rec.mark("CLI exited")
            if code != 0:
                print(f"docker {' '.join(args.cmd)} exited {code}", file=sys.stderr)
                return 1
            await asyncio.sleep(0.05)
            if i:
                runs.append(sorted(rec.marks, key=lambda m: m[1]))
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    names = [n for n, _ in runs[0]]
    same = [r for r in runs if [n for n, _ in r] == names]
    print(f"# docker {' '.join(args.cmd)} via a relay to {args.daemon}: median of {len(same)} runs")
    prev = 0.0
    for k, name in enumerate(names):
        t = statistics.median(r[k][1] for r in same)
        print(f"{t:8.2f} ms  (+{t - prev:6.2f})  {name}")
        prev = t
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--daemon", required=True, help="the daemon's unix socket path")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--docker", default=shutil.which("docker") or "docker")
    ap.add_argument("cmd", nargs="+", help="the docker CLI arguments (after --)")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
