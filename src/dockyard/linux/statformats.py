"""Text formats of the kernel's accounting files (cgroup v1/v2, /proc): pure parsers.

Each parser takes a file's text and returns values, following the rules dockerd's stack
(containerd's cgroups library, dockerd's /proc/stat reader) applies, so the figures match.
Kernel files are well formed; a line that is not is skipped rather than failing a sample.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockyard.model.stats import UINT64_MAX, BlkioEntry, InterfaceStats

# dockerd reads /proc/stat with a fixed USER_HZ of 100 (the value on every Linux arch).
CLOCK_TICKS = 100
_NS_PER_SECOND = 1_000_000_000
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_counter(text: str, *, unlimited: int) -> int:
    """One number in a cgroup file. "max" gives `unlimited` (v1 readers use 0, v2 readers
    UINT64_MAX); a negative value gives 0, as containerd's parseUint does; garbage gives 0."""
    value = text.strip()
    if value == "max":
        return unlimited
    if not _INTEGER.fullmatch(value):
        return 0
    number = int(value)
    if number < 0:
        return 0
    return min(number, UINT64_MAX)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and _INTEGER.fullmatch(parts[1]):
            out[parts[0]] = parse_counter(parts[1], unlimited=0)
    return out


def parse_percpu(text: str) -> tuple[int, ...]:
    """cpuacct.usage_percpu: one nanosecond count per possible CPU, space separated."""
    return tuple(parse_counter(v, unlimited=0) for v in text.split() if _INTEGER.fullmatch(v))


def ticks_to_ns(ticks: int) -> int:
    return ticks * _NS_PER_SECOND // CLOCK_TICKS


def parse_blkio_v1(text: str) -> tuple[BlkioEntry, ...]:
    """blkio.* lines `MAJ:MIN [Op] VALUE`; the closing `Total N` line is dropped."""
    entries: list[BlkioEntry] = []
    for line in text.splitlines():
        fields = [f for f in re.split(r"[ :]", line) if f]
        if len(fields) == 3:
            major, minor, op, value = fields[0], fields[1], "", fields[2]
        elif len(fields) == 4:
            major, minor, op, value = fields
        else:
            continue
        if not all(_INTEGER.fullmatch(v) for v in (major, minor, value)):
            continue
        entries.append(BlkioEntry(int(major), int(minor), op, parse_counter(value, unlimited=0)))
    return tuple(entries)


def parse_io_stat_v2(text: str) -> tuple[BlkioEntry, ...]:
    """io.stat `MAJ:MIN rbytes=.. wbytes=.. rios=.. ...` -> dockerd's read/write byte entries."""
    entries: list[BlkioEntry] = []
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) < 2:
            continue
        majmin = parts[0].split(":")
        if len(majmin) != 2 or not all(v.isascii() and v.isdigit() for v in majmin):
            continue
        keyed: dict[str, int] = {}
        for item in parts[1:]:
            key, sep, value = item.partition("=")
            if sep and value.isascii() and value.isdigit():
                keyed[key] = int(value)
        major, minor = int(majmin[0]), int(majmin[1])
        entries.append(BlkioEntry(major, minor, "read", keyed.get("rbytes", 0)))
        entries.append(BlkioEntry(major, minor, "write", keyed.get("wbytes", 0)))
    return tuple(entries)


def parse_proc_stat(text: str) -> tuple[int, int]:
    """/proc/stat -> (system CPU time in ns, online CPUs), as dockerd computes them: the sum of
    the first seven fields of the `cpu ` line (user..softirq, no steal/guest) in ticks of
    1/100 s, and the number of `cpuN` lines. Only the leading cpu lines are looked at."""
    system_ns = 0
    cpus = 0
    for line in text.split("\n"):
        if len(line) < 4 or not line.startswith("cpu"):
            break
        if line[3] == " ":
            parts = line.split()
            if len(parts) >= 8 and all(p.isascii() and p.isdigit() for p in parts[1:8]):
                system_ns = ticks_to_ns(sum(int(p) for p in parts[1:8]))
        elif "0" <= line[3] <= "9":
            cpus += 1
    return system_ns, cpus


def parse_net_dev(text: str) -> tuple[InterfaceStats, ...]:
    """/proc/<pid>/net/dev: the interfaces of that process's network namespace."""
    out: list[InterfaceStats] = []
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or len(values) < 16 or not all(v.isascii() and v.isdigit() for v in values):
            continue
        n = [int(v) for v in values]
        out.append(InterfaceStats(
            name=name.strip(), rx_bytes=n[0], rx_packets=n[1], rx_errors=n[2], rx_dropped=n[3],
            tx_bytes=n[8], tx_packets=n[9], tx_errors=n[10], tx_dropped=n[11],
        ))  # fmt: skip
    return tuple(out)


def parse_meminfo_total(text: str) -> int:
    """MemTotal of /proc/meminfo in bytes (dockerd's machine memory); 0 if absent."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "MemTotal":
            parts = rest.split()
            if parts and parts[0].isdigit():
                factor = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
                return int(parts[0]) * factor
    return 0


def parse_pid_list(text: str) -> frozenset[int]:
    """cgroup.procs / tasks: one pid a line."""
    return frozenset(int(v) for v in text.split() if v.isascii() and v.isdigit())


def sorted_stats(values: Mapping[str, int], keys: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """dockerd's fixed key set for memory_stats.stats, missing keys as 0, in JSON order (sorted)."""
    return tuple(sorted((k, values.get(k, 0)) for k in keys))
