"""The OCI runtime spec (config.json) for a container: a pure function of typed inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.model.hostconfig import (
    ALL_CAPS,
    DEFAULT_CAPS,
    MASKED_PATHS,
    READONLY_PATHS,
    DeviceNode,
    DeviceRule,
    DeviceType,
    Ulimit,
)
from dockyard.model.seccomp import LinuxSeccomp, SeccompHost, SeccompProfile, resolve

# re-exported: the capability sets and the path lists live in the model
__all__ = ["ALL_CAPS", "DEFAULT_CAPS", "MASKED_PATHS", "READONLY_PATHS"]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# dockerd's device cgroup rules after its deny-all (moby oci/defaults.go): zero, null,
# urandom, random, tty, console; fuse denied. runc appends its own defaults after these
# (mknod of any node, /dev/full, the pts and ptmx devices).
DEFAULT_DEVICE_RULES: tuple[tuple[bool, DeviceRule], ...] = (
    (True, DeviceRule(DeviceType.CHAR, 1, 5, "rwm")),
    (True, DeviceRule(DeviceType.CHAR, 1, 3, "rwm")),
    (True, DeviceRule(DeviceType.CHAR, 1, 9, "rwm")),
    (True, DeviceRule(DeviceType.CHAR, 1, 8, "rwm")),
    (True, DeviceRule(DeviceType.CHAR, 5, 0, "rwm")),
    (True, DeviceRule(DeviceType.CHAR, 5, 1, "rwm")),
    (False, DeviceRule(DeviceType.CHAR, 10, 229, "rwm")),
)


@dataclass(frozen=True)
class ProcessUser:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    memory: int = 0
    memory_swap: int = 0  # memory + swap, as docker and cgroup v1 count it; -1: unlimited
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int | None = None
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    blkio_weight: int = 0
    devices: tuple[DeviceRule, ...] = ()  # allowed after the default deny-all
    allow_all_devices: bool = False  # --privileged


@dataclass(frozen=True)
class Namespaces:
    """Per namespace: "" makes a new one, a path joins that one, None shares the host's."""

    pid: str | None = ""
    ipc: str | None = ""
    uts: str | None = ""
    cgroup: str | None = None  # the host's: dockerd's default on cgroup v1


@dataclass(frozen=True)
class SpecInput:
    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    hostname: str
    cgroups_path: str
    user: ProcessUser = ProcessUser()
    tty: bool = False
    console_size: tuple[int, int] = (0, 0)  # height, width
    mounts: tuple[Mount, ...] = ()
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    shm_size: int | None = 64 * 1024 * 1024  # None: no /dev/shm (--ipc none)
    resources: Resources = Resources()
    sysctls: tuple[tuple[str, str], ...] = ()
    netns_path: str | None = ""  # join this network namespace; empty: the runtime makes a new one; None: the host's
    annotations: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    domainname: str = ""
    namespaces: Namespaces = Namespaces()
    rlimits: tuple[Ulimit, ...] = ()
    devices: tuple[DeviceNode, ...] = ()  # nodes the runtime creates in the container's /dev
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    writable_cgroups: bool = False
    available_caps: tuple[str, ...] = ALL_CAPS  # the bounding set we may hand out
    seccomp: SeccompProfile | None = None  # the profile chosen for the container; None: unconfined
    seccomp_host: SeccompHost = field(default_factory=SeccompHost)  # what the profile's conditions look at
    extra_masked_paths: tuple[str, ...] = ()  # the host's own, after dockerd's list


def _cap_name(name: str) -> str:
    upper = name.upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def capabilities(
    privileged: bool, add: Sequence[str], drop: Sequence[str], available: Sequence[str] = ALL_CAPS
) -> list[str]:
    """dockerd's rule: ALL in add gives everything not dropped; ALL in drop gives just the
    adds; otherwise drop from the defaults first, then add (so add wins over drop).
    "Everything" is what the bounding set holds (`available`), as dockerd's GetAllCapabilities."""
    everything = [c for c in ALL_CAPS if c in set(available)]
    if privileged:
        return everything
    adds = [_cap_name(c) for c in add]
    drops = {_cap_name(c) for c in drop}
    if "CAP_ALL" in adds:
        return [c for c in everything if c not in drops]
    if "CAP_ALL" in drops:
        return list(dict.fromkeys(adds))
    caps = [c for c in DEFAULT_CAPS if c not in drops and c in everything]
    return list(dict.fromkeys(caps + adds))


def process_env(env: Sequence[str], hostname: str, tty: bool) -> list[str]:
    """The environment a container process gets: defaults first, user values win."""
    merged: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if tty:
        merged["TERM"] = "xterm"
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def _default_mounts(shm_size: int | None, privileged: bool, writable_cgroups: bool) -> list[dict[str, Any]]:
    sys_options = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    cgroup_options = ([] if privileged or writable_cgroups else ["ro"]) + ["nosuid", "noexec", "nodev"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cgroup_options},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    ]  # fmt: skip
    if shm_size is not None:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k"]})  # fmt: skip
    return mounts


def _device_rule(rule: DeviceRule, allow: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"allow": allow, "type": rule.type.value}
    if rule.major is not None:
        out["major"] = rule.major
    if rule.minor is not None:
        out["minor"] = rule.minor
    out["access"] = rule.access
    return out


def _memory(res: Resources) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    if res.memory:
        memory["limit"] = res.memory
    if res.memory_reservation:
        memory["reservation"] = res.memory_reservation
    if res.memory_swap:
        memory["swap"] = res.memory_swap
    if res.memory_swappiness is not None and res.memory_swappiness >= 0:
        memory["swappiness"] = res.memory_swappiness
    if res.oom_kill_disable:
        memory["disableOOMKiller"] = True
    return memory


def cpu_period_quota(res: Resources) -> tuple[int, int]:
    """The CFS period and quota (0: not set). NanoCpus means a 100 ms period, as dockerd."""
    period = quota = 0
    if res.nano_cpus:
        period = 100_000
        quota = res.nano_cpus * 100_000 // 1_000_000_000
    return res.cpu_period or period, res.cpu_quota or quota


def _cpu(res: Resources) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    period, quota = cpu_period_quota(res)
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        cpu["mems"] = res.cpuset_mems
    return cpu


def _resources(res: Resources) -> dict[str, Any]:
    if res.allow_all_devices:
        devices: list[dict[str, Any]] = [{"allow": True, "access": "rwm"}]
    else:
        devices = [
            {"allow": False, "access": "rwm"},
            *(_device_rule(rule, allow) for allow, rule in DEFAULT_DEVICE_RULES),
            *(_device_rule(r) for r in res.devices),
        ]
    out: dict[str, Any] = {"devices": devices}
    memory = _memory(res)
    if memory:
        out["memory"] = memory
    cpu = _cpu(res)
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit is not None and res.pids_limit > 0:
        out["pids"] = {"limit": res.pids_limit}
    if res.blkio_weight:
        out["blockIO"] = {"weight": res.blkio_weight}
    return out


_RLIM_INFINITY = 2**64 - 1


def _rlimit(u: Ulimit) -> dict[str, Any]:
    def value(v: int) -> int:
        return _RLIM_INFINITY if v < 0 else v

    return {"type": u.rlimit, "hard": value(u.hard), "soft": value(u.soft)}


def _namespaces(inp: SpecInput) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ns = inp.namespaces
    for kind, path in (("pid", ns.pid), ("ipc", ns.ipc), ("uts", ns.uts)):
        if path is not None:
            out.append({"type": kind, "path": path} if path else {"type": kind})
    out.append({"type": "mount"})
    if inp.netns_path is not None:
        out.append({"type": "network", "path": inp.netns_path} if inp.netns_path else {"type": "network"})
    if ns.cgroup is not None:
        out.append({"type": "cgroup", "path": ns.cgroup} if ns.cgroup else {"type": "cgroup"})
    return out


def seccomp_json(s: LinuxSeccomp) -> dict[str, Any]:
    """linux.seccomp as the runtime reads it; optional fields only when set."""
    out: dict[str, Any] = {"defaultAction": s.default_action}
    if s.default_errno_ret is not None:
        out["defaultErrnoRet"] = s.default_errno_ret
    if s.architectures:
        out["architectures"] = list(s.architectures)
    if s.flags:
        out["flags"] = list(s.flags)
    if s.listener_path:
        out["listenerPath"] = s.listener_path
    if s.listener_metadata:
        out["listenerMetadata"] = s.listener_metadata
    syscalls = []
    for rule in s.syscalls:
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.errno_ret is not None:
            entry["errnoRet"] = rule.errno_ret
        if rule.args:
            entry["args"] = [
                {"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op} for a in rule.args
            ]
        syscalls.append(entry)
    out["syscalls"] = syscalls
    return out


def build_spec(inp: SpecInput) -> dict[str, Any]:
    caps = capabilities(inp.privileged, inp.cap_add, inp.cap_drop, inp.available_caps)
    process: dict[str, Any] = {
        "terminal": inp.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid},
        "args": list(inp.args),
        "env": process_env(inp.env, inp.hostname, inp.tty),
        "cwd": inp.cwd or "/",
        "capabilities": {key: caps for key in ("bounding", "effective", "permitted")},
        "noNewPrivileges": inp.no_new_privileges,
    }
    if inp.user.additional_gids:
        process["user"]["additionalGids"] = list(inp.user.additional_gids)
    if inp.tty and inp.console_size[0] and inp.console_size[1]:
        process["consoleSize"] = {"height": inp.console_size[0], "width": inp.console_size[1]}
    if inp.rlimits:
        process["rlimits"] = [_rlimit(u) for u in inp.rlimits]
    if inp.oom_score_adj is not None:
        process["oomScoreAdj"] = inp.oom_score_adj
    mounts = _default_mounts(inp.shm_size, inp.privileged, inp.writable_cgroups)
    taken = {m.destination for m in inp.mounts}
    mounts = [m for m in mounts if m["destination"] not in taken]
    mounts += [
        {"destination": m.destination, "type": m.type, "source": m.source, "options": list(m.options)}
        for m in inp.mounts
    ]
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inp),
        "cgroupsPath": inp.cgroups_path,
        "resources": _resources(inp.resources),
    }
    if inp.devices:
        linux["devices"] = [
            {"path": d.path, "type": d.type.value, "major": d.major, "minor": d.minor,
             "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}
            for d in inp.devices
        ]  # fmt: skip
    sysctls = dict(inp.sysctls)
    if inp.domainname and inp.namespaces.uts is not None:
        # No OCI field that runc 1.1 reads: the NIS domain name goes in by sysctl, as dockerd does.
        sysctls.setdefault("kernel.domainname", inp.domainname)
    if sysctls:
        linux["sysctl"] = sysctls
    if not inp.privileged:
        linux["maskedPaths"] = [*MASKED_PATHS, *inp.extra_masked_paths]
        linux["readonlyPaths"] = list(READONLY_PATHS)
    seccomp = resolve(inp.seccomp, inp.seccomp_host, frozenset(caps)) if inp.seccomp is not None else None
    if seccomp is not None:
        linux["seccomp"] = seccomp_json(seccomp)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs, "readonly": inp.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    }
    if inp.namespaces.uts is not None:  # with the host's UTS namespace, the runtime must not set it
        spec["hostname"] = inp.hostname
    if inp.annotations:
        spec["annotations"] = dict(inp.annotations)
    return spec
