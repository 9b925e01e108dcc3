"""`GET /containers/{id}/stats` documents in dockerd's shape (API 1.50, StatsResponse).

A document is a current sample plus the previous one (its cpu_stats become precpu_stats,
its read time preread). Key order and omissions follow Go's encoding of moby's struct:
`omitempty` drops zero numbers and empty maps but never a struct, nil lists are null, and
map keys (memory_stats.stats, networks) come out sorted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockyard.model.stats import (
    BlkioEntry,
    BlkioStats,
    CpuStats,
    InterfaceStats,
    MemoryStats,
    PidsStats,
    StatsSample,
)

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "no previous sample"
# dockerd lists only the interfaces its network sandbox made (eth0...), never the loopback.
_HIDDEN_INTERFACES = frozenset({"lo"})


def go_time(ns: int) -> str:
    """RFC 3339 with nanoseconds as Go writes it (time.RFC3339Nano): trailing zeros dropped."""
    if ns <= 0:
        return ZERO_TIME
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{base}{fraction}Z"


def _cpu(cpu: CpuStats) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": cpu.usage.total_ns}
    if cpu.usage.per_cpu_ns:
        usage["percpu_usage"] = list(cpu.usage.per_cpu_ns)
    usage["usage_in_kernelmode"] = cpu.usage.kernel_ns
    usage["usage_in_usermode"] = cpu.usage.user_ns
    doc: dict[str, Any] = {"cpu_usage": usage}
    if cpu.system_ns:
        doc["system_cpu_usage"] = cpu.system_ns
    if cpu.online_cpus:
        doc["online_cpus"] = cpu.online_cpus
    doc["throttling_data"] = {
        "periods": cpu.throttling.periods,
        "throttled_periods": cpu.throttling.throttled_periods,
        "throttled_time": cpu.throttling.throttled_ns,
    }
    return doc


def _memory(memory: MemoryStats | None) -> dict[str, Any]:
    if memory is None:
        return {}
    doc: dict[str, Any] = {}
    if memory.usage:
        doc["usage"] = memory.usage
    if memory.max_usage:
        doc["max_usage"] = memory.max_usage
    if memory.stats:
        doc["stats"] = dict(sorted(memory.stats))
    if memory.failcnt:
        doc["failcnt"] = memory.failcnt
    if memory.limit:
        doc["limit"] = memory.limit
    return doc


def _pids(pids: PidsStats | None) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if pids is not None and pids.current:
        doc["current"] = pids.current
    if pids is not None and pids.limit:
        doc["limit"] = pids.limit
    return doc


def _entries(entries: tuple[BlkioEntry, ...] | None) -> list[dict[str, Any]] | None:
    if entries is None:
        return None
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in entries]


def _blkio(blkio: BlkioStats | None) -> dict[str, Any]:
    b = blkio if blkio is not None else BlkioStats()
    return {
        "io_service_bytes_recursive": _entries(b.service_bytes),
        "io_serviced_recursive": _entries(b.serviced),
        "io_queue_recursive": _entries(b.queued),  # sic: moby's JSON name
        "io_service_time_recursive": _entries(b.service_time),
        "io_wait_time_recursive": _entries(b.wait_time),
        "io_merged_recursive": _entries(b.merged),
        "io_time_recursive": _entries(b.time),
        "sectors_recursive": _entries(b.sectors),
    }


def _interface(i: InterfaceStats) -> dict[str, int]:
    return {
        "rx_bytes": i.rx_bytes, "rx_packets": i.rx_packets, "rx_errors": i.rx_errors,
        "rx_dropped": i.rx_dropped, "tx_bytes": i.tx_bytes, "tx_packets": i.tx_packets,
        "tx_errors": i.tx_errors, "tx_dropped": i.tx_dropped,
    }  # fmt: skip


def stats_document(
    current: StatsSample | None, previous: StatsSample | None, *, name: str, container_id: str
) -> dict[str, Any]:
    """One stats document. `current` None: the container is not running (dockerd then sends
    only name and id over zero values). `previous` None: the first of a stream, or one-shot."""
    doc: dict[str, Any] = {
        "name": name if name.startswith("/") else "/" + name,
        "id": container_id,
        "read": go_time(current.read_ns) if current is not None else ZERO_TIME,
        "preread": go_time(previous.read_ns) if previous is not None else ZERO_TIME,
        "pids_stats": _pids(current.pids if current is not None else None),
        "blkio_stats": _blkio(current.blkio if current is not None else None),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(current.cpu if current is not None else CpuStats()),
        "precpu_stats": _cpu(previous.cpu if previous is not None else CpuStats()),
        "memory_stats": _memory(current.memory if current is not None else None),
    }
    if current is not None and current.networks is not None:
        shown = sorted(
            (i for i in current.networks if i.name not in _HIDDEN_INTERFACES), key=lambda i: i.name
        )
        if shown:
            doc["networks"] = {i.name: _interface(i) for i in shown}
    return doc
