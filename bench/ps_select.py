#!/usr/bin/env python3
"""The cost of `model.containerquery.select` (the pure part of GET /containers/json).

    .venv/bin/python bench/ps_select.py [--containers N] [--rounds R]

Builds N containers (default 100; a third running) and times `select` R times (default 2,000)
for: `docker ps`, `docker ps -a`, a label filter (as compose sends), a name regex, and
status=exited. Prints the median per call. No daemon, no root.
"""

from __future__ import annotations

import argparse
import statistics
import time

from dockyard.model.containerquery import select
from dockyard.model.containers import Container, ContainerSpec, ContainerState, ContainerStatus
from dockyard.model.filters import Filters
from dockyard.model.times import format_ns


def _containers(n: int) -> list[Container]:
    out = []
    for i in range(n):
        status = ContainerStatus.RUNNING if i % 3 == 0 else ContainerStatus.EXITED
        out.append(
            Container(
                id=f"{i:064x}", name=f"project-web-{i}", created=format_ns(1_700_000_000_000_000_000 + i * 10**9),
                image_id="sha256:" + "a" * 64,
                spec=ContainerSpec(image="busybox", hostname="h", labels={
                    "com.docker.compose.project": "project" if i % 2 else "other",
                    "com.docker.compose.service": "web", "com.docker.compose.oneoff": "False",
                }),
                state=ContainerState(status=status, started_at=format_ns(1_700_000_000_000_000_000)),
                runtime="runc", rw_layer="rw",
            )
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    containers = _containers(args.containers)
    cases = {
        "ps": (Filters(), False),
        "ps -a": (Filters(), True),
        "label (compose)": (Filters.of({"label": ["com.docker.compose.project=project", "com.docker.compose.oneoff=False"]}), True),
        "name=^project-web-1": (Filters.of({"name": ["^project-web-1"]}), True),
        "status=exited": (Filters.of({"status": ["exited"]}), False),
    }  # fmt: skip
    for label, (filters, include_all) in cases.items():
        samples = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            found = select(containers, filters, include_all=include_all)
            samples.append(time.perf_counter() - t0)
        print(f"{label:24} {len(found):4} of {len(containers)}: median {statistics.median(samples) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
