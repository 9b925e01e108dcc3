"""Container documents: the create body in, inspect and list out (API 1.50 shapes)."""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dockyard.api.schemas import fields as f
from dockyard.api.schemas.host_config import host_config_doc as host_config_spec_doc
from dockyard.api.schemas.host_config import parse_host_config
from dockyard.errors import InvalidArgument
from dockyard.model.containers import Container, ContainerSpec, ContainerStatus
from dockyard.model.endpoints import Endpoint, EndpointRequest
from dockyard.model.health import Health, HealthStatus, status_of
from dockyard.model.hostconfig import NamespaceKind
from dockyard.model.images import HealthConfig
from dockyard.model.mounts import MountOrigin, host_source, staged_paths
from dockyard.model.ports import (
    ExposedPort,
    Published,
    exposed_ports,
    network_settings_ports,
    summary_ports,
)
from dockyard.model.signals import parse_signal
from dockyard.model.times import format_ns, parse_ns, unix_seconds

__all__ = [
    "config_doc",
    "health_doc",
    "healthcheck_doc",
    "host_config_doc",
    "inspect_doc",
    "mounts_doc",
    "parse_create",
    "parse_host_config",
    "state_doc",
    "summary_doc",
]


_obj = f.obj
_strs = f.strs
_opt_strs = f.opt_strs

MAX_HOSTNAME = 64  # HOST_NAME_MAX: sethostname(2) refuses longer names
MIN_HEALTH_DURATION_NS = 1_000_000  # dockerd's MinimumDuration, 1ms


def _health(value: Any) -> HealthConfig | None:
    if not value:
        return None
    doc = _obj(value, "Healthcheck")
    health = HealthConfig(
        test=_strs(doc.get("Test"), "Healthcheck.Test"),
        interval_ns=f.integer(doc.get("Interval"), "Healthcheck.Interval"),
        timeout_ns=f.integer(doc.get("Timeout"), "Healthcheck.Timeout"),
        start_period_ns=f.integer(doc.get("StartPeriod"), "Healthcheck.StartPeriod"),
        start_interval_ns=f.integer(doc.get("StartInterval"), "Healthcheck.StartInterval"),
        retries=f.integer(doc.get("Retries"), "Healthcheck.Retries", go_type="int"),
    )
    for name, ns in (("Interval", health.interval_ns), ("Timeout", health.timeout_ns),
                     ("StartPeriod", health.start_period_ns), ("StartInterval", health.start_interval_ns)):  # fmt: skip
        if ns != 0 and ns < MIN_HEALTH_DURATION_NS:
            raise InvalidArgument(f"{name} in Healthcheck cannot be less than 1ms")
    if health.retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    return health


def _check_env(env: tuple[str, ...]) -> None:
    for item in env:
        if item.partition("=")[0] == "" or "\0" in item:
            raise InvalidArgument(f"invalid environment variable: {item}")


def _working_dir(text: str) -> str:
    if not text:
        return ""
    if not text.startswith("/"):
        raise InvalidArgument(f"the working directory '{text}' is invalid, it needs to be an absolute path")
    return posixpath.normpath(text)


def _check_host_name(text: str, what: str) -> None:
    if len(text.encode()) > MAX_HOSTNAME:
        raise InvalidArgument(f'{what} "{text}" is too long (maximum {MAX_HOSTNAME} bytes)')
    if any(ch.isspace() or not ch.isprintable() or ch == "/" for ch in text):
        raise InvalidArgument(f"invalid {what} {text!r}: it may not contain spaces, control characters or '/'")


def _endpoints(value: Any) -> tuple[EndpointRequest, ...]:
    """NetworkingConfig.EndpointsConfig: one request per network named (resolved by the engine)."""
    endpoints = _obj(_obj(value, "NetworkingConfig").get("EndpointsConfig"), "EndpointsConfig")
    found = []
    for name, raw in endpoints.items():
        item = _obj(raw, f"EndpointsConfig.{name}")
        ipam = _obj(item.get("IPAMConfig"), "IPAMConfig")
        found.append(EndpointRequest(
            network_id="",
            network_name=str(name),
            aliases=_strs(item.get("Aliases"), "Aliases"),
            links=_strs(item.get("Links"), "Links"),
            ipv4=f.string(ipam.get("IPv4Address"), "IPv4Address"),
            ipv6=f.string(ipam.get("IPv6Address"), "IPv6Address"),
            link_local=_strs(ipam.get("LinkLocalIPs"), "LinkLocalIPs"),
            mac=f.string(item.get("MacAddress"), "MacAddress"),
            driver_opts=f.str_map(item.get("DriverOpts"), "DriverOpts"),
            gw_priority=f.integer(item.get("GwPriority"), "GwPriority", go_type="int"),
        ))  # fmt: skip
    return tuple(found)


def parse_create(body: Any, hostname: str) -> ContainerSpec:
    """The create body as the user sent it; image defaults are merged later."""
    doc = _obj(body, "container config")
    if not doc.get("Image"):
        raise InvalidArgument("config cannot be empty in order to create a container")
    host = parse_host_config(_obj(doc.get("HostConfig"), "HostConfig"))
    if not host.runtime and (top_runtime := f.string(doc.get("Runtime"), "Runtime")):
        # docker-py's `runtime=` lands here, beside HostConfig, where dockerd never looks (its
        # default, runc, makes that look right there); ours may be crun: take what was asked.
        host = replace(host, runtime=top_runtime)
    user_hostname = f.string(doc.get("Hostname"), "Hostname")
    if user_hostname and host.uts.kind is NamespaceKind.HOST:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    _check_host_name(user_hostname, "hostname")
    domainname = f.string(doc.get("Domainname"), "Domainname")
    _check_host_name(domainname, "domainname")
    env = _strs(doc.get("Env"), "Env")
    _check_env(env)
    stop_signal = f.string(doc.get("StopSignal"), "StopSignal")
    if stop_signal:
        parse_signal(stop_signal)
    return ContainerSpec(
        image=f.string(doc["Image"], "Image"),
        hostname=user_hostname or hostname,
        domainname=domainname,
        user=f.string(doc.get("User"), "User"),
        env=env,
        cmd=_opt_strs(doc.get("Cmd"), "Cmd"),
        entrypoint=_opt_strs(doc.get("Entrypoint"), "Entrypoint"),
        working_dir=_working_dir(f.string(doc.get("WorkingDir"), "WorkingDir")),
        labels=f.str_map(doc.get("Labels"), "Labels"),
        tty=f.boolean(doc.get("Tty"), "Tty"),
        open_stdin=f.boolean(doc.get("OpenStdin"), "OpenStdin"),
        stdin_once=f.boolean(doc.get("StdinOnce"), "StdinOnce"),
        attach_stdin=f.boolean(doc.get("AttachStdin"), "AttachStdin"),
        attach_stdout=f.boolean(doc.get("AttachStdout"), "AttachStdout"),
        attach_stderr=f.boolean(doc.get("AttachStderr"), "AttachStderr"),
        exposed_ports=tuple(sorted(_obj(doc.get("ExposedPorts"), "ExposedPorts"))),
        volumes=tuple(sorted(_obj(doc.get("Volumes"), "Volumes"))),
        stop_signal=stop_signal,
        stop_timeout=f.opt_integer(doc.get("StopTimeout"), "StopTimeout", go_type="int"),
        healthcheck=_health(doc.get("Healthcheck")),
        network_disabled=f.boolean(doc.get("NetworkDisabled"), "NetworkDisabled"),
        mac_address=f.string(doc.get("MacAddress"), "MacAddress"),
        host=host,
        endpoints=_endpoints(doc.get("NetworkingConfig")),
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
    # The rest are `omitempty` in dockerd's Config: absent unless set.
    if s.stop_signal:
        doc["StopSignal"] = s.stop_signal
    if s.stop_timeout is not None:
        doc["StopTimeout"] = s.stop_timeout
    if s.healthcheck is not None:
        doc["Healthcheck"] = healthcheck_doc(s.healthcheck)
    if s.network_disabled:
        doc["NetworkDisabled"] = True
    if s.mac_address:
        doc["MacAddress"] = s.mac_address  # deprecated since 1.44, still shown when set
    if s.shell:
        doc["Shell"] = list(s.shell)
    return doc


def healthcheck_doc(h: HealthConfig) -> dict[str, Any]:
    """Config.Healthcheck: every field is `omitempty` in dockerd's HealthcheckConfig, so
    `--health-cmd true` alone shows only its Test."""
    doc: dict[str, Any] = {}
    if h.test:
        doc["Test"] = list(h.test)
    for key, value in (("Interval", h.interval_ns), ("Timeout", h.timeout_ns), ("StartPeriod", h.start_period_ns),
                       ("StartInterval", h.start_interval_ns), ("Retries", h.retries)):  # fmt: skip
        if value:
            doc[key] = value
    return doc


def host_config_doc(c: Container) -> dict[str, Any]:
    return host_config_spec_doc(c.spec.host, c.runtime, c.name)


def health_doc(h: Health) -> dict[str, Any]:
    """State.Health: the status, the failing streak and the last probes, oldest first."""
    return {
        "Status": h.status.value,
        "FailingStreak": h.failing_streak,
        "Log": [
            {"Start": format_ns(r.start_ns), "End": format_ns(r.end_ns), "ExitCode": r.exit_code, "Output": r.output}
            for r in h.log
        ],
    }


def state_doc(c: Container) -> dict[str, Any]:
    st = c.state
    doc: dict[str, Any] = {
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
    # `omitempty`: dockerd has a Health only once a container with a healthcheck started.
    if c.health is not None:
        doc["Health"] = health_doc(c.health)
    return doc


def inspect_doc(
    c: Container,
    paths: Mapping[str, str],
    graph: Mapping[str, str],
    *,
    exec_ids: Sequence[str] = (),
    size_rw: int | None = None,
    size_root_fs: int | None = None,
) -> dict[str, Any]:
    """GET /containers/{id}/json (API 1.50). The sizes are given only for `size=1`: dockerd
    then shows them even when zero, and leaves them out otherwise."""
    argv = c.spec.argv
    doc: dict[str, Any] = {
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
        "ExecIDs": list(exec_ids) or None,
        "HostConfig": host_config_doc(c),
        "GraphDriver": {"Name": "overlayfs", "Data": dict(graph)},
        "Mounts": mounts_doc(c, paths.get("volumes", ""), paths.get("staging", "")),
        "Config": config_doc(c),
        "NetworkSettings": network_settings_doc(c),
    }
    if size_rw is not None:
        doc["SizeRw"] = size_rw
    if size_root_fs is not None:
        doc["SizeRootFs"] = size_root_fs
    return doc


def _endpoint_doc(request: EndpointRequest, live: Endpoint | None) -> dict[str, Any]:
    """network.EndpointSettings: the request, and while running what the start made."""
    fixed: dict[str, Any] = {k: v for k, v in (("IPv4Address", request.ipv4), ("IPv6Address", request.ipv6)) if v}
    if request.link_local:
        fixed["LinkLocalIPs"] = list(request.link_local)
    return {
        "IPAMConfig": fixed or None,
        "Links": list(request.links) or None,
        "Aliases": list(request.aliases) or None,
        "MacAddress": live.mac if live else request.mac,
        "DriverOpts": dict(request.driver_opts) or None,
        "GwPriority": request.gw_priority,
        "NetworkID": request.network_id,
        "EndpointID": live.endpoint_id if live else "",
        "Gateway": str(live.gateway4) if live and live.gateway4 else "",
        "IPAddress": str(live.ipv4.ip) if live and live.ipv4 else "",
        "IPPrefixLen": live.ipv4.network.prefixlen if live and live.ipv4 else 0,
        "IPv6Gateway": str(live.gateway6) if live and live.gateway6 else "",
        "GlobalIPv6Address": str(live.ipv6.ip) if live and live.ipv6 else "",
        "GlobalIPv6PrefixLen": live.ipv6.network.prefixlen if live and live.ipv6 else 0,
        "DNSNames": list(live.dns_names) if live and live.dns_names else None,
    }


def networks_doc(c: Container) -> dict[str, Any]:
    live = {e.network_id: e for e in c.state.endpoints} if c.state.running else {}
    return {r.network_name: _endpoint_doc(r, live.get(r.network_id)) for r in c.spec.endpoints}


def _ports_of(c: Container) -> tuple[tuple[ExposedPort, ...], tuple[Published, ...]]:
    """A running container's exposed ports and publications; none without an endpoint
    (stopped, --network none/host/container:), as dockerd's map goes with the endpoint."""
    if not c.state.running or not c.state.endpoints:
        return (), ()
    return exposed_ports(c.spec.exposed_ports), tuple(p for e in c.state.endpoints for p in e.ports)


def network_settings_doc(c: Container) -> dict[str, Any]:
    """NetworkSettings: the sandbox, the endpoints; the deprecated top-level fields are the
    default bridge's endpoint, as dockerd fills them."""
    running = c.state.running and c.state.netns
    bridge = next((e for e in c.state.endpoints if e.network_name == "bridge"), None) if running else None
    return {
        "Bridge": "",
        "SandboxID": hashlib.sha256(c.state.netns.encode()).hexdigest() if running else "",  # one per namespace
        "SandboxKey": c.state.netns if running else "",
        "Ports": network_settings_ports(*_ports_of(c)),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.endpoint_id if bridge else "",
        "Gateway": str(bridge.gateway4) if bridge and bridge.gateway4 else "",
        "GlobalIPv6Address": str(bridge.ipv6.ip) if bridge and bridge.ipv6 else "",
        "GlobalIPv6PrefixLen": bridge.ipv6.network.prefixlen if bridge and bridge.ipv6 else 0,
        "IPAddress": str(bridge.ipv4.ip) if bridge and bridge.ipv4 else "",
        "IPPrefixLen": bridge.ipv4.network.prefixlen if bridge and bridge.ipv4 else 0,
        "IPv6Gateway": str(bridge.gateway6) if bridge and bridge.gateway6 else "",
        "MacAddress": bridge.mac if bridge else "",
        "Networks": networks_doc(c),
    }


def mounts_doc(c: Container, volumes_root: str = "", staging_root: str = "") -> list[dict[str, Any]]:
    """Mounts (dockerd's MountPoint): binds, volumes and HostConfig.Mounts. `--tmpfs` mounts
    (HostConfig.Tmpfs) are not mount points in dockerd and are not listed."""
    out = []
    for index, m in enumerate(c.spec.host.all_mounts):
        if m.type == "tmpfs" and not m.from_api:
            continue  # --tmpfs
        if m.type == "image":
            # dockerd's Source: where the image's filesystem is mounted on the host.
            out.append({"Type": "image", "Name": m.source,
                        "Source": staged_paths(staging_root, index).image if staging_root else "",
                        "Destination": m.destination, "Mode": "", "RW": False, "Propagation": m.propagation})  # fmt: skip
            continue
        if m.type == "volume":
            # dockerd's default mode for a volume the user mounted is "z" (relabel), shown as
            # such; its anonymous ones for Config.Volumes and --volumes-from's show none.
            mode = m.mode or ("z" if m.origin is MountOrigin.USER else "")
            out.append({"Type": "volume", "Name": m.source, "Source": host_source(m, volumes_root),
                        "Destination": m.destination, "Driver": "local", "Mode": mode,
                        "RW": not m.read_only, "Propagation": ""})  # fmt: skip
        elif m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.destination, "Mode": m.mode,
                        "RW": not m.read_only, "Propagation": m.propagation})  # fmt: skip
        else:
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.destination, "Mode": "",
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
        up = "Up " + human_duration((now - parse_ns(st.started_at)) / 1e9)
        health = status_of(c.health, c.spec.healthcheck)
        if health is HealthStatus.NONE:
            return up
        # dockerd's Health.String(): "health: starting", else the status itself
        return f"{up} (health: starting)" if health is HealthStatus.STARTING else f"{up} ({health})"
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


def summary_doc(
    c: Container, *, size_rw: int | None = None, size_root_fs: int | None = None, volumes_root: str = ""
) -> dict[str, Any]:
    """One entry of GET /containers/json (API 1.50). SizeRw and SizeRootFs are `omitempty`
    in dockerd's Summary: a zero is left out even with `size=1`."""
    argv = c.spec.argv
    host: dict[str, Any] = {"NetworkMode": c.spec.host.network_mode}
    if c.spec.host.annotations:
        host["Annotations"] = dict(c.spec.host.annotations)
    doc: dict[str, Any] = {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.spec.image,
        "ImageID": c.image_id,
        "Command": _command(argv),
        "Created": unix_seconds(c.created),
        "Ports": summary_ports(*_ports_of(c)),
        "Labels": dict(c.spec.labels),
        "State": c.state.status.value,
        "Status": status_text(c),
        "HostConfig": host,
        "NetworkSettings": {"Networks": networks_doc(c)},
        "Mounts": mounts_doc(c, volumes_root),
    }
    if size_rw:
        doc["SizeRw"] = size_rw
    if size_root_fs:
        doc["SizeRootFs"] = size_root_fs
    return doc
