"""The body of POST /containers/{id}/update (moby's UpdateConfig: Resources + RestartPolicy).

The docker CLI sends every Resources field, most of them zero or null; those mean "leave it".
A field that update cannot change here is refused with a 400 that names it when it asks for
something (dockerd ignores most of them silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.api.schemas import fields as f
from dockyard.errors import InvalidArgument
from dockyard.model.containers import RestartPolicy
from dockyard.model.update import ResourceUpdate

# Set at create only; dockerd's update takes them and drops them.
_CREATE_ONLY = ("CgroupParent", "Devices", "DeviceCgroupRules", "DeviceRequests", "Ulimits", "OomKillDisable")
_BLKIO_DEVICES = ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                  "BlkioDeviceWriteIOps")  # fmt: skip


def _refuse_unchangeable(doc: Mapping[str, Any]) -> None:
    for name in _CREATE_ONLY:
        if doc.get(name):
            raise InvalidArgument(f"{name} cannot be changed by docker update: it is fixed when the container is created")
    swappiness = f.opt_integer(doc.get("MemorySwappiness"), "MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
        raise InvalidArgument("MemorySwappiness cannot be changed by docker update: it is fixed when the container is created")
    for name in _BLKIO_DEVICES:
        if doc.get(name):
            raise InvalidArgument(f"{name} is not supported by this daemon yet")
    for name in ("KernelMemory", "KernelMemoryTCP", "CpuRealtimePeriod", "CpuRealtimeRuntime"):
        if f.integer(doc.get(name), name):
            raise InvalidArgument(f"{name} is not supported by this daemon")
    for name in ("CpuCount", "CpuPercent"):
        if f.integer(doc.get(name), name):
            raise InvalidArgument(f"{name} is only supported on Windows")
    if f.integer(doc.get("IOMaximumBandwidth"), "IOMaximumBandwidth", go_type="uint64") or f.integer(
        doc.get("IOMaximumIOps"), "IOMaximumIOps", go_type="uint64"
    ):
        raise InvalidArgument("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")


def _restart_policy(value: Any) -> RestartPolicy | None:
    doc = f.obj(value, "RestartPolicy")
    name = f.string(doc.get("Name"), "RestartPolicy.Name")
    if not name:
        return None  # the CLI without --restart: the policy stays
    return RestartPolicy(name, f.integer(doc.get("MaximumRetryCount"), "MaximumRetryCount", go_type="int"))


def parse_update(value: Any, *, with_pids_limit: bool = True) -> ResourceUpdate:
    """`with_pids_limit`: False before API 1.40, where dockerd ignores PidsLimit."""
    if value is not None and not isinstance(value, dict):
        raise InvalidArgument("invalid JSON: the update body must be an object")
    doc: Mapping[str, Any] = value or {}
    _refuse_unchangeable(doc)
    pids = f.opt_integer(doc.get("PidsLimit"), "PidsLimit") if with_pids_limit else None
    return ResourceUpdate(
        memory=f.integer(doc.get("Memory"), "Memory"),
        memory_swap=f.integer(doc.get("MemorySwap"), "MemorySwap"),
        memory_reservation=f.integer(doc.get("MemoryReservation"), "MemoryReservation"),
        nano_cpus=f.integer(doc.get("NanoCpus"), "NanoCpus"),
        cpu_shares=f.integer(doc.get("CpuShares"), "CpuShares"),
        cpu_period=f.integer(doc.get("CpuPeriod"), "CpuPeriod"),
        cpu_quota=f.integer(doc.get("CpuQuota"), "CpuQuota"),
        cpuset_cpus=f.string(doc.get("CpusetCpus"), "CpusetCpus"),
        cpuset_mems=f.string(doc.get("CpusetMems"), "CpusetMems"),
        blkio_weight=f.integer(doc.get("BlkioWeight"), "BlkioWeight", go_type="uint16"),
        # Both 0 and -1 (and, as ever, any negative value) mean "no limit" in an update.
        pids_limit=None if pids is None else max(pids, 0),
        restart_policy=_restart_policy(doc.get("RestartPolicy")),
    )


def update_response_doc(warnings: tuple[str, ...]) -> dict[str, Any]:
    """dockerd answers `{"Warnings":null}` when it has none."""
    return {"Warnings": list(warnings) or None}
