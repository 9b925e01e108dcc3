"""Stats documents in dockerd's shape, and the docker CLI's figures computed from them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.api.schemas.stats import ZERO_TIME, go_time, stats_document
from dockyard.errors import InvalidArgument
from dockyard.linux.cgroupstats import v1_sample, v2_sample
from dockyard.model.stats import (
    BlkioEntry,
    BlkioStats,
    CpuStats,
    CpuUsage,
    InterfaceStats,
    MemoryStats,
    PidsStats,
    StatsMode,
    StatsSample,
    Throttling,
    cpu_percent,
    memory_percent,
    memory_used,
    stats_mode,
)
from tests.unit.test_cgroupstats import MACHINE, PROC_STAT, V1_FILES, V2_FILES

CID = "f0baf6b697b2" + "a" * 52
ZERO_CPU = {
    "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
}
NULL_BLKIO = {
    k: None
    for k in (
        "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
        "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
        "io_time_recursive", "sectors_recursive",
    )
}  # fmt: skip


def _sample(read_ns: int, total_ns: int, system_ns: int, **kw: Any) -> StatsSample:
    cpu = CpuStats(
        usage=CpuUsage(
            total_ns=total_ns,
            kernel_ns=10,
            user_ns=20,
            per_cpu_ns=(total_ns // 2, total_ns - total_ns // 2),
        ),
        throttling=Throttling(1, 2, 3),
        system_ns=system_ns,
        online_cpus=2,
    )
    return StatsSample(read_ns=read_ns, cpu=cpu, **kw)


def test_go_time_trims_trailing_zeros_like_rfc3339nano() -> None:
    assert go_time(1_764_624_225_103_698_061) == "2025-12-01T21:23:45.103698061Z"
    assert go_time(1_764_624_225_162_197_600) == "2025-12-01T21:23:45.1621976Z"
    assert go_time(1_764_624_225_000_000_000) == "2025-12-01T21:23:45Z"
    assert go_time(0) == ZERO_TIME == "0001-01-01T00:00:00Z"


def test_not_running_document_has_name_id_and_zero_values() -> None:
    doc = stats_document(None, None, name="web", container_id=CID)
    assert doc == {
        "name": "/web",
        "id": CID,
        "read": ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": NULL_BLKIO,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": ZERO_CPU,
        "precpu_stats": ZERO_CPU,
        "memory_stats": {},
    }
    assert (
        list(doc)
        == list(stats_document(_sample(1, 1, 1), None, name="/web", container_id=CID))[:11]
    )


def test_v1_document_field_for_field() -> None:
    current = v1_sample(V1_FILES, read_ns=1_764_624_225_162_197_600, proc_stat=PROC_STAT,
                        machine_memory=MACHINE, net_dev=None)  # fmt: skip
    doc = stats_document(current, None, name="/web", container_id=CID)
    assert list(doc) == [
        "name", "id", "read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
        "cpu_stats", "precpu_stats", "memory_stats",
    ]  # fmt: skip
    assert doc["read"] == "2025-12-01T21:23:45.1621976Z" and doc["preread"] == ZERO_TIME
    assert doc["pids_stats"] == {"current": 2}  # limit 0 (unlimited on v1) is omitted
    assert doc["blkio_stats"]["io_service_bytes_recursive"][:2] == [
        {"major": 254, "minor": 0, "op": "Read", "value": 12288},
        {"major": 254, "minor": 0, "op": "Write", "value": 4096},
    ]
    assert doc["blkio_stats"]["io_queue_recursive"] == []  # v1: empty list, not null
    assert doc["cpu_stats"] == {
        "cpu_usage": {
            "total_usage": 1530421187,
            "percpu_usage": [731090442, 799330745],
            "usage_in_kernelmode": 30000000,
            "usage_in_usermode": 1480000000,
        },
        "system_cpu_usage": 1096500000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 14, "throttled_periods": 2, "throttled_time": 73455081},
    }
    assert doc["precpu_stats"] == ZERO_CPU
    memory = doc["memory_stats"]
    assert list(memory) == ["usage", "max_usage", "stats", "limit"]  # failcnt 0 omitted
    assert (memory["usage"], memory["max_usage"], memory["limit"]) == (638976, 2002944, 67108864)
    assert list(memory["stats"]) == sorted(memory["stats"]) and len(memory["stats"]) == 32
    assert memory["stats"]["total_inactive_file"] == 4096 and memory["stats"]["cache"] == 4096
    assert "networks" not in doc


def test_v2_document_nulls_what_v2_lacks() -> None:
    current = v2_sample(
        V2_FILES, read_ns=5, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=None
    )
    doc = stats_document(current, None, name="/db", container_id=CID)
    blkio = doc["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [
        {"major": 254, "minor": 0, "op": "read", "value": 1458176},
        {"major": 254, "minor": 0, "op": "write", "value": 8192},
    ]
    assert all(blkio[k] is None for k in NULL_BLKIO if k != "io_service_bytes_recursive")
    assert "percpu_usage" not in doc["cpu_stats"]["cpu_usage"]
    assert doc["pids_stats"] == {"current": 3, "limit": 2**64 - 1}
    memory = doc["memory_stats"]
    assert list(memory) == ["usage", "stats", "failcnt", "limit"]  # no max_usage on v2
    assert memory["failcnt"] == 1 and len(memory["stats"]) == 31


def test_previous_sample_becomes_precpu_and_preread() -> None:
    first = _sample(1_000_000_000_000, 100, 10_000)
    second = _sample(1_000_000_001_000, 300, 30_000)
    doc = stats_document(second, first, name="x", container_id=CID)
    assert doc["preread"] == go_time(first.read_ns) and doc["read"] == go_time(second.read_ns)
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 100
    assert doc["precpu_stats"]["system_cpu_usage"] == 10_000
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] == 300


def test_networks_leave_out_the_loopback_as_dockerd_does() -> None:
    lo = InterfaceStats("lo", 9, 9, 0, 0, 9, 9, 0, 0)
    eth1 = InterfaceStats("eth1", 1, 2, 3, 4, 5, 6, 7, 8)
    eth0 = InterfaceStats("eth0", 10, 20, 0, 1, 30, 40, 0, 2)
    doc = stats_document(
        _sample(1, 1, 1, networks=(lo, eth1, eth0)), None, name="x", container_id=CID
    )
    assert list(doc["networks"]) == ["eth0", "eth1"]
    assert doc["networks"]["eth1"] == {
        "rx_bytes": 1, "rx_packets": 2, "rx_errors": 3, "rx_dropped": 4,
        "tx_bytes": 5, "tx_packets": 6, "tx_errors": 7, "tx_dropped": 8,
    }  # fmt: skip
    only_lo = stats_document(_sample(1, 1, 1, networks=(lo,)), None, name="x", container_id=CID)
    assert "networks" not in only_lo  # --network none: omitted, as an empty Go map
    assert "networks" not in stats_document(_sample(1, 1, 1), None, name="x", container_id=CID)


def test_blkio_and_pids_none_render_as_dockerd_zero_structs() -> None:
    doc = stats_document(_sample(1, 1, 1, blkio=BlkioStats(service_bytes=(BlkioEntry(1, 2, "Read", 3),))),
                         None, name="x", container_id=CID)  # fmt: skip
    assert doc["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 1, "minor": 2, "op": "Read", "value": 3}
    ]
    assert doc["blkio_stats"]["sectors_recursive"] is None
    assert doc["pids_stats"] == {} and doc["memory_stats"] == {}
    doc = stats_document(_sample(1, 1, 1, pids=PidsStats(0, 5), memory=MemoryStats()), None, name="x",
                         container_id=CID)  # fmt: skip
    assert doc["pids_stats"] == {"limit": 5} and doc["memory_stats"] == {}


# The docker CLI's formulas (cli/command/container/stats_helpers.go), applied to the JSON as
# the CLI receives it: our documents must give the same figures as our model does.
def _cli_cpu_percent(doc: dict[str, Any]) -> float:
    cpu_delta = (
        doc["cpu_stats"]["cpu_usage"]["total_usage"]
        - doc["precpu_stats"]["cpu_usage"]["total_usage"]
    )
    system_delta = doc["cpu_stats"].get("system_cpu_usage", 0) - doc["precpu_stats"].get(
        "system_cpu_usage", 0
    )
    cpus = doc["cpu_stats"].get("online_cpus") or len(
        doc["cpu_stats"]["cpu_usage"].get("percpu_usage", [])
    )
    return cpu_delta / system_delta * cpus * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0


def _cli_memory(doc: dict[str, Any]) -> tuple[float, float]:
    mem = doc["memory_stats"]
    stats = mem.get("stats", {})
    usage = mem.get("usage", 0)
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        used = usage - stats["total_inactive_file"]
    elif stats.get("inactive_file", 0) < usage:
        used = usage - stats.get("inactive_file", 0)
    else:
        used = usage
    limit = mem.get("limit", 0)
    return used, used / limit * 100.0 if limit else 0.0


def test_cli_figures_from_the_json_match_the_model() -> None:
    for build, files, cpu_key in (
        (v1_sample, V1_FILES, "cpuacct/cpuacct.usage"),
        (v2_sample, V2_FILES, "cpu.stat"),
    ):
        first = build(
            files, read_ns=1_000_000_000, proc_stat=PROC_STAT, machine_memory=MACHINE, net_dev=None
        )
        later = dict(files)
        later[cpu_key] = "2530421187\n" if cpu_key.endswith("usage") else "usage_usec 3834211\n"
        stat2 = "cpu  12131 0 4282 92950 419 0 68 0 0 0\ncpu0 1\ncpu1 1\n"
        second = build(
            later, read_ns=2_000_000_000, proc_stat=stat2, machine_memory=MACHINE, net_dev=None
        )
        doc = json.loads(json.dumps(stats_document(second, first, name="x", container_id=CID)))
        assert _cli_cpu_percent(doc) == cpu_percent(first.cpu, second.cpu) == 100.0  # 1 s in 1 s
        assert second.memory is not None
        assert _cli_memory(doc) == (memory_used(second.memory), memory_percent(second.memory))


def test_stats_mode_from_the_query() -> None:
    assert stats_mode(stream=True, one_shot=False) is StatsMode.STREAM
    assert stats_mode(stream=False, one_shot=False) is StatsMode.PRIMED
    assert stats_mode(stream=False, one_shot=True) is StatsMode.ONE_SHOT
    with pytest.raises(InvalidArgument, match="^cannot have stream=true and one-shot=true$"):
        stats_mode(stream=True, one_shot=True)
