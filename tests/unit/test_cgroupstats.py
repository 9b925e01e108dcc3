"""Samples from cgroup v1 and v2 file texts (recorded on real hosts), and the reader on a
directory tree laid out like /sys/fs/cgroup and /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux.cgroups import CgroupLayout
from dockyard.linux.cgroupstats import (
    V1_MEMORY_KEYS,
    V2_MEMORY_KEYS,
    CgroupStatsReader,
    v1_sample,
    v2_sample,
)
from dockyard.model.stats import (
    UINT64_MAX,
    BlkioEntry,
    BlkioStats,
    CpuUsage,
    InterfaceStats,
    MemoryStats,
    PidsStats,
    Throttling,
    cpu_percent,
    memory_used,
)

MACHINE = 24684084 * 1024
PROC_STAT = "cpu  12031 0 4282 92850 419 0 68 188 0 0\ncpu0 4812 0 1783 48198 43 0 13 83 0 0\ncpu1 7219 0 2498 44652 376 0 54 104 0 0\nintr 1\n"
NET_DEV = (
    "Inter-|   Receive |  Transmit\n face |bytes packets ...\n"
    "    lo:     168       2    0    0    0     0          0         0      168       2    0    0    0     0       0          0\n"
)

# Recorded on this project's hybrid host (kernel 6.18), a busybox container with -m 64m.
V1_MEMORY_STAT = """\
cache 4096
rss 397312
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
workingset_refault_anon 0
workingset_refault_file 0
swap 0
swapcached 0
pgpgin 231
pgpgout 133
pgfault 363
pgmajfault 0
inactive_anon 393216
active_anon 4096
inactive_file 4096
active_file 0
unevictable 0
hierarchical_memory_limit 67108864
hierarchical_memsw_limit 9223372036854771712
total_cache 4096
total_rss 397312
total_rss_huge 0
total_shmem 0
total_mapped_file 0
total_dirty 0
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 0
total_swap 0
total_swapcached 0
total_pgpgin 231
total_pgpgout 133
total_pgfault 363
total_pgmajfault 0
total_inactive_anon 393216
total_active_anon 4096
total_inactive_file 4096
total_active_file 0
total_unevictable 0
"""

V1_FILES = {
    "cpuacct/cpuacct.usage": "1530421187\n",
    "cpuacct/cpuacct.usage_percpu": "731090442 799330745 \n",
    "cpuacct/cpuacct.stat": "user 148\nsystem 3\n",
    "cpu/cpu.stat": "nr_periods 14\nnr_throttled 2\nthrottled_time 73455081\nnr_bursts 0\nburst_time 0\n",
    "memory/memory.stat": V1_MEMORY_STAT,
    "memory/memory.usage_in_bytes": "638976\n",
    "memory/memory.max_usage_in_bytes": "2002944\n",
    "memory/memory.failcnt": "0\n",
    "memory/memory.limit_in_bytes": "67108864\n",
    "pids/pids.current": "2\n",
    "pids/pids.max": "max\n",
    "blkio/blkio.throttle.io_serviced": "254:0 Read 3\n254:0 Write 1\n254:0 Sync 4\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 4\nTotal 4\n",
    "blkio/blkio.throttle.io_service_bytes": "254:0 Read 12288\n254:0 Write 4096\n254:0 Sync 16384\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 16384\nTotal 16384\n",
}

# A cgroup v2 host (kernel 6.1, runc with -m 64m --pids-limit unset).
V2_MEMORY_STAT = """\
anon 2269184
file 4096000
kernel 401408
kernel_stack 49152
pagetables 77824
sec_pagetables 0
percpu 480
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 2220032
file_dirty 4096
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 2265088
active_anon 4096
inactive_file 3072000
active_file 1024000
unevictable 0
slab_reclaimable 160104
slab_unreclaimable 92096
slab 252200
workingset_refault_anon 0
workingset_refault_file 7
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgscan_kswapd 0
pgscan_direct 0
pgsteal_kswapd 0
pgsteal_direct 0
pgfault 1402
pgmajfault 12
pgrefill 0
pgactivate 3
pgdeactivate 0
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
thp_fault_alloc 0
thp_collapse_alloc 0
"""

V2_FILES = {
    "cpu.stat": (
        "usage_usec 2834211\nuser_usec 2121090\nsystem_usec 713121\ncore_sched.force_idle_usec 0\n"
        "nr_periods 120\nnr_throttled 7\nthrottled_usec 89123\nnr_bursts 0\nburst_usec 0\n"
    ),
    "memory.stat": V2_MEMORY_STAT,
    "memory.current": "6987776\n",
    "memory.max": "67108864\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    "pids.current": "3\n",
    "pids.max": "max\n",
    "io.stat": "254:0 rbytes=1458176 wbytes=8192 rios=48 wios=2 dbytes=0 dios=0\n",
}


def _v1(files: dict[str, str], **kw: object) -> object:
    args: dict[str, object] = {
        "read_ns": 7,
        "proc_stat": PROC_STAT,
        "machine_memory": MACHINE,
        "net_dev": None,
    }
    args.update(kw)
    return v1_sample(files, **args)  # type: ignore[arg-type]


def test_v1_sample_from_recorded_files() -> None:
    s = v1_sample(V1_FILES, read_ns=7, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=NET_DEV)
    assert s.read_ns == 7
    assert s.cpu.usage == CpuUsage(
        total_ns=1530421187,
        kernel_ns=30_000_000,
        user_ns=1_480_000_000,
        per_cpu_ns=(731090442, 799330745),
    )
    assert s.cpu.throttling == Throttling(periods=14, throttled_periods=2, throttled_ns=73455081)
    assert s.cpu.system_ns == (12031 + 4282 + 92850 + 419 + 68) * 10_000_000
    assert s.cpu.online_cpus == 2
    assert s.memory is not None
    assert (s.memory.usage, s.memory.max_usage, s.memory.limit, s.memory.failcnt) == (
        638976,
        2002944,
        67108864,
        0,
    )
    assert [k for k, _ in s.memory.stats] == sorted(V1_MEMORY_KEYS)
    assert s.memory.stat("total_inactive_file") == 4096
    assert s.memory.stat("hierarchical_memsw_limit") == 9223372036854771712  # not capped: raw
    assert s.memory.stat("swap") is None  # not one of dockerd's keys
    assert s.pids == PidsStats(current=2, limit=0)  # v1: "max" is 0
    assert s.blkio is not None
    assert s.blkio.service_bytes is not None and s.blkio.service_bytes[:2] == (
        BlkioEntry(254, 0, "Read", 12288),
        BlkioEntry(254, 0, "Write", 4096),
    )
    assert s.blkio.serviced is not None and len(s.blkio.serviced) == 6
    assert s.blkio.queued == () and s.blkio.sectors == ()  # no CFQ: empty lists, not null
    assert s.networks == (InterfaceStats("lo", 168, 2, 0, 0, 168, 2, 0, 0),)
    assert memory_used(s.memory) == 638976 - 4096


def test_v1_unlimited_memory_shows_the_machine_memory() -> None:
    files = dict(V1_FILES, **{"memory/memory.limit_in_bytes": "9223372036854771712\n"})
    s = _v1(files)
    assert s.memory.limit == MACHINE  # type: ignore[attr-defined]
    s = _v1(files, machine_memory=0)  # unknown machine memory: the raw value
    assert s.memory.limit == 9223372036854771712  # type: ignore[attr-defined]


def test_v1_pids_limit_and_missing_controllers() -> None:
    s = _v1(dict(V1_FILES, **{"pids/pids.max": "512\n"}))
    assert s.pids == PidsStats(current=2, limit=512)  # type: ignore[attr-defined]
    bare = {k: v for k, v in V1_FILES.items() if k.startswith("cpu")}
    s = _v1(bare)
    assert s.memory is None and s.pids is None and s.blkio is None  # type: ignore[attr-defined]
    assert s.cpu.usage.total_ns == 1530421187  # type: ignore[attr-defined]
    s = _v1({})
    assert s.cpu.usage == CpuUsage() and s.cpu.system_ns > 0  # type: ignore[attr-defined]


def test_v1_blkio_prefers_cfq_files_with_entries() -> None:
    cfq = {f"blkio/blkio.{n}": "" for n in (
        "sectors_recursive", "io_service_bytes_recursive", "io_serviced_recursive", "io_queued_recursive",
        "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "time_recursive",
    )}  # fmt: skip
    cfq["blkio/blkio.io_service_bytes_recursive"] = "8:0 Read 100\n8:0 Write 50\nTotal 150\n"
    cfq["blkio/blkio.sectors_recursive"] = "8:0 2\n"
    s = _v1(dict(V1_FILES, **cfq))
    assert s.blkio.service_bytes == (BlkioEntry(8, 0, "Read", 100), BlkioEntry(8, 0, "Write", 50))  # type: ignore[attr-defined]
    assert s.blkio.sectors == (BlkioEntry(8, 0, "", 2),)  # type: ignore[attr-defined]
    assert s.blkio.serviced == ()  # type: ignore[attr-defined]  # not taken from throttle
    # CFQ files present but all empty: the throttle files, as containerd falls back.
    empty = {k: "" for k in cfq}
    s = _v1(dict(V1_FILES, **empty))
    assert s.blkio.service_bytes[0] == BlkioEntry(254, 0, "Read", 12288)  # type: ignore[attr-defined]
    assert s.blkio.merged == ()  # type: ignore[attr-defined]


def test_v2_sample_from_recorded_files() -> None:
    s = v2_sample(V2_FILES, read_ns=9, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=None)
    assert s.cpu.usage == CpuUsage(total_ns=2834211000, kernel_ns=713121000, user_ns=2121090000)
    assert s.cpu.throttling == Throttling(periods=120, throttled_periods=7, throttled_ns=89123000)
    assert s.cpu.online_cpus == 2
    assert s.memory is not None
    assert (s.memory.usage, s.memory.max_usage, s.memory.limit, s.memory.failcnt) == (
        6987776,
        0,
        67108864,
        1,
    )
    assert [k for k, _ in s.memory.stats] == sorted(V2_MEMORY_KEYS)
    assert s.memory.stat("inactive_file") == 3072000
    assert s.memory.stat("workingset_refault") == 0  # newer kernels split it: dockerd shows 0
    assert s.memory.stat("kernel") is None
    assert s.pids == PidsStats(current=3, limit=UINT64_MAX)  # v2: "max" is MaxUint64 in dockerd
    assert s.blkio == BlkioStats(
        service_bytes=(BlkioEntry(254, 0, "read", 1458176), BlkioEntry(254, 0, "write", 8192))
    )
    assert s.networks is None
    assert memory_used(s.memory) == 6987776 - 3072000


def test_v2_unlimited_and_missing_files() -> None:
    files = dict(V2_FILES, **{"memory.max": "max\n", "pids.max": "100\n", "io.stat": ""})
    s = v2_sample(files, read_ns=1, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=None)
    assert s.memory is not None and s.memory.limit == MACHINE
    assert s.pids == PidsStats(current=3, limit=100)
    assert s.blkio == BlkioStats()  # no devices: null, as dockerd's nil slice
    s = v2_sample({}, read_ns=1, proc_stat="", machine_memory=MACHINE, net_dev=None)
    assert s.memory == MemoryStats(stats=tuple((k, 0) for k in sorted(V2_MEMORY_KEYS)))
    assert s.pids == PidsStats()
    assert s.cpu.system_ns == 0 and s.cpu.online_cpus == 0


def test_cpu_percent_between_two_v1_samples() -> None:
    a = _v1(V1_FILES)
    later = dict(V1_FILES, **{"cpuacct/cpuacct.usage": str(1530421187 + 500_000_000)})
    stat2 = "cpu  12131 0 4282 92950 419 0 68 0 0 0\ncpu0 1\ncpu1 1\n"  # +200 ticks = 2 s of 2 CPUs
    b = _v1(later, proc_stat=stat2)
    # 0.5 s of CPU in 2 s of system time across 2 CPUs: 50 % of one CPU
    assert cpu_percent(a.cpu, b.cpu) == pytest.approx(50.0)  # type: ignore[attr-defined]
    assert cpu_percent(b.cpu, a.cpu) == 0.0  # type: ignore[attr-defined]


def _tree(tmp_path: Path, layout: CgroupLayout, rel: str = "dockyard/abc") -> tuple[Path, Path]:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    (proc / "4242" / "net").mkdir(parents=True)
    (proc / "stat").write_text(PROC_STAT)
    (proc / "meminfo").write_text("MemTotal:       24684084 kB\n")
    (proc / "4242" / "net" / "dev").write_text(NET_DEV)
    if layout is CgroupLayout.V2:
        (root / rel / "sub").mkdir(parents=True)
        (root / "cgroup.controllers").write_text("cpu memory pids io\n")
        for name, text in V2_FILES.items():
            (root / rel / name).write_text(text)
        (root / rel / "cgroup.procs").write_text("4242\n4250\n")
        (root / rel / "sub" / "cgroup.procs").write_text("4300\n")
        return root, proc
    for name, text in V1_FILES.items():
        controller, _, file = name.partition("/")
        mount = "cpu,cpuacct" if controller in ("cpu", "cpuacct") else controller
        (root / mount / rel).mkdir(parents=True, exist_ok=True)
        (root / mount / rel / file).write_text(text)
    for controller in ("pids", "devices"):
        (root / controller / rel).mkdir(parents=True, exist_ok=True)
        (root / controller / rel / "cgroup.procs").write_text("4242\n")
    (root / "pids" / rel / "child").mkdir()
    (root / "pids" / rel / "child" / "cgroup.procs").write_text("4243\n")
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.controllers").write_text("")
    return root, proc


def test_reader_on_a_v1_tree_with_comounted_cpu_cpuacct(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, CgroupLayout.HYBRID)
    reader = CgroupStatsReader(str(root), str(proc))
    assert reader.layout is CgroupLayout.HYBRID
    assert reader.machine_memory == MACHINE
    s = reader.sample("/dockyard/abc", 4242)
    assert s is not None
    assert s == v1_sample(
        V1_FILES, read_ns=s.read_ns, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=NET_DEV
    )
    assert s.read_ns > 0
    assert reader.sample("/dockyard/abc", 4242, networks=False).networks is None  # type: ignore[union-attr]
    assert reader.sample("/dockyard/abc", 999999).networks is None  # type: ignore[union-attr]  # no such pid
    assert reader.sample("/dockyard/gone", 4242) is None
    assert reader.pids("/dockyard/abc") == {4242, 4243}
    assert reader.pids("/dockyard/gone") == frozenset()


def test_reader_on_a_v2_tree(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, CgroupLayout.V2)
    reader = CgroupStatsReader(str(root), str(proc))
    assert reader.layout is CgroupLayout.V2
    s = reader.sample("dockyard/abc/", 4242)
    assert s is not None
    assert s == v2_sample(
        V2_FILES, read_ns=s.read_ns, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=NET_DEV
    )
    assert reader.pids("/dockyard/abc") == {4242, 4250, 4300}
    assert reader.sample("/dockyard/gone", 1) is None


@pytest.mark.parametrize("path", ["", "/", "/dockyard/../etc", "/dockyard/./x", ".."])
def test_reader_refuses_paths_that_leave_the_hierarchy(tmp_path: Path, path: str) -> None:
    root, proc = _tree(tmp_path, CgroupLayout.V2)
    reader = CgroupStatsReader(str(root), str(proc))
    with pytest.raises(InvalidArgument):
        reader.sample(path, 1)
    with pytest.raises(InvalidArgument):
        reader.pids(path)
