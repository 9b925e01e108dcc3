"""Container documents: the create body in, inspect and list out (API 1.50 shapes)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerStatus,
    HostSpec,
    LogConfig,
    RestartPolicy,
)
from dockyard.model.images import HealthConfig, health_to_json
from dockyard.model.mounts import parse_mounts
from dockyard.model.times import parse_ns, unix_seconds


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what}: expected an object")
    return value


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {what}: expected a list of strings")
    return tuple(value)


def _opt_strs(value: Any, what: str) -> tuple[str, ...] | None:
    return None if value is None else _strs(value, what)


def _int(value: Any, what: str, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"invalid {what}: expected a number")
    return int(value)


def _health(value: Any) -> HealthConfig | None:
    if not value:
        return None
    doc = _obj(value, "Healthcheck")
    return HealthConfig(
        test=_strs(doc.get("Test"), "Healthcheck.Test"),
        interval_ns=_int(doc.get("Interval"), "Healthcheck.Interval"),
        timeout_ns=_int(doc.get("Timeout"), "Healthcheck.Timeout"),
        start_period_ns=_int(doc.get("StartPeriod"), "Healthcheck.StartPeriod"),
        start_interval_ns=_int(doc.get("StartInterval"), "Healthcheck.StartInterval"),
        retries=_int(doc.get("Retries"), "Healthcheck.Retries"),
    )


def _port_bindings(value: Any) -> dict[str, tuple[tuple[str, str], ...]]:
    out = {}
    for port, bindings in _obj(value, "PortBindings").items():
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
    return (_int(padded[0], "ConsoleSize"), _int(padded[1], "ConsoleSize"))


def _opt_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def parse_host_config(doc: Mapping[str, Any]) -> HostSpec:
    restart = _obj(doc.get("RestartPolicy"), "RestartPolicy")
    log_config = _obj(doc.get("LogConfig"), "LogConfig")
    policy = RestartPolicy(str(restart.get("Name") or "no"), _int(restart.get("MaximumRetryCount"), "MaximumRetryCount"))
    if policy.name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy: unknown policy '{policy.name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    if policy.maximum_retry_count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    host = HostSpec(
        binds=_strs(doc.get("Binds"), "Binds"),
        network_mode=str(doc.get("NetworkMode") or "default"),
        port_bindings=_port_bindings(doc.get("PortBindings")),
        restart_policy=policy,
        auto_remove=bool(doc.get("AutoRemove")),
        runtime=str(doc.get("Runtime") or ""),
        privileged=bool(doc.get("Privileged")),
        publish_all_ports=bool(doc.get("PublishAllPorts")),
        readonly_rootfs=bool(doc.get("ReadonlyRootfs")),
        cap_add=_strs(doc.get("CapAdd"), "CapAdd"),
        cap_drop=_strs(doc.get("CapDrop"), "CapDrop"),
        dns=_strs(doc.get("Dns"), "Dns"),
        dns_options=_strs(doc.get("DnsOptions"), "DnsOptions"),
        dns_search=_strs(doc.get("DnsSearch"), "DnsSearch"),
        extra_hosts=_strs(doc.get("ExtraHosts"), "ExtraHosts"),
        security_opt=_strs(doc.get("SecurityOpt"), "SecurityOpt"),
        tmpfs={str(k): str(v) for k, v in _obj(doc.get("Tmpfs"), "Tmpfs").items()},
        console_size=_console_size(doc.get("ConsoleSize")),
        init=doc.get("Init"),
        memory=_int(doc.get("Memory"), "Memory"),
        memory_swap=_int(doc.get("MemorySwap"), "MemorySwap"),
        nano_cpus=_int(doc.get("NanoCpus"), "NanoCpus"),
        cpu_shares=_int(doc.get("CpuShares"), "CpuShares"),
        pids_limit=_opt_int(doc.get("PidsLimit"), "PidsLimit"),
        shm_size=_int(doc.get("ShmSize"), "ShmSize") or 64 * 1024 * 1024,
        oom_kill_disable=doc.get("OomKillDisable"),
        log_config=LogConfig(str(log_config.get("Type") or "json-file"), dict(log_config.get("Config") or {})),
        ipc_mode=str(doc.get("IpcMode") or "private"),
        pid_mode=str(doc.get("PidMode") or ""),
        uts_mode=str(doc.get("UTSMode") or ""),
        group_add=_strs(doc.get("GroupAdd"), "GroupAdd"),
        sysctls={str(k): str(v) for k, v in _obj(doc.get("Sysctls"), "Sysctls").items()},
    )
    if host.memory and host.memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    return host


def parse_create(body: Any, hostname: str) -> ContainerSpec:
    """The create body as the user sent it; image defaults are merged later."""
    doc = _obj(body, "container config")
    if not doc.get("Image"):
        raise InvalidArgument("config cannot be empty in order to create a container")
    stop_timeout = doc.get("StopTimeout")
    return ContainerSpec(
        image=str(doc["Image"]),
        hostname=str(doc.get("Hostname") or hostname),
        domainname=str(doc.get("Domainname") or ""),
        user=str(doc.get("User") or ""),
        env=_strs(doc.get("Env"), "Env"),
        cmd=_opt_strs(doc.get("Cmd"), "Cmd"),
        entrypoint=_opt_strs(doc.get("Entrypoint"), "Entrypoint"),
        working_dir=str(doc.get("WorkingDir") or ""),
        labels={str(k): str(v) for k, v in _obj(doc.get("Labels"), "Labels").items()},
        tty=bool(doc.get("Tty")),
        open_stdin=bool(doc.get("OpenStdin")),
        stdin_once=bool(doc.get("StdinOnce")),
        attach_stdin=bool(doc.get("AttachStdin")),
        attach_stdout=bool(doc.get("AttachStdout")),
        attach_stderr=bool(doc.get("AttachStderr")),
        exposed_ports=tuple(sorted(_obj(doc.get("ExposedPorts"), "ExposedPorts"))),
        volumes=tuple(sorted(_obj(doc.get("Volumes"), "Volumes"))),
        stop_signal=str(doc.get("StopSignal") or ""),
        stop_timeout=None if stop_timeout is None else _int(stop_timeout, "StopTimeout"),
        healthcheck=_health(doc.get("Healthcheck")),
        network_disabled=bool(doc.get("NetworkDisabled")),
        mac_address=str(doc.get("MacAddress") or ""),
        host=parse_host_config(_obj(doc.get("HostConfig"), "HostConfig")),
    )


# ---- out ------------------------------------------------------------------------------


def _list_or_none(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def config_doc(c: Container) -> dict[str, Any]:
    s = c.spec
    doc: dict[str, Any] = {
        "Hostname": s.hostname,
        "Domainname": s.domainname,
        "User": s.user,
        "AttachStdin": s.attach_stdin,
        "AttachStdout": s.attach_stdout,
        "AttachStderr": s.attach_stderr,
        "Tty": s.tty,
        "OpenStdin": s.open_stdin,
        "StdinOnce": s.stdin_once,
        "Env": list(s.env) or None,
        "Cmd": _list_or_none(s.cmd),
        "Image": s.image,
        "Volumes": {v: {} for v in s.volumes} or None,
        "WorkingDir": s.working_dir,
        "Entrypoint": _list_or_none(s.entrypoint) or None,
        "OnBuild": list(s.on_build) or None,
        "Labels": dict(s.labels),
    }
    if s.exposed_ports:
        doc["ExposedPorts"] = {p: {} for p in s.exposed_ports}
    if s.stop_signal:
        doc["StopSignal"] = s.stop_signal
    if s.stop_timeout is not None:
        doc["StopTimeout"] = s.stop_timeout
    if s.healthcheck is not None:
        doc["Healthcheck"] = health_to_json(s.healthcheck)
    return doc


def host_config_doc(c: Container) -> dict[str, Any]:
    h = c.spec.host
    return {
        "Binds": list(h.binds) or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": h.log_config.type, "Config": dict(h.log_config.config)},
        "NetworkMode": h.network_mode,
        "PortBindings": {p: [{"HostIp": ip, "HostPort": port} for ip, port in b] for p, b in h.port_bindings.items()},
        "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": list(h.console_size),
        "CapAdd": list(h.cap_add) or None,
        "CapDrop": list(h.cap_drop) or None,
        "CgroupnsMode": "host",
        "Dns": list(h.dns),
        "DnsOptions": list(h.dns_options),
        "DnsSearch": list(h.dns_search),
        "ExtraHosts": list(h.extra_hosts) or None,
        "GroupAdd": list(h.group_add) or None,
        "IpcMode": h.ipc_mode,
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.readonly_rootfs,
        "SecurityOpt": list(h.security_opt) or None,
        "Tmpfs": dict(h.tmpfs) or None,
        "UTSMode": h.uts_mode,
        "UsernsMode": "",
        "ShmSize": h.shm_size,
        "Sysctls": dict(h.sysctls) or None,
        "Runtime": c.runtime,
        "Isolation": "",
        "CpuShares": h.cpu_shares,
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": 0,
        "MemorySwap": h.memory_swap,
        "MemorySwappiness": None,
        "OomKillDisable": h.oom_kill_disable,
        "PidsLimit": h.pids_limit,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "Init": h.init,
        "MaskedPaths": None if h.privileged else [
            "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
            "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
        "ReadonlyPaths": None if h.privileged else [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }  # fmt: skip


def state_doc(c: Container) -> dict[str, Any]:
    st = c.state
    return {
        "Status": st.status.value,
        "Running": st.status in (ContainerStatus.RUNNING, ContainerStatus.PAUSED),
        "Paused": st.status is ContainerStatus.PAUSED,
        "Restarting": st.status is ContainerStatus.RESTARTING,
        "OOMKilled": st.oom_killed,
        "Dead": st.status is ContainerStatus.DEAD,
        "Pid": st.pid if st.running else 0,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    }


def inspect_doc(c: Container, paths: Mapping[str, str], graph: Mapping[str, str]) -> dict[str, Any]:
    argv = c.spec.argv
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": argv[0] if argv else "",
        "Args": list(argv[1:]),
        "State": state_doc(c),
        "Image": c.image_id,
        "ResolvConfPath": paths["resolv"],
        "HostnamePath": paths["hostname"],
        "HostsPath": paths["hosts"],
        "LogPath": paths["log"],
        "Name": "/" + c.name,
        "RestartCount": c.state.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config_doc(c),
        "GraphDriver": {"Name": "overlayfs", "Data": dict(graph)},
        "Mounts": mounts_doc(c),
        "Config": config_doc(c),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": {},
        },
    }


def mounts_doc(c: Container) -> list[dict[str, Any]]:
    out = []
    for m in parse_mounts(c.spec.host.binds, c.spec.host.tmpfs):
        if m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.destination, "Mode": m.mode,
                        "RW": not m.read_only, "Propagation": m.propagation})  # fmt: skip
        else:
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.destination, "Mode": ",".join(m.options),
                        "RW": not m.read_only, "Propagation": ""})  # fmt: skip
    return out


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration wording."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(s / 3600 + 0.5)  # go-units rounds half up
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{s // 3600 // 24 // 365} years"


def status_text(c: Container, now_ns: int | None = None) -> str:
    st = c.state
    now = time.time_ns() if now_ns is None else now_ns
    if st.status is ContainerStatus.RUNNING:
        return "Up " + human_duration((now - parse_ns(st.started_at)) / 1e9)
    if st.status is ContainerStatus.PAUSED:
        return "Up " + human_duration((now - parse_ns(st.started_at)) / 1e9) + " (Paused)"
    if st.status is ContainerStatus.RESTARTING:
        return f"Restarting ({st.exit_code}) " + human_duration((now - parse_ns(st.finished_at)) / 1e9) + " ago"
    if st.status is ContainerStatus.REMOVING:
        return "Removal In Progress"
    if st.status is ContainerStatus.DEAD:
        return "Dead"
    if st.status is ContainerStatus.EXITED:
        return f"Exited ({st.exit_code}) " + human_duration((now - parse_ns(st.finished_at)) / 1e9) + " ago"
    return "Created"


def _command(argv: tuple[str, ...]) -> str:
    """dockerd's Command column: arguments with spaces in single quotes, nothing escaped."""
    if not argv:
        return ""
    args = [f"'{a}'" if " " in a else a for a in argv[1:]]
    return " ".join([argv[0], *args]) if args else argv[0]


def summary_doc(c: Container) -> dict[str, Any]:
    argv = c.spec.argv
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.spec.image,
        "ImageID": c.image_id,
        "Command": _command(argv),
        "Created": unix_seconds(c.created),
        "Ports": [],
        "Labels": dict(c.spec.labels),
        "State": c.state.status.value,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.spec.host.network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts_doc(c),
    }
