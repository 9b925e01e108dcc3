"""Reading a json-file history as a plain `docker logs` does, in one process, no daemon.

    .venv/bin/python bench/logs_read.py [--lines 500000] [--line 100] [--split-every 57] [--rounds 7]

Writes, in a temporary directory removed afterwards, a json-file log in dockyard's layout
like bench.py's `logs` workload leaves: `--lines` lines of `--line` bytes (newline included),
every `--split-every`th kept as two partial records as conmon's 8 KiB reads split them.
Then it times, as medians of `--rounds`, the steps of the joined-runs read (no -f, -t,
--details, --since, --until, --tail): `logfile.read_lines` (1 MiB blocks of whole lines),
`jsonlog.decode_runs` and, inside it, its count/isascii check, its regex `findall` and its
joins (these use jsonlog's private names: they show where the time goes), `stream_runs`;
and beside them `jsonlog.decode`, record by record, which the other reads take.
A figure, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from dockyard.model.logs import stream_runs
from dockyard.runtime import jsonlog
from dockyard.runtime.logfile import read_lines

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def write_log(path: Path, lines: int, size: int, split_every: int) -> int:
    payload = (_LETTERS * (size // len(_LETTERS) + 1))[: size - 1]
    cut = len(payload) * 2 // 5
    splits = 0
    with path.open("w") as f:
        for i in range(lines):
            t = f"2026-12-01T23:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i * 7919 % 10**9:09d}Z"
            if split_every and i % split_every == 0:
                f.write(f'{{"log":"{payload[:cut]}","stream":"stdout","time":"{t}"}}\n')
                f.write(f'{{"log":"{payload[cut:]}\\n","stream":"stdout","time":"{t}"}}\n')
                splits += 1
            else:
                f.write(f'{{"log":"{payload}\\n","stream":"stdout","time":"{t}"}}\n')
    return splits


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--line", type=int, default=100, help="bytes per line, newline included")
    ap.add_argument(
        "--split-every",
        type=int,
        default=57,
        help="every Nth line as two partial records (0: none)",
    )
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockyard-logs-read-") as tmp:
        path = Path(tmp) / "c-json.log"
        splits = write_log(path, args.lines, args.line, args.split_every)
        fd = os.open(path, os.O_RDONLY)
        try:
            end = os.fstat(fd).st_size
            chunks = list(read_lines(fd, 0, end))
            runs = [jsonlog.decode_runs(c) for c in chunks]
            if any(r is None for r in runs):
                sys.exit("decode_runs refused a block: the layout is not the plain one")
            payload = sum(len(data) for r in runs for _, data in stream_runs(r or []))
            found = [jsonlog._PLAIN_RUN.findall(c) for c in chunks]
            print(
                f"# {end} bytes of json-file, {args.lines} lines ({splits} split), {payload} bytes of payload, "
                f"{len(chunks)} blocks; medians of {args.rounds}, ms"
            )
            rows: list[tuple[str, Callable[[], object]]] = [
                ("read_lines", lambda: list(read_lines(fd, 0, end))),
                (
                    "decode_runs: count + isascii",
                    lambda: [(c.count(b"\n"), c.isascii()) for c in chunks],
                ),
                ("decode_runs: findall", lambda: [jsonlog._PLAIN_RUN.findall(c) for c in chunks]),
                (
                    "decode_runs: groupby + join + replace",
                    lambda: [
                        [
                            b"".join(map(jsonlog._RUN_LOG, run)).replace(b"\\n", b"\n")
                            for _, run in itertools.groupby(f, jsonlog._RUN_STREAM)
                        ]
                        for f in found
                    ],
                ),
                ("decode_runs", lambda: [jsonlog.decode_runs(c) for c in chunks]),
                ("stream_runs of its output", lambda: [stream_runs(r or []) for r in runs]),
                ("decode (record by record)", lambda: [jsonlog.decode(c) for c in chunks]),
            ]
            for name, fn in rows:
                ms = median_ms(fn, args.rounds)
                print(f"{name:40s} {ms:8.2f}   {payload / 1e6 / (ms / 1000):8.1f} MB/s of payload")
        finally:
            os.close(fd)


if __name__ == "__main__":
    main()
