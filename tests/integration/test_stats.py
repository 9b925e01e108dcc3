"""Stats and top on a real container (conmon + runc + overlayfs, real cgroups), no daemon."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.api.schemas.stats import stats_document
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.cgroups import CgroupLayout
from dockyard.linux.cgroupstats import CgroupStatsReader
from dockyard.linux.process import ProcessHandle
from dockyard.linux.ps import run_ps
from dockyard.model.stats import StatsSample, cpu_percent, memory_used
from dockyard.model.top import parse_ps, ps_arguments
from dockyard.runtime import monitor as monitors
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import Resources, SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar, monitor_under_test

PARENT = "dockyard-test-stats"  # its own cgroup parent: other tests remove theirs
LIMIT = 64 * 1024 * 1024
# One TCP attempt on the loopback (SYN and RST count on lo), a child, then a busy loop.
SCRIPT = "nc 127.0.0.1 1 </dev/null; sleep 1000 & while :; do :; done"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[tuple[str, monitors.Created, OciRuntime]]:
    dirs = LayerDirs(tmp_path / "overlay")
    image = dirs.new_cache_id()
    dirs.extract(image, io.BytesIO(busybox_rootfs_tar()))
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(tmp_path / "runc"))
    cid = "stats-" + os.urandom(6).hex()
    rw = dirs.new_cache_id()
    dirs.create_rw(rw)
    rootfs = dirs.mount(rw, [image])
    monitor: ProcessHandle | None = None
    try:
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        spec = build_spec(SpecInput(
            rootfs=str(rootfs), args=("sh", "-c", SCRIPT), env=(), cwd="/", hostname="stats",
            cgroups_path=f"/{PARENT}/{cid}",
            resources=Resources(memory=LIMIT, pids_limit=100, nano_cpus=500_000_000),
        ))  # fmt: skip
        (bundle / "config.json").write_text(json.dumps(spec))
        req = monitors.MonitorRequest(
            container_id=cid, name=cid, runtime_path=runtime.path, runtime_args=runtime.global_args,
            bundle=bundle, log_path=bundle / "ctr.log", exit_dir=tmp_path / "exits",
            persist_dir=bundle / "persist", tty=False, stdin=False, stdin_once=True, monitor=monitor_under_test(),
        )  # fmt: skip
        created = asyncio.run(monitors.create(req))
        monitor = ProcessHandle(created.monitor_pid)
        asyncio.run(runtime.start(cid))
        yield cid, created, runtime
    finally:
        subprocess.run(
            [runtime.path, "--root", runtime.root, "delete", "-f", cid],
            check=False,
            capture_output=True,
        )
        if monitor is not None:
            with contextlib.suppress(TimeoutError):
                asyncio.run(asyncio.wait_for(monitor.wait(), 10))
            monitor.close()
        dirs.unmount(rw)
        for parent in Path("/sys/fs/cgroup").glob(f"*/{PARENT}"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


def _ready(reader: CgroupStatsReader, path: str, pid: int) -> StatsSample:
    """Waits until the script's child runs and its loopback traffic has happened."""
    for _ in range(100):
        sample = reader.sample(path, pid)
        assert sample is not None
        lo = [i for i in sample.networks or () if i.name == "lo"]
        if sample.pids and sample.pids.current >= 2 and lo and lo[0].rx_packets > 0:
            return sample
        asyncio.run(asyncio.sleep(0.1))
    raise AssertionError(f"container never got ready: {sample}")


def test_reader_follows_a_busy_container(container: tuple[str, monitors.Created, OciRuntime]) -> None:
    cid, created, _ = container
    reader = CgroupStatsReader()
    assert reader.layout in (CgroupLayout.V1, CgroupLayout.HYBRID, CgroupLayout.V2)
    path = f"/{PARENT}/{cid}"
    first = _ready(reader, path, created.pid)
    asyncio.run(asyncio.sleep(0.6))
    second = reader.sample(path, created.pid)
    assert second is not None

    assert first.cpu.usage.total_ns > 0
    assert second.cpu.usage.total_ns > first.cpu.usage.total_ns  # the loop burns CPU
    assert second.cpu.system_ns > first.cpu.system_ns
    assert second.cpu.online_cpus == os.cpu_count()
    assert second.read_ns > first.read_ns
    assert cpu_percent(first.cpu, second.cpu) > 0.0
    assert second.cpu.throttling.periods > 0  # the 0.5 CPU quota is in force

    memory = second.memory
    assert memory is not None
    assert memory.limit == LIMIT
    assert 0 < memory.usage < LIMIT
    assert 0 < memory_used(memory) <= memory.usage
    if reader.layout is not CgroupLayout.V2:
        assert memory.max_usage >= memory.usage
        assert memory.stat("total_inactive_file") is not None
        assert len(second.cpu.usage.per_cpu_ns) >= 1

    assert second.pids is not None and second.pids.current >= 2 and second.pids.limit == 100
    assert second.blkio is not None

    assert second.networks is not None
    lo = {i.name: i for i in second.networks}["lo"]
    assert lo.rx_packets > 0 and lo.tx_packets > 0 and lo.rx_bytes > 0
    assert all(i.name == "lo" for i in second.networks)  # runc's new netns has only lo

    doc = json.loads(json.dumps(stats_document(second, first, name=cid, container_id=cid)))
    assert doc["memory_stats"]["limit"] == LIMIT
    assert doc["pids_stats"]["current"] >= 2
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == first.cpu.usage.total_ns
    assert "networks" not in doc  # only lo, which dockerd never lists


def test_top_finds_the_container_processes_and_only_them(
    container: tuple[str, monitors.Created, OciRuntime],
) -> None:
    cid, created, _ = container
    reader = CgroupStatsReader()
    path = f"/{PARENT}/{cid}"
    _ready(reader, path, created.pid)
    pids = reader.pids(path)
    for _ in range(50):  # nc may be the child still, or gone with sleep not forked yet
        if len(pids) == 2 and created.pid in pids:
            break
        asyncio.run(asyncio.sleep(0.1))
        pids = reader.pids(path)
    assert created.pid in pids and len(pids) == 2  # sh and its sleep

    top = parse_ps(asyncio.run(run_ps(ps_arguments(""), pids)), pids)
    assert top.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    assert {int(row[1]) for row in top.processes} == pids
    commands = sorted(row[-1] for row in top.processes)
    assert commands[0].startswith("sh -c nc 127.0.0.1") and commands[1] == "sleep 1000"

    top = parse_ps(asyncio.run(run_ps(ps_arguments("-o pid,comm"), pids)), pids)
    assert sorted(top.processes) == sorted((str(p), c) for p, c in zip(
        sorted(pids), ["sh", "sleep"], strict=True))  # fmt: skip

    # A forest listing refuses -q: the whole host is listed and the parser keeps ours.
    top = parse_ps(asyncio.run(run_ps(ps_arguments("axf"), pids)), pids)
    pid_column = top.titles.index("PID")
    assert {int(row[pid_column]) for row in top.processes} == pids
    assert str(os.getpid()) not in {row[pid_column] for row in top.processes}


def test_a_removed_container_has_no_sample_and_no_pids(
    container: tuple[str, monitors.Created, OciRuntime],
) -> None:
    cid, created, runtime = container
    reader = CgroupStatsReader()
    path = f"/{PARENT}/{cid}"
    assert reader.sample(path, created.pid) is not None
    asyncio.run(runtime.delete(cid, force=True))
    assert reader.sample(path, created.pid) is None
    assert reader.pids(path) == frozenset()
