"""One resource-usage sample of a container, and the docker CLI's arithmetic on two of them.

Values are what dockerd reports (nanoseconds, bytes, counts), already converted from the
cgroup version's own units, so a renderer needs no knowledge of cgroup v1 versus v2.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

UINT64_MAX = 2**64 - 1
STATS_INTERVAL = 1.0  # seconds between samples of a stream, and between a primed pair


class StatsMode(enum.StrEnum):
    """How `GET /containers/{id}/stats` answers (dockerd 28's three ways)."""

    STREAM = "stream"  # stream=1: a document now (no precpu), then one per interval
    PRIMED = (
        "primed"  # stream=0: two samples an interval apart, one document (the CLI's --no-stream)
    )
    ONE_SHOT = "one-shot"  # stream=0&one-shot=1 (API >= 1.41): one sample, zero precpu, at once


def stats_mode(stream: bool, one_shot: bool) -> StatsMode:
    if stream and one_shot:
        raise InvalidArgument("cannot have stream=true and one-shot=true")
    if one_shot:
        return StatsMode.ONE_SHOT
    return StatsMode.STREAM if stream else StatsMode.PRIMED


@dataclass(frozen=True)
class CpuUsage:
    total_ns: int = 0
    kernel_ns: int = 0
    user_ns: int = 0
    per_cpu_ns: tuple[int, ...] = ()  # cgroup v1 only


@dataclass(frozen=True)
class Throttling:
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@dataclass(frozen=True)
class CpuStats:
    usage: CpuUsage = CpuUsage()
    throttling: Throttling = Throttling()
    system_ns: int = 0  # the host's busy+idle time from /proc/stat, as dockerd sums it
    online_cpus: int = 0


@dataclass(frozen=True)
class MemoryStats:
    usage: int = 0
    max_usage: int = 0  # cgroup v1 only
    limit: int = 0  # already capped at the machine's memory, as dockerd does
    failcnt: int = 0  # v1: memory.failcnt; v2: the "oom" count of memory.events
    stats: tuple[tuple[str, int], ...] = ()  # dockerd's key set for the cgroup version, sorted

    def stat(self, key: str) -> int | None:
        for name, value in self.stats:
            if name == key:
                return value
        return None


@dataclass(frozen=True)
class PidsStats:
    current: int = 0
    limit: int = 0  # v1: 0 when unlimited; v2: UINT64_MAX when unlimited (dockerd's quirk)


@dataclass(frozen=True)
class BlkioEntry:
    major: int
    minor: int
    op: str
    value: int


@dataclass(frozen=True)
class BlkioStats:
    """None marks a list dockerd renders as null (cgroup v2 fills only service_bytes)."""

    service_bytes: tuple[BlkioEntry, ...] | None = None
    serviced: tuple[BlkioEntry, ...] | None = None
    queued: tuple[BlkioEntry, ...] | None = None
    service_time: tuple[BlkioEntry, ...] | None = None
    wait_time: tuple[BlkioEntry, ...] | None = None
    merged: tuple[BlkioEntry, ...] | None = None
    time: tuple[BlkioEntry, ...] | None = None
    sectors: tuple[BlkioEntry, ...] | None = None


@dataclass(frozen=True)
class InterfaceStats:
    name: str
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class StatsSample:
    read_ns: int  # wall clock, unix nanoseconds
    cpu: CpuStats = CpuStats()
    memory: MemoryStats | None = None  # None: no memory controller
    pids: PidsStats | None = None
    blkio: BlkioStats | None = None
    networks: tuple[InterfaceStats, ...] | None = None  # None: not read (no own network namespace)


def cpu_percent(previous: CpuStats, current: CpuStats) -> float:
    """CPU % exactly as the docker CLI computes it from precpu_stats and cpu_stats."""
    cpu_delta = current.usage.total_ns - previous.usage.total_ns
    system_delta = current.system_ns - previous.system_ns
    cpus = current.online_cpus or len(current.usage.per_cpu_ns)
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * cpus * 100.0
    return 0.0


def memory_used(memory: MemoryStats) -> int:
    """The CLI's MEM USAGE: usage minus inactive file pages (v1 total_inactive_file, v2 inactive_file)."""
    v1 = memory.stat("total_inactive_file")
    if v1 is not None and v1 < memory.usage:
        return memory.usage - v1
    v2 = memory.stat("inactive_file") or 0
    if v2 < memory.usage:
        return memory.usage - v2
    return memory.usage


def memory_percent(memory: MemoryStats) -> float:
    return memory_used(memory) / memory.limit * 100.0 if memory.limit else 0.0
