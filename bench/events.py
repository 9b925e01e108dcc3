#!/usr/bin/env python3
"""The cost of one event publish (SQLite row + trim) and of a full replay, in-process.

    .venv/bin/python bench/events.py [--events N] [--keep K] [--trim-every T]

Publishes N events (default 30,000) with container-like attributes through EventBus into a
database on a temporary directory (the daemon's settings: WAL, synchronous=NORMAL), timing
each publish with perf_counter; prints median, p99 and max, and the publishes that trimmed
apart. Then times one replay of the whole kept history (GET /events?since=0&until=now)
and one with a filter that matches nothing. No daemon, no root.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dockyard.engine.events import EventBus
from dockyard.model.events import EventFilter, EventWindow
from dockyard.model.filters import Filters
from dockyard.store.db import Database
from dockyard.store.events import DEFAULT_KEEP, DEFAULT_TRIM_EVERY, EventRepository


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP)
    parser.add_argument("--trim-every", type=int, default=DEFAULT_TRIM_EVERY)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dy-bench-events-") as tmp:
        db = Database(Path(tmp) / "dockyard.db")
        try:
            repo = EventRepository(db, keep=args.keep, trim_every=args.trim_every)
            bus = EventBus(repo)
            attrs = {
                "image": "busybox:latest", "name": "project-web-1", "exitCode": "0",
                "com.docker.compose.project": "project", "com.docker.compose.service": "web",
                "com.docker.compose.config-hash": "f" * 64,
            }  # fmt: skip
            plain: list[float] = []
            trimming: list[float] = []
            for i in range(args.events):
                t0 = time.perf_counter()
                bus.publish("container", "die", f"{i:064x}", attrs)
                elapsed = time.perf_counter() - t0
                (trimming if (i + 1) % args.trim_every == 0 else plain).append(elapsed)
            print(f"publish x{len(plain)}: median {_ms(statistics.median(plain))}, "
                  f"p99 {_ms(statistics.quantiles(plain, n=100)[98])}, max {_ms(max(plain))}")  # fmt: skip
            if trimming:
                print(f"publish that trims x{len(trimming)}: median {_ms(statistics.median(trimming))}, "
                      f"max {_ms(max(trimming))}")  # fmt: skip
            print(f"rows kept: {repo.count()} (keep {args.keep}, trim every {args.trim_every})")

            async def replay(match: EventFilter) -> tuple[int, float]:
                t0 = time.perf_counter()
                n = 0
                async for _ in bus.follow(EventWindow(0, time.time_ns(), True), match.matches):
                    n += 1
                return n, time.perf_counter() - t0

            n, took = asyncio.run(replay(EventFilter()))
            print(f"replay of {n} stored events: {_ms(took)}")
            n, took = asyncio.run(replay(EventFilter.parse(Filters.of({"type": ["image"]}))))
            print(f"replay with a filter matching {n}: {_ms(took)}")
        finally:
            db.close()


if __name__ == "__main__":
    main()
