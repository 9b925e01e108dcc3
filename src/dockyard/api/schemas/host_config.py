"""HostConfig: the create body's half about placing the container on the host, in and out.

In: every field either becomes part of the HostSpec (and so of the OCI spec) or is refused
with a 400 that names it; nothing is accepted and dropped. dockerd's defaults are applied
as its adaptContainerSettings does, so inspect shows what dockerd would show.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Mapping
from typing import Any

from dockyard.api.schemas import fields as f
from dockyard.api.versioning import at_least
from dockyard.errors import InvalidArgument
from dockyard.model.containers import HostSpec, LogConfig, RestartPolicy
from dockyard.model.hostconfig import (
    MASKED_PATHS,
    READONLY_PATHS,
    DeviceMapping,
    Ulimit,
    check_device,
    check_sysctl,
    check_ulimit,
    check_userns_mode,
    normalize_caps,
    parse_cgroupns_mode,
    parse_device_rule,
    parse_extra_host,
    parse_ipc_mode,
    parse_pid_mode,
    parse_security_opts,
    parse_uts_mode,
)
from dockyard.model.links import parse_link
from dockyard.model.mounts import MountSpec, mount_from_api

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024
LOG_DRIVERS = ("json-file", "local", "none")
# dockerd registers these too; this daemon does not implement them.
_OTHER_LOG_DRIVERS = ("syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries")

def _restart_policy(doc: Mapping[str, Any]) -> RestartPolicy:
    restart = f.obj(doc.get("RestartPolicy"), "RestartPolicy")
    policy = RestartPolicy(
        f.string(restart.get("Name"), "RestartPolicy.Name") or "no",
        f.integer(restart.get("MaximumRetryCount"), "MaximumRetryCount", go_type="int"),
    )
    if policy.name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy: unknown policy '{policy.name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    if policy.maximum_retry_count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    return policy


def _port_bindings(value: Any) -> dict[str, tuple[tuple[str, str], ...]]:
    out = {}
    for port, bindings in f.obj(value, "PortBindings").items():
        if bindings is None:
            bindings = []
        if not isinstance(bindings, list) or not all(isinstance(b, dict) or b is None for b in bindings):
            raise InvalidArgument(f"invalid PortBindings for {port}: expected a list of objects")
        out[port] = tuple((str((b or {}).get("HostIp") or ""), str((b or {}).get("HostPort") or "")) for b in bindings)
    return out


def _console_size(value: Any) -> tuple[int, int]:
    if value is None:
        return (0, 0)
    if not isinstance(value, list):
        raise InvalidArgument("invalid ConsoleSize: expected [height, width]")
    # As Go decodes into [2]uint: missing entries are 0, extra ones ignored.
    padded = [*value[:2], 0, 0][:2]
    return (f.integer(padded[0], "ConsoleSize", go_type="uint"), f.integer(padded[1], "ConsoleSize", go_type="uint"))


def _log_config(value: Any) -> LogConfig:
    doc = f.obj(value, "LogConfig")
    kind = f.string(doc.get("Type"), "LogConfig.Type")  # "": the daemon's default, set at create
    if kind and kind not in LOG_DRIVERS:
        if kind in _OTHER_LOG_DRIVERS:
            raise InvalidArgument(f"logger: log driver '{kind}' is not supported by this daemon (use json-file, local or none)")
        raise InvalidArgument(f"logger: no log driver named '{kind}' is registered")
    return LogConfig(kind, f.str_map(doc.get("Config"), "LogConfig.Config"))


def _api_mount(doc: Mapping[str, Any]) -> MountSpec:
    kind = f.string(doc.get("Type"), "Mount.Type")
    bind = f.obj(doc.get("BindOptions"), "Mount.BindOptions")
    tmpfs = f.obj(doc.get("TmpfsOptions"), "Mount.TmpfsOptions")
    volume = f.obj(doc.get("VolumeOptions"), "Mount.VolumeOptions")
    image = f.obj(doc.get("ImageOptions"), "Mount.ImageOptions")

    def fail(reason: str) -> InvalidArgument:
        return InvalidArgument(f'invalid mount config for type "{kind}": {reason}')

    for other in ("BindOptions", "TmpfsOptions", "VolumeOptions", "ImageOptions"):
        if doc.get(other) and other.lower() != kind + "options":
            raise fail(f"field {other} must not be specified")
    if f.boolean(bind.get("ReadOnlyForceRecursive"), "BindOptions.ReadOnlyForceRecursive"):
        raise fail("ReadOnlyForceRecursive is not supported by this daemon")
    driver = f.obj(volume.get("DriverConfig"), "VolumeOptions.DriverConfig")
    driver_name = f.string(driver.get("Name"), "DriverConfig.Name")
    if driver_name not in ("", "local"):  # dockerd looks for a volume plugin of that name
        raise fail(f'volume driver "{driver_name}" not found: only the local driver is available')
    tmpfs_flags = tmpfs.get("Options")
    if tmpfs_flags is not None and not (
        isinstance(tmpfs_flags, list) and all(isinstance(o, list) and all(isinstance(v, str) for v in o) for o in tmpfs_flags)
    ):
        raise InvalidArgument("invalid TmpfsOptions.Options: expected an array of arrays of strings")
    return mount_from_api(
        kind,
        f.string(doc.get("Source"), "Mount.Source"),
        f.string(doc.get("Target"), "Mount.Target"),
        read_only=f.boolean(doc.get("ReadOnly"), "Mount.ReadOnly"),
        propagation=f.string(bind.get("Propagation"), "BindOptions.Propagation"),
        recursive=not f.boolean(bind.get("NonRecursive"), "BindOptions.NonRecursive"),
        create_mountpoint=f.boolean(bind.get("CreateMountpoint"), "BindOptions.CreateMountpoint"),
        size_bytes=f.integer(tmpfs.get("SizeBytes"), "TmpfsOptions.SizeBytes"),
        file_mode=f.integer(tmpfs.get("Mode"), "TmpfsOptions.Mode", go_type="uint32"),
        no_copy=f.boolean(volume.get("NoCopy"), "VolumeOptions.NoCopy"),
        volume_labels=tuple(sorted(f.str_map(volume.get("Labels"), "VolumeOptions.Labels").items())),
        volume_options=tuple(sorted(f.str_map(driver.get("Options"), "DriverConfig.Options").items())),
        subpath=f.string((image if kind == "image" else volume).get("Subpath"), "Subpath"),
        tmpfs_flags=tmpfs_flags or (),
    )


def check_mounts_for_version(h: HostSpec, version: str) -> None:
    """What HostConfig.Mounts may hold at this API version (dockerd's words)."""
    if not at_least(version, "1.45") and any(m.type == "volume" and m.subpath for m in h.mounts):
        raise InvalidArgument("VolumeOptions.Subpath needs API v1.45 or newer")
    if not at_least(version, "1.48") and any(m.type == "image" for m in h.mounts):
        raise InvalidArgument('Mount type "Image" needs API v1.48 or newer')


def _mounts(value: Any) -> tuple[MountSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise InvalidArgument("invalid Mounts: expected a list of objects")
    return tuple(_api_mount(m) for m in value)


def _devices(value: Any) -> tuple[DeviceMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        raise InvalidArgument("invalid Devices: expected a list of objects")
    return tuple(
        check_device(DeviceMapping(
            f.string(d.get("PathOnHost"), "DeviceMapping.PathOnHost"),
            f.string(d.get("PathInContainer"), "DeviceMapping.PathInContainer"),
            f.string(d.get("CgroupPermissions"), "DeviceMapping.CgroupPermissions") or "rwm",
        ))
        for d in value
    )  # fmt: skip


def _ulimits(value: Any) -> tuple[Ulimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(u, dict) for u in value):
        raise InvalidArgument("invalid Ulimits: expected a list of objects")
    by_name: dict[str, Ulimit] = {}
    for u in value:
        limit = check_ulimit(Ulimit(f.string(u.get("Name"), "Ulimit.Name"), f.integer(u.get("Soft"), "Ulimit.Soft"),
                                    f.integer(u.get("Hard"), "Ulimit.Hard")))  # fmt: skip
        by_name[limit.name] = limit  # the last one of a name wins, as the CLI's map
    return tuple(by_name.values())


def _refuse_unsupported(doc: Mapping[str, Any]) -> None:
    """Fields this daemon cannot honour: a 400 naming each, never a silent drop."""
    if f.string(doc.get("VolumeDriver"), "VolumeDriver"):
        raise InvalidArgument("VolumeDriver (--volume-driver) is not supported yet: volume plugins are not served")
    if f.string(doc.get("Cgroup"), "Cgroup"):
        raise InvalidArgument("Cgroup (sharing another container's cgroup) is not supported by this daemon")
    if doc.get("DeviceRequests"):
        raise InvalidArgument("DeviceRequests (--gpus) are not supported: this daemon has no device drivers")
    if f.str_map(doc.get("StorageOpt"), "StorageOpt"):
        raise InvalidArgument("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    isolation = f.string(doc.get("Isolation"), "Isolation")
    if isolation not in ("", "default"):
        raise InvalidArgument(f"invalid isolation ({isolation}): linux only supports 'default'")
    for name in ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                 "BlkioDeviceWriteIOps"):  # fmt: skip
        if doc.get(name):
            raise InvalidArgument(f"{name} is not supported by this daemon yet")
    if f.integer(doc.get("IOMaximumBandwidth"), "IOMaximumBandwidth", go_type="uint64"):
        raise InvalidArgument("invalid option: QoS maximum bandwidth configuration is not supported on linux")
    if f.integer(doc.get("IOMaximumIOps"), "IOMaximumIOps", go_type="uint64"):
        raise InvalidArgument("invalid option: QoS maximum IOPs configuration is not supported on linux")
    for name in ("CpuCount", "CpuPercent"):
        if f.integer(doc.get(name), name):
            raise InvalidArgument(f"{name} is only supported on Windows")
    for name in ("CpuRealtimePeriod", "CpuRealtimeRuntime", "KernelMemory", "KernelMemoryTCP"):
        if f.integer(doc.get(name), name):
            raise InvalidArgument(f"{name} is not supported by this daemon")
    for name in ("MaskedPaths", "ReadonlyPaths"):
        if doc.get(name) is not None:
            raise InvalidArgument(f"{name} cannot be set by this daemon yet: it uses dockerd's defaults")


def _check_memory(h: HostSpec) -> None:
    if h.memory != 0 and h.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if h.memory_swap < -1:
        raise InvalidArgument(f"invalid MemorySwap {h.memory_swap}: use -1 for unlimited swap")
    if h.memory > 0 and h.memory_swap > 0 and h.memory_swap < h.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if h.memory == 0 and h.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if h.memory_swappiness is not None and not 0 <= h.memory_swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {h.memory_swappiness}, valid memory swappiness range is 0-100")
    if h.memory_reservation < 0 or 0 < h.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if h.memory > 0 and h.memory_reservation > 0 and h.memory < h.memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")


def _check_cpu(h: HostSpec) -> None:
    if h.cpu_shares < 0:
        raise InvalidArgument(f"invalid CPU shares ({h.cpu_shares}): value must be a positive integer")
    if h.nano_cpus > 0 and h.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if h.nano_cpus > 0 and h.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if h.nano_cpus < 0:
        raise InvalidArgument("range of CPUs is from 0.01 to the number of CPUs available")
    if h.cpu_period != 0 and not 1000 <= h.cpu_period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < h.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if h.blkio_weight and not 10 <= h.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")


def _check_names(h: HostSpec) -> None:
    for server in h.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"IP address is not correctly formatted: {server}") from None
    for entry in h.extra_hosts:
        parse_extra_host(entry)
    if h.cgroup_parent and ".." in h.cgroup_parent.split("/"):
        raise InvalidArgument(f"invalid CgroupParent {h.cgroup_parent!r}: it must not leave the cgroup hierarchy")
    for key in h.annotations:
        if not key:
            raise InvalidArgument("invalid Annotations: the empty string is not permitted as an annotation key")
    if not -1000 <= h.oom_score_adj <= 1000:
        raise InvalidArgument(f"Invalid value {h.oom_score_adj}, range for oom score adj is [-1000, 1000]")
    if h.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")


def parse_host_config(doc: Mapping[str, Any]) -> HostSpec:
    _refuse_unsupported(doc)
    memory = f.integer(doc.get("Memory"), "Memory")
    memory_swap = f.integer(doc.get("MemorySwap"), "MemorySwap")
    if memory > 0 and memory_swap == 0:
        memory_swap = memory * 2  # dockerd's default: as much swap as memory
    swappiness = f.opt_integer(doc.get("MemorySwappiness"), "MemorySwappiness")
    pids_limit = f.opt_integer(doc.get("PidsLimit"), "PidsLimit")
    network_mode = f.string(doc.get("NetworkMode"), "NetworkMode") or "default"
    ipc_mode = f.string(doc.get("IpcMode"), "IpcMode") or "private"
    ipc = parse_ipc_mode(ipc_mode)
    parse_pid_mode(f.string(doc.get("PidMode"), "PidMode"))
    parse_uts_mode(f.string(doc.get("UTSMode"), "UTSMode"))
    cgroupns = f.string(doc.get("CgroupnsMode"), "CgroupnsMode") or "host"
    parse_cgroupns_mode(cgroupns)
    userns = f.string(doc.get("UsernsMode"), "UsernsMode")
    check_userns_mode(userns)
    sysctls = f.str_map(doc.get("Sysctls"), "Sysctls")
    for key, value in sysctls.items():
        check_sysctl(key, value, net_host=network_mode == "host" or network_mode.startswith("container:"),
                     ipc_host=ipc.kind.value == "host")  # fmt: skip
    security_opt = f.strs(doc.get("SecurityOpt"), "SecurityOpt")
    cgroup_parent = f.string(doc.get("CgroupParent"), "CgroupParent")
    host = HostSpec(
        binds=f.strs(doc.get("Binds"), "Binds"),
        network_mode=network_mode,
        port_bindings=_port_bindings(doc.get("PortBindings")),
        restart_policy=_restart_policy(doc),
        auto_remove=f.boolean(doc.get("AutoRemove"), "AutoRemove"),
        runtime=f.string(doc.get("Runtime"), "Runtime"),
        privileged=f.boolean(doc.get("Privileged"), "Privileged"),
        publish_all_ports=f.boolean(doc.get("PublishAllPorts"), "PublishAllPorts"),
        readonly_rootfs=f.boolean(doc.get("ReadonlyRootfs"), "ReadonlyRootfs"),
        cap_add=f.strs(doc.get("CapAdd"), "CapAdd"),
        cap_drop=f.strs(doc.get("CapDrop"), "CapDrop"),
        dns=f.strs(doc.get("Dns"), "Dns"),
        dns_options=f.strs(doc.get("DnsOptions"), "DnsOptions"),
        dns_search=f.strs(doc.get("DnsSearch"), "DnsSearch"),
        extra_hosts=f.strs(doc.get("ExtraHosts"), "ExtraHosts"),
        links=tuple(":".join(parse_link(text)) for text in f.strs(doc.get("Links"), "Links")),
        security_opt=security_opt,
        tmpfs=f.str_map(doc.get("Tmpfs"), "Tmpfs"),
        console_size=_console_size(doc.get("ConsoleSize")),
        init=f.opt_boolean(doc.get("Init"), "Init"),
        memory=memory,
        memory_swap=memory_swap,
        nano_cpus=f.integer(doc.get("NanoCpus"), "NanoCpus"),
        cpu_shares=f.integer(doc.get("CpuShares"), "CpuShares"),
        pids_limit=pids_limit if pids_limit is not None and pids_limit > 0 else None,
        shm_size=f.integer(doc.get("ShmSize"), "ShmSize") or DEFAULT_SHM_SIZE,
        oom_kill_disable=bool(f.opt_boolean(doc.get("OomKillDisable"), "OomKillDisable")),
        log_config=_log_config(doc.get("LogConfig")),
        ipc_mode=ipc_mode,
        pid_mode=f.string(doc.get("PidMode"), "PidMode"),
        uts_mode=f.string(doc.get("UTSMode"), "UTSMode"),
        group_add=f.strs(doc.get("GroupAdd"), "GroupAdd"),
        sysctls=sysctls,
        mounts=_mounts(doc.get("Mounts")),
        volumes_from=f.strs(doc.get("VolumesFrom"), "VolumesFrom"),
        ulimits=_ulimits(doc.get("Ulimits")),
        devices=_devices(doc.get("Devices")),
        device_cgroup_rules=tuple(parse_device_rule(r) for r in f.strs(doc.get("DeviceCgroupRules"), "DeviceCgroupRules")),
        memory_reservation=f.integer(doc.get("MemoryReservation"), "MemoryReservation"),
        memory_swappiness=None if swappiness == -1 else swappiness,
        cpu_period=f.integer(doc.get("CpuPeriod"), "CpuPeriod"),
        cpu_quota=f.integer(doc.get("CpuQuota"), "CpuQuota"),
        cpuset_cpus=f.string(doc.get("CpusetCpus"), "CpusetCpus"),
        cpuset_mems=f.string(doc.get("CpusetMems"), "CpusetMems"),
        blkio_weight=f.integer(doc.get("BlkioWeight"), "BlkioWeight", go_type="uint16"),
        oom_score_adj=f.integer(doc.get("OomScoreAdj"), "OomScoreAdj", go_type="int"),
        cgroup_parent=posixpath.normpath(cgroup_parent) if cgroup_parent else "",
        cgroupns_mode=cgroupns,
        userns_mode=userns,
        security=parse_security_opts(security_opt),
        annotations=f.str_map(doc.get("Annotations"), "Annotations"),
        isolation=f.string(doc.get("Isolation"), "Isolation"),
    )
    normalize_caps(host.cap_add, "CapAdd")  # unknown names: 400 now; inspect shows them as given
    normalize_caps(host.cap_drop, "CapDrop")
    _check_memory(host)
    _check_cpu(host)
    _check_names(host)
    _ = host.all_mounts  # bad specs and duplicate targets: 400 now (and parsed once for later)
    return host


# ---- out ------------------------------------------------------------------------------


def mount_request_doc(m: MountSpec) -> dict[str, Any]:
    """A HostConfig.Mounts entry shown back as it was asked."""
    doc: dict[str, Any] = {"Type": m.type, "Target": m.destination}
    if m.type in ("bind", "volume", "image") and m.source:  # omitempty: an anonymous volume has none
        doc["Source"] = m.source
    if m.read_only:
        doc["ReadOnly"] = True
    if m.type == "bind" and (m.propagation != "rprivate" or not m.recursive or m.create_mountpoint):
        bind: dict[str, Any] = {}
        if m.propagation != "rprivate":
            bind["Propagation"] = m.propagation
        if not m.recursive:
            bind["NonRecursive"] = True
        if m.create_mountpoint:
            bind["CreateMountpoint"] = True
        doc["BindOptions"] = bind
    if m.type == "image" and m.subpath:
        doc["ImageOptions"] = {"Subpath": m.subpath}
    if m.type == "volume" and (m.no_copy or m.volume_labels or m.volume_options or m.subpath):
        volume: dict[str, Any] = {}
        if m.volume_options:
            volume["DriverConfig"] = {"Name": "local", "Options": dict(m.volume_options)}
        if m.subpath:
            volume["Subpath"] = m.subpath
        if m.no_copy:
            volume["NoCopy"] = True
        if m.volume_labels:
            volume["Labels"] = dict(m.volume_labels)
        doc["VolumeOptions"] = volume
    if m.type == "tmpfs" and (m.size_bytes or m.file_mode or m.tmpfs_flags):
        tmpfs: dict[str, Any] = {}
        if m.tmpfs_flags:
            tmpfs["Options"] = [flag.split("=", 1) for flag in m.tmpfs_flags]
        if m.size_bytes:
            tmpfs["SizeBytes"] = m.size_bytes
        if m.file_mode:
            tmpfs["Mode"] = m.file_mode
        doc["TmpfsOptions"] = tmpfs
    return doc




def host_config_doc(h: HostSpec, runtime: str, name: str = "") -> dict[str, Any]:
    """HostConfig in inspect (API 1.50), every field as dockerd shows it: the fields that are
    `omitempty` in moby's HostConfig (Tmpfs, Sysctls, Runtime, Annotations, Mounts, Init,
    StorageOpt, KernelMemoryTCP) are left out when empty, the others are always there."""
    doc: dict[str, Any] = {
        "Binds": list(h.binds) or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": h.log_config.type, "Config": dict(h.log_config.config)},
        "NetworkMode": h.network_mode,
        "PortBindings": {p: [{"HostIp": ip, "HostPort": port} for ip, port in b] for p, b in h.port_bindings.items()},
        "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": list(h.volumes_from) or None,
        "ConsoleSize": list(h.console_size),
        "CapAdd": list(h.cap_add) or None,
        "CapDrop": list(h.cap_drop) or None,
        "CgroupnsMode": h.cgroupns_mode,
        "Dns": list(h.dns),
        "DnsOptions": list(h.dns_options),
        "DnsSearch": list(h.dns_search),
        "ExtraHosts": list(h.extra_hosts) or None,
        "GroupAdd": list(h.group_add) or None,
        "IpcMode": h.ipc_mode,
        "Cgroup": "",
        "Links": [f"/{child}:/{name}/{alias}" for child, _, alias in (link.partition(":") for link in h.links)] or None,
        "OomScoreAdj": h.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.readonly_rootfs,
        "SecurityOpt": list(h.security_opt) or None,
        "UTSMode": h.uts_mode,
        "UsernsMode": h.userns_mode,
        "ShmSize": h.shm_size,
        "Isolation": h.isolation,
        "CpuShares": h.cpu_shares,
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "CgroupParent": h.cgroup_parent,
        "BlkioWeight": h.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": h.cpu_period,
        "CpuQuota": h.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": h.cpuset_cpus,
        "CpusetMems": h.cpuset_mems,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                     "CgroupPermissions": d.cgroup_permissions} for d in h.devices],
        "DeviceCgroupRules": [str(r) for r in h.device_cgroup_rules] or None,
        "DeviceRequests": None,
        "MemoryReservation": h.memory_reservation,
        "MemorySwap": h.memory_swap,
        "MemorySwappiness": h.memory_swappiness,
        "OomKillDisable": h.oom_kill_disable,
        "PidsLimit": h.pids_limit,
        "Ulimits": [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in h.ulimits],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": None if h.privileged else list(MASKED_PATHS),
        "ReadonlyPaths": None if h.privileged else list(READONLY_PATHS),
    }  # fmt: skip
    optional: dict[str, Any] = {
        "Tmpfs": dict(h.tmpfs),
        "Sysctls": dict(h.sysctls),
        "Runtime": runtime,
        "Annotations": dict(h.annotations),
        "Mounts": [mount_request_doc(m) for m in h.mounts],
    }
    doc.update((key, value) for key, value in optional.items() if value)
    if h.init is not None:
        doc["Init"] = h.init
    return doc
