"""Throughput of the json-file log codec (runtime.jsonlog), in one process, no daemon.

    .venv/bin/python bench/logs_codec.py [--mb 32]

For lines of 10, 100 and 1000 bytes it reports, as MB/s of input:
- encode: conmon's k8s-file spool lines -> json-file lines (the log shipper's CPU part),
  with conmon's habit of stamping each read's lines alike (about 8 KiB of lines per stamp);
- decode: json-file lines -> records (what `docker logs` does per byte of LogPath);
- decode+frame: the same plus the 8-byte stdcopy header per record, as the route adds it.
A figure, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from dockyard.runtime.jsonlog import SpoolEncoder, decode  # noqa: E402

_HEADER = struct.Struct(">BxxxI")


def spool(total: int, size: int) -> bytes:
    text = b"x" * (size - 1)
    per_stamp = max(1, 8192 // (size + 1))
    lines, n = [], 0
    while n < total:
        g = len(lines) // per_stamp
        stamp = f"2026-12-01T10:{g // 60 % 60:02d}:{g % 60:02d}.{g * 7919 % 10**9:09d}+00:00".encode()
        line = stamp + b" stdout F " + text + b"\n"
        lines.append(line)
        n += len(line)
    return b"".join(lines)


def blocks(data: bytes, size: int = 1 << 20) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        cut = data.rfind(b"\n", pos, pos + size) + 1
        out.append(data[pos:cut])
        pos = cut
    return out


def best(fn, chunks: list[bytes], rounds: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for chunk in chunks:
            fn(chunk)
        times.append(time.perf_counter() - t0)
    return min(times)


def frame(chunk: bytes) -> bytes:
    pack = _HEADER.pack
    return b"".join([pack(2 if r.stream == "stderr" else 1, len(r.data)) + r.data for r in decode(chunk)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=32)
    args = parser.parse_args()
    print(f"{'line':>6} {'encode MB/s':>12} {'decode MB/s':>12} {'decode+frame':>13} {'records/s':>10}")
    for size in (10, 100, 1000):
        raw = spool(args.mb << 20, size)
        spool_chunks = blocks(raw)
        encoder = SpoolEncoder()
        t_enc = best(lambda c: encoder.encode(c), spool_chunks)
        encoded = b"".join(encoder.encode(c)[0] for c in spool_chunks)
        json_chunks = blocks(encoded)
        t_dec = best(decode, json_chunks)
        t_frame = best(frame, json_chunks)
        records = encoded.count(b"\n")
        print(f"{size:>6} {len(raw) / t_enc / 1e6:>12.0f} {len(encoded) / t_dec / 1e6:>12.0f} "
              f"{len(encoded) / t_frame / 1e6:>13.0f} {records / t_dec / 1e6:>9.2f}M")  # fmt: skip


if __name__ == "__main__":
    main()
