"""The OCI runtime spec (config.json) for a container: a pure function of typed inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# dockerd's default capability set.
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip

ALL_CAPS = DEFAULT_CAPS + (
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


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
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int | None = None


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
    shm_size: int = 64 * 1024 * 1024
    resources: Resources = Resources()
    sysctls: tuple[tuple[str, str], ...] = ()
    netns_path: str = ""  # join this network namespace; empty: the runtime makes a new one
    annotations: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _cap_name(name: str) -> str:
    upper = name.upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def capabilities(privileged: bool, add: Sequence[str], drop: Sequence[str]) -> list[str]:
    """dockerd's rule: ALL in add gives everything not dropped; ALL in drop gives just the
    adds; otherwise drop from the defaults first, then add (so add wins over drop)."""
    if privileged:
        return list(ALL_CAPS)
    adds = [_cap_name(c) for c in add]
    drops = {_cap_name(c) for c in drop}
    if "CAP_ALL" in adds:
        return [c for c in ALL_CAPS if c not in drops]
    if "CAP_ALL" in drops:
        return list(dict.fromkeys(adds))
    caps = [c for c in DEFAULT_CAPS if c not in drops]
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


def _default_mounts(shm_size: int, privileged: bool) -> list[dict[str, Any]]:
    sys_options = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k"]},
    ]  # fmt: skip


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if res.memory:
        memory: dict[str, Any] = {"limit": res.memory}
        if res.memory_swap:
            memory["swap"] = res.memory_swap
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.nano_cpus:
        cpu["period"] = 100_000
        cpu["quota"] = res.nano_cpus * 100_000 // 1_000_000_000
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit is not None and res.pids_limit > 0:
        out["pids"] = {"limit": res.pids_limit}
    return out


def build_spec(inp: SpecInput) -> dict[str, Any]:
    caps = capabilities(inp.privileged, inp.cap_add, inp.cap_drop)
    process: dict[str, Any] = {
        "terminal": inp.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid},
        "args": list(inp.args),
        "env": process_env(inp.env, inp.hostname, inp.tty),
        "cwd": inp.cwd or "/",
        "capabilities": {key: caps for key in ("bounding", "effective", "permitted")},
        "noNewPrivileges": False,
    }
    if inp.user.additional_gids:
        process["user"]["additionalGids"] = list(inp.user.additional_gids)
    if inp.tty and inp.console_size[0] and inp.console_size[1]:
        process["consoleSize"] = {"height": inp.console_size[0], "width": inp.console_size[1]}
    mounts = _default_mounts(inp.shm_size, inp.privileged)
    taken = {m.destination for m in inp.mounts}
    mounts = [m for m in mounts if m["destination"] not in taken]
    mounts += [
        {"destination": m.destination, "type": m.type, "source": m.source, "options": list(m.options)}
        for m in inp.mounts
    ]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
        + [{"type": "network", "path": inp.netns_path} if inp.netns_path else {"type": "network"}],
        "cgroupsPath": inp.cgroups_path,
        "resources": _resources(inp.resources),
    }
    if inp.sysctls:
        linux["sysctl"] = dict(inp.sysctls)
    if not inp.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": inp.rootfs, "readonly": inp.readonly_rootfs},
        "hostname": inp.hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if inp.annotations:
        spec["annotations"] = dict(inp.annotations)
    return spec
