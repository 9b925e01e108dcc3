"""A container's files: its data directory (log, host files) and the OCI bundle that
each start writes for the runtime."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dockyard.config import DaemonConfig
from dockyard.errors import Conflict, InvalidArgument
from dockyard.linux.fs import atomic_write
from dockyard.linux.hostinfo import device_node, host_devices, probe_path, read_host_facts
from dockyard.model.admission import HostFacts, admit, parse_cpuset
from dockyard.model.containers import Container, HostSpec
from dockyard.model.endpoints import Endpoint, own_hosts_lines
from dockyard.model.hostconfig import (
    HOST_GATEWAY,
    DeviceNode,
    DeviceRule,
    ExtraHost,
    NamespaceKind,
    NamespaceMode,
    parse_extra_host,
)
from dockyard.model.mounts import MountSpec, host_source, oci_options, oci_type
from dockyard.runtime.seccomp import SeccompProfiles, shared_profiles
from dockyard.runtime.seccompfilters import BPF_ANNOTATION, FilterUse
from dockyard.runtime.spec import Mount, Namespaces, Resources, SpecInput, build_spec
from dockyard.runtime.users import resolve_in_rootfs
from dockyard.volumes.copyup import copy_up

log = logging.getLogger(__name__)

INIT_IN_CONTAINER = "/sbin/docker-init"  # where dockerd puts its init, so tools look there
DEFAULT_CGROUP_PARENT = "/dockyard"


class ContainerFiles:
    """Where one container's files live."""

    def __init__(self, config: DaemonConfig, container_id: str) -> None:
        self.config = config
        self.data = config.data_root / "containers" / container_id
        self.bundle = config.exec_root / "containers" / container_id
        self.exit_dir = config.exec_root / "exits"
        self.volumes_root = str(config.data_root / "volumes")  # the volumes it mounts are there

    @property
    def hostname(self) -> Path:
        return self.data / "hostname"

    @property
    def hosts(self) -> Path:
        return self.data / "hosts"

    @property
    def resolv(self) -> Path:
        return self.data / "resolv.conf"

    @property
    def persist(self) -> Path:
        return self.bundle / "persist"

    @property
    def attach_socket(self) -> Path:
        return self.bundle / "attach"

    def write_host_files(
        self,
        hostname: str,
        *,
        extra_hosts: Sequence[ExtraHost] = (),
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_options: Sequence[str] = (),
        host_network: bool = False,
        embedded_dns: bool = False,
    ) -> None:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf as the container will see them.
        On the host's network the host's own hosts file is the base and loopback resolvers
        stay (they answer there)."""
        self.data.mkdir(parents=True, exist_ok=True)
        atomic_write(self.hostname, (hostname + "\n").encode())
        base = _read_text(Path("/etc/hosts")).encode() if host_network else b""
        atomic_write(self.hosts, base + hosts_file(extra_hosts, standard=not host_network))
        host_resolv = _read_text(Path("/etc/resolv.conf"))
        if embedded_dns and not any(o.startswith("ndots:") for o in dns_options):
            dns_options = (*dns_options, "ndots:0")  # as dockerd: names go to the embedded server first
        atomic_write(self.resolv, resolv_conf(host_resolv, dns, dns_search, dns_options, keep_loopback=host_network))


EMBEDDED_DNS = ("127.0.0.11",)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def resolv_conf(
    host: str, dns: Sequence[str], search: Sequence[str], options: Sequence[str], *, keep_loopback: bool = False
) -> bytes:
    """The host's resolv.conf without loopback nameservers (they mean nothing in a netns);
    --dns, --dns-search and --dns-option replace the host's lines of their kind, as dockerd."""
    kept = []
    for line in host.splitlines():
        parts = line.split()
        kind = parts[0] if parts else ""
        loopback = len(parts) > 1 and (parts[1].startswith("127.") or parts[1] == "::1") and not keep_loopback
        if kind == "nameserver" and (dns or loopback):
            continue
        if (kind in ("search", "domain") and search) or (kind == "options" and options):
            continue
        kept.append(line)
    kept += [f"nameserver {server}" for server in dns]
    if search:
        kept.append("search " + " ".join(search))
    if options:
        kept.append("options " + " ".join(options))
    return ("\n".join(kept) + "\n").encode() if kept else b""


def hosts_file(extra_hosts: Sequence[ExtraHost] = (), *, standard: bool = True) -> bytes:
    """dockerd's standard entries (unless the host's file is the base), then the extra ones."""
    base = "" if not standard else (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
    )
    return (base + "".join(f"{h.ip}\t{h.name}\n" for h in extra_hosts)).encode()


def _extra_hosts(entries: Sequence[str], host_gateway: str) -> list[ExtraHost]:
    """--add-host entries, `host-gateway` as the address of the default bridge's gateway."""
    hosts = [parse_extra_host(e) for e in entries]
    if any(h.ip == HOST_GATEWAY for h in hosts) and not host_gateway:
        raise InvalidArgument("unable to derive the IP value for host-gateway")
    return [ExtraHost(h.name, host_gateway) if h.ip == HOST_GATEWAY else h for h in hosts]


def _namespace(mode: NamespaceMode, joined: str, what: str) -> str | None:
    """The spec's choice for one namespace: new (""), the host's (None), or a path to join."""
    if mode.kind is NamespaceKind.HOST:
        return None
    if mode.kind is NamespaceKind.CONTAINER:
        if not joined:
            raise Conflict(f"cannot join {what} of a non running container: {mode.container}")
        return joined
    return ""


def _depth(m: MountSpec) -> int:
    return len([p for p in m.destination.split("/") if p])


def _devices(h: HostSpec) -> tuple[tuple[DeviceNode, ...], tuple[DeviceRule, ...]]:
    """Nodes to create and cgroup rules to allow: --device, --device-cgroup-rule, --privileged."""
    nodes: list[DeviceNode] = list(host_devices()) if h.privileged else []
    rules: list[DeviceRule] = []
    for d in h.devices:
        node = device_node(d.path_on_host, d.path_in_container)
        if node is None:
            raise InvalidArgument(
                f'error gathering device information while adding custom device "{d.path_on_host}": not a device node'
            )
        if h.privileged and d.path_on_host == d.path_in_container:
            continue  # already there with every host device
        nodes.append(node)
        rules.append(DeviceRule(node.type, node.major, node.minor, d.cgroup_permissions))
    rules += h.device_cgroup_rules
    return tuple(nodes), tuple(rules)


def _cgroups_path(h: HostSpec, container_id: str) -> str:
    parent = h.cgroup_parent or DEFAULT_CGROUP_PARENT
    # Relative parents are taken from the hierarchy's root, so the place does not depend on
    # where the daemon itself runs.
    return "/" + "/".join(p for p in [*parent.split("/"), container_id] if p and p != ".")


def cgroup_resources(h: HostSpec, facts: HostFacts, devices: tuple[DeviceRule, ...] = ()) -> Resources:
    """The container's cgroup limits, for the OCI spec of a start and for `docker update`."""
    return Resources(
        memory=h.memory,
        # Without swap accounting the implied default (2x memory) cannot apply;
        # an explicit MemorySwap was refused by admission already.
        memory_swap=h.memory_swap if facts.swap_limit else 0,
        nano_cpus=h.nano_cpus,
        cpu_shares=h.cpu_shares,
        pids_limit=h.pids_limit,
        memory_reservation=h.memory_reservation,
        memory_swappiness=h.memory_swappiness,
        oom_kill_disable=bool(h.oom_kill_disable),
        cpu_period=h.cpu_period,
        cpu_quota=h.cpu_quota,
        cpuset_cpus=h.cpuset_cpus,
        cpuset_mems=h.cpuset_mems,
        blkio_weight=h.blkio_weight,
        devices=devices,
        allow_all_devices=h.privileged,
    )


def write_bundle(
    c: Container,
    files: ContainerFiles,
    rootfs: Path,
    netns: str | None,
    *,
    facts: HostFacts | None = None,
    pid_namespace: str = "",
    ipc_namespace: str = "",
    seccomp: SeccompProfiles | None = None,
    endpoints: Sequence[Endpoint] = (),
    host_files: ContainerFiles | None = None,
    host_gateway: str = "",
    embedded_dns: bool = False,
    seccomp_filter: Callable[[Mapping[str, Any]], FilterUse | None] | None = None,
    staged: Mapping[str, str] | None = None,
) -> str | None:
    """The OCI bundle (config.json) for one start of `c`, on its mounted rootfs (blocking).

    `pid_namespace`/`ipc_namespace`: for `--pid/--ipc container:<x>`, the engine passes the
    other container's /proc/<pid>/ns/<kind> ("" when it does not run: a Conflict here).
    `facts`: the host as read once by the caller; read now when not given.
    `seccomp`: the daemon's profiles (one per daemon); when not given, the ones shared by
    every caller with this daemon configuration.
    `seccomp_filter`: the runtime's compiled programs (RuntimeDriver.seccomp_filter); the
    answer is the key to keep the program the runtime compiles for this start under, if any.
    `staged`: destination -> host path of the mounts engine/staging.py prepared (images,
    subpaths); the runtime binds those instead of the mount's own source."""
    s = c.spec
    h = s.host
    facts = facts if facts is not None else read_host_facts()
    admit(s, facts, probe_path)  # the host may have changed since create (a bind source removed)
    config = files.config
    profiles = seccomp if seccomp is not None else shared_profiles(config.seccomp_profile, config.seccomp_profile_json)
    profile = profiles.for_container(h.security, h.privileged)
    user = resolve_in_rootfs(rootfs, s.user, h.group_add)
    cwd = s.working_dir or "/"
    _ensure_dir_in_rootfs(rootfs, cwd, user.uid, user.gid)
    network_mode = h.network_mode
    shared = host_files if host_files is not None else files  # `container:<id>`: that one's files
    if network_mode.startswith("container:"):
        pass  # hostname, hosts and resolv.conf are the other container's
    elif network_mode == "host":
        files.write_host_files(
            s.hostname,
            extra_hosts=_extra_hosts(h.extra_hosts, host_gateway),
            dns=h.dns or config.network.dns,
            dns_search=h.dns_search,
            dns_options=h.dns_options,
            host_network=True,
        )
    else:
        files.write_host_files(
            s.hostname,
            extra_hosts=_extra_hosts(h.extra_hosts, host_gateway)
            + [ExtraHost(name, ip) for ip, name in own_hosts_lines(endpoints, s.hostname, s.domainname)],
            dns=EMBEDDED_DNS if embedded_dns else (h.dns or config.network.dns),
            embedded_dns=embedded_dns,
            dns_search=h.dns_search,
            dns_options=h.dns_options,
        )
    binds = ("rbind", "rprivate")
    user_mounts = sorted(h.all_mounts, key=_depth)
    staged = staged or {}

    def source(m: MountSpec) -> str:
        return staged.get(m.destination) or host_source(m, files.volumes_root)

    for m in user_mounts:
        if m.type == "volume" and not m.no_copy and os.path.isdir(source(m)):
            copy_up(rootfs, m.destination, Path(source(m)))  # only while it is empty
        if m.type == "bind" and (not m.from_api or m.create_mountpoint) and not os.path.exists(m.source):
            os.makedirs(m.source, exist_ok=True)  # as dockerd does for -v host paths
        if m.selinux_label:
            log.debug("container %s: %s: no SELinux on this host, the :z/:Z relabel is skipped", c.id[:12], m.destination)
    mounts = [
        Mount("/etc/resolv.conf", "bind", str(shared.resolv), binds),
        Mount("/etc/hostname", "bind", str(shared.hostname), binds),
        Mount("/etc/hosts", "bind", str(shared.hosts), binds),
        *(Mount(m.destination, oci_type(m), source(m), oci_options(m)) for m in user_mounts),
    ]
    args = s.argv
    if h.init_enabled:
        mounts.append(Mount(INIT_IN_CONTAINER, "bind", facts.init_path, ("bind", "ro")))
        args = (INIT_IN_CONTAINER, "--", *args)
    ipc = h.ipc
    shm_size: int | None = h.shm_size
    if ipc.kind is NamespaceKind.NONE:
        shm_size = None
    elif ipc.kind is NamespaceKind.HOST:
        mounts.append(Mount("/dev/shm", "bind", "/dev/shm", binds))
    uts = h.uts
    devices, device_rules = _devices(h)
    spec = build_spec(
        SpecInput(
            rootfs=str(rootfs),
            args=args,
            env=s.env,
            cwd=cwd,
            hostname=s.hostname,
            cgroups_path=_cgroups_path(h, c.id),
            user=user,
            tty=s.tty,
            console_size=h.console_size,
            mounts=tuple(mounts),
            readonly_rootfs=h.readonly_rootfs,
            privileged=h.privileged,
            cap_add=h.cap_add,
            cap_drop=h.cap_drop,
            shm_size=shm_size,
            resources=cgroup_resources(h, facts, device_rules),
            sysctls=tuple(h.sysctls.items()),
            netns_path=netns,
            annotations=tuple(h.annotations.items()),
            domainname=s.domainname,
            namespaces=Namespaces(
                pid=_namespace(h.pid, pid_namespace, "PID"),
                ipc=_namespace(ipc, ipc_namespace, "IPC"),
                uts=None if uts.kind is NamespaceKind.HOST else "",
                cgroup="" if h.cgroupns.kind is NamespaceKind.PRIVATE else None,
            ),
            rlimits=h.ulimits,
            devices=devices,
            no_new_privileges=h.security.no_new_privileges_or(config.no_new_privileges),
            oom_score_adj=h.oom_score_adj or None,
            writable_cgroups=bool(h.security.writable_cgroups),
            available_caps=tuple(sorted(facts.caps)),
            seccomp=profile,
            seccomp_host=profiles.host,
            extra_masked_paths=thermal_throttle_paths(),
        )
    )
    files.bundle.mkdir(parents=True, exist_ok=True)
    # The previous run's fifos and pid files must not confuse this one.
    for stale in ("ctl", "winsz", "pidfile", "conmon.pid", "attach"):
        (files.bundle / stale).unlink(missing_ok=True)
    keep_as = None
    if seccomp_filter is not None and "seccomp" in spec["linux"]:
        use = seccomp_filter(spec["linux"]["seccomp"])
        if use is not None and use.bpf is not None:
            spec.setdefault("annotations", {})[BPF_ANNOTATION] = use.bpf
        elif use is not None:
            keep_as = use.key
    atomic_write(files.bundle / "config.json", json.dumps(spec).encode())
    return keep_as


@functools.cache
def thermal_throttle_paths() -> tuple[str, ...]:
    """The per-CPU thermal_throttle directories dockerd also masks (GHSA-6fw5-f8r9-fgfm):
    a host fact, read once."""
    cpus = parse_cpuset(_read_text(Path("/sys/devices/system/cpu/possible")))
    paths = (f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in sorted(cpus or ()))
    return tuple(p for p in paths if os.path.exists(p))


def _ensure_dir_in_rootfs(rootfs: Path, path: str, uid: int, gid: int) -> None:
    """mkdir -p a path inside the rootfs without following symlinks out of it."""
    current = rootfs
    for part in [p for p in path.split("/") if p and p != "."]:
        if part == "..":
            raise InvalidArgument(f"invalid working directory {path}")
        nxt = current / part
        if nxt.is_symlink():
            return  # let the runtime resolve it inside the container's root
        if not nxt.exists():
            nxt.mkdir(mode=0o755)
            os.chown(nxt, uid, gid)
        current = nxt

