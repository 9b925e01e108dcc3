"""A container's resource usage, read from its cgroup and its network namespace.

`v1_sample` and `v2_sample` are pure: file texts in, a StatsSample out (tested with recorded
texts). `CgroupStatsReader` does the reading: a dozen small sysfs/procfs files per sample,
blocking but well under a millisecond, so the engine runs it in a thread.

The cgroup path is the OCI `cgroupsPath` (`/dockyard/<id>`), relative to each hierarchy's
mount. On a hybrid host the v1 controllers hold the accounting (the v2 mount has none), so
HYBRID reads like V1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from dockyard.errors import InvalidArgument
from dockyard.linux.cgroups import CgroupLayout, cgroup_layout
from dockyard.linux.statformats import (
    parse_blkio_v1,
    parse_counter,
    parse_flat_keyed,
    parse_io_stat_v2,
    parse_meminfo_total,
    parse_net_dev,
    parse_percpu,
    parse_pid_list,
    parse_proc_stat,
    sorted_stats,
    ticks_to_ns,
)
from dockyard.model.stats import (
    UINT64_MAX,
    BlkioEntry,
    BlkioStats,
    CpuStats,
    CpuUsage,
    InterfaceStats,
    MemoryStats,
    PidsStats,
    StatsSample,
    Throttling,
)

# The keys dockerd puts in memory_stats.stats, per cgroup version (missing ones are 0).
V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout",
    "pgfault", "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file",
    "unevictable", "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache",
    "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty", "total_writeback",
    "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault", "total_inactive_anon",
    "total_active_anon", "total_inactive_file", "total_active_file", "total_unevictable",
)  # fmt: skip
V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
    "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file",
    "unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault",
    "workingset_refault", "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan",
    "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc",
    "thp_collapse_alloc",
)  # fmt: skip

# v1 files a sample reads, as "<controller>/<file>".
_CFQ = (  # (file, BlkioStats field), read only where the CFQ scheduler's files exist
    ("sectors_recursive", "sectors"), ("io_service_bytes_recursive", "service_bytes"),
    ("io_serviced_recursive", "serviced"), ("io_queued_recursive", "queued"),
    ("io_service_time_recursive", "service_time"), ("io_wait_time_recursive", "wait_time"),
    ("io_merged_recursive", "merged"), ("time_recursive", "time"),
)  # fmt: skip
V1_FILES = (
    "cpuacct/cpuacct.usage", "cpuacct/cpuacct.usage_percpu", "cpuacct/cpuacct.stat",
    "cpu/cpu.stat", "memory/memory.stat", "memory/memory.usage_in_bytes",
    "memory/memory.max_usage_in_bytes", "memory/memory.failcnt", "memory/memory.limit_in_bytes",
    "pids/pids.current", "pids/pids.max",
    "blkio/blkio.throttle.io_serviced", "blkio/blkio.throttle.io_service_bytes",
)  # fmt: skip
V1_CFQ_FILES = tuple(f"blkio/blkio.{name}" for name, _ in _CFQ)
V2_FILES = (
    "cpu.stat", "memory.stat", "memory.current", "memory.max", "memory.events",
    "pids.current", "pids.max", "io.stat",
)  # fmt: skip


def _cap(limit: int, machine_memory: int) -> int:
    # dockerd shows the machine's memory instead of an "unlimited" limit.
    return machine_memory if machine_memory > 0 and limit > machine_memory else limit


def _networks(net_dev: str | None) -> tuple[InterfaceStats, ...] | None:
    return None if net_dev is None else parse_net_dev(net_dev)


def v1_sample(
    files: Mapping[str, str],
    *,
    read_ns: int,
    proc_stat: str,
    machine_memory: int,
    net_dev: str | None,
) -> StatsSample:
    """A sample from cgroup v1 file texts keyed as in V1_FILES/V1_CFQ_FILES (absent: not there)."""

    def num(name: str) -> int:
        return parse_counter(files.get(name, ""), unlimited=0)

    acct = parse_flat_keyed(files.get("cpuacct/cpuacct.stat", ""))
    throttle = parse_flat_keyed(files.get("cpu/cpu.stat", ""))
    system_ns, cpus = parse_proc_stat(proc_stat)
    cpu = CpuStats(
        usage=CpuUsage(
            total_ns=num("cpuacct/cpuacct.usage"),
            kernel_ns=ticks_to_ns(acct.get("system", 0)),
            user_ns=ticks_to_ns(acct.get("user", 0)),
            per_cpu_ns=parse_percpu(files.get("cpuacct/cpuacct.usage_percpu", "")),
        ),
        throttling=Throttling(
            periods=throttle.get("nr_periods", 0),
            throttled_periods=throttle.get("nr_throttled", 0),
            throttled_ns=throttle.get("throttled_time", 0),
        ),
        system_ns=system_ns,
        online_cpus=cpus,
    )
    memory = None
    if "memory/memory.stat" in files:
        memory = MemoryStats(
            usage=num("memory/memory.usage_in_bytes"),
            max_usage=num("memory/memory.max_usage_in_bytes"),
            limit=_cap(num("memory/memory.limit_in_bytes"), machine_memory),
            failcnt=num("memory/memory.failcnt"),
            stats=sorted_stats(parse_flat_keyed(files["memory/memory.stat"]), V1_MEMORY_KEYS),
        )
    pids = None
    if "pids/pids.current" in files:
        pids = PidsStats(current=num("pids/pids.current"), limit=num("pids/pids.max"))
    return StatsSample(
        read_ns=read_ns, cpu=cpu, memory=memory, pids=pids, blkio=_blkio_v1(files),
        networks=_networks(net_dev),
    )  # fmt: skip


def _blkio_v1(files: Mapping[str, str]) -> BlkioStats | None:
    blkio_files = [name for name in files if name.startswith("blkio/")]
    if not blkio_files:
        return None
    # containerd's rule: the CFQ files when they exist and hold entries, else the throttle files.
    lists: dict[str, tuple[BlkioEntry, ...]] = {field: () for _, field in _CFQ}
    if "blkio/blkio.io_serviced_recursive" in files:
        lists = {
            field: parse_blkio_v1(files.get(f"blkio/blkio.{name}", "")) for name, field in _CFQ
        }
    if not any(lists.values()):
        lists["serviced"] = parse_blkio_v1(files.get("blkio/blkio.throttle.io_serviced", ""))
        lists["service_bytes"] = parse_blkio_v1(
            files.get("blkio/blkio.throttle.io_service_bytes", "")
        )
    return BlkioStats(**lists)


def v2_sample(
    files: Mapping[str, str],
    *,
    read_ns: int,
    proc_stat: str,
    machine_memory: int,
    net_dev: str | None,
) -> StatsSample:
    """A sample from cgroup v2 file texts keyed by V2_FILES names (absent: not there)."""

    def num(name: str) -> int:
        return parse_counter(files.get(name, ""), unlimited=UINT64_MAX)

    cpu_stat = parse_flat_keyed(files.get("cpu.stat", ""))
    system_ns, cpus = parse_proc_stat(proc_stat)
    cpu = CpuStats(
        usage=CpuUsage(
            total_ns=cpu_stat.get("usage_usec", 0) * 1000,
            kernel_ns=cpu_stat.get("system_usec", 0) * 1000,
            user_ns=cpu_stat.get("user_usec", 0) * 1000,
        ),
        throttling=Throttling(
            periods=cpu_stat.get("nr_periods", 0),
            throttled_periods=cpu_stat.get("nr_throttled", 0),
            throttled_ns=cpu_stat.get("throttled_usec", 0) * 1000,
        ),
        system_ns=system_ns,
        online_cpus=cpus,
    )
    events = parse_flat_keyed(files.get("memory.events", ""))
    memory = MemoryStats(
        usage=num("memory.current"),
        limit=_cap(num("memory.max"), machine_memory),
        failcnt=events.get("oom", 0),
        stats=sorted_stats(parse_flat_keyed(files.get("memory.stat", "")), V2_MEMORY_KEYS),
    )
    pids = PidsStats(current=num("pids.current"), limit=num("pids.max"))
    io = parse_io_stat_v2(files.get("io.stat", ""))
    return StatsSample(
        read_ns=read_ns, cpu=cpu, memory=memory, pids=pids,
        blkio=BlkioStats(service_bytes=io or None), networks=_networks(net_dev),
    )  # fmt: skip


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:  # gone (container exited), or a file this kernel does not have
        return None


def _relative(cgroups_path: str) -> str:
    parts = [p for p in cgroups_path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup path {cgroups_path!r}")
    return "/".join(parts)


class CgroupStatsReader:
    """Reads samples and pid lists for containers on this host. Blocking: call it in a thread."""

    def __init__(
        self, root: str = "/sys/fs/cgroup", proc: str = "/proc", layout: CgroupLayout | None = None
    ) -> None:
        self.root = root
        self.proc = proc
        self.layout = layout if layout is not None else cgroup_layout(root)
        self.machine_memory = parse_meminfo_total(_read(os.path.join(proc, "meminfo")) or "")
        self._controllers = {
            c: self._mount_of(c) for c in ("cpu", "cpuacct", "memory", "pids", "blkio", "devices")
        }

    def _mount_of(self, controller: str) -> str:
        """The v1 hierarchy holding `controller`: its own directory, or a co-mount like cpu,cpuacct."""
        direct = os.path.join(self.root, controller)
        if os.path.isdir(direct) or self.layout is CgroupLayout.V2:
            return direct
        try:
            names = os.listdir(self.root)
        except OSError:
            return direct
        for name in sorted(names):
            if controller in name.split(","):
                return os.path.join(self.root, name)
        return direct

    def _v1_dir(self, controller: str, rel: str) -> str:
        return os.path.join(self._controllers[controller], rel)

    def sample(self, cgroups_path: str, pid: int, *, networks: bool = True) -> StatsSample | None:
        """The container's sample now; None when its cgroup is gone (it is not running).
        `networks`: read /proc/<pid>/net/dev (leave off for a container in the host's netns)."""
        rel = _relative(cgroups_path)
        read_ns = time.time_ns()
        files: dict[str, str] = {}
        if self.layout is CgroupLayout.V2:
            base = os.path.join(self.root, rel)
            if not os.path.isdir(base):
                return None
            for name in V2_FILES:
                if (text := _read(os.path.join(base, name))) is not None:
                    files[name] = text
        else:
            if not os.path.isdir(self._v1_dir("cpuacct", rel)):
                return None
            wanted = list(V1_FILES)
            if os.path.exists(
                os.path.join(self._v1_dir("blkio", rel), "blkio.io_serviced_recursive")
            ):
                wanted += V1_CFQ_FILES
            for name in wanted:
                controller, _, file = name.partition("/")
                if (text := _read(os.path.join(self._v1_dir(controller, rel), file))) is not None:
                    files[name] = text
        # /proc/stat right after the cgroup files, so both deltas cover the same interval.
        proc_stat = _read(os.path.join(self.proc, "stat")) or ""
        net_dev = (
            _read(os.path.join(self.proc, str(pid), "net", "dev")) if networks and pid > 0 else None
        )
        build = v2_sample if self.layout is CgroupLayout.V2 else v1_sample
        return build(
            files,
            read_ns=read_ns,
            proc_stat=proc_stat,
            machine_memory=self.machine_memory,
            net_dev=net_dev,
        )

    def pids(self, cgroups_path: str) -> frozenset[int]:
        """Every process in the container's cgroup and its sub-cgroups; empty when it is gone."""
        rel = _relative(cgroups_path)
        if self.layout is CgroupLayout.V2:
            candidates = [os.path.join(self.root, rel)]
        else:
            candidates = [self._v1_dir(c, rel) for c in ("pids", "devices", "memory", "cpuacct")]
        for top in candidates:
            if not os.path.isdir(top):
                continue
            found: set[int] = set()
            for directory, _, _ in os.walk(top):
                found |= parse_pid_list(_read(os.path.join(directory, "cgroup.procs")) or "")
            return frozenset(found)
        return frozenset()
