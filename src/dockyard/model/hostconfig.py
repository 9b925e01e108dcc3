"""The typed pieces of a HostConfig and the string forms users write them in:
namespace modes, devices, device cgroup rules, ulimits, security options, sysctls,
extra hosts, capabilities. Pure: every parser takes text and returns a value or raises
InvalidArgument with dockerd's (or runc's) wording."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.model.seccomp import SeccompKind, parse_profile

__all__ = ["SeccompKind"]  # re-exported: the security options name it

# dockerd's default capability set.
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip

# Every capability the kernel knows (up to CAP_CHECKPOINT_RESTORE, 40).
ALL_CAPS = DEFAULT_CAPS + (
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

# Kernel capability numbers, to read a CapBnd mask.
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}  # fmt: skip


def caps_from_mask(mask: int) -> frozenset[str]:
    """The names of the capabilities set in a /proc/<pid>/status Cap* mask."""
    return frozenset(name for name, bit in CAP_NUMBERS.items() if mask >> bit & 1)


def normalize_caps(names: Iterable[str], field: str) -> tuple[str, ...]:
    """`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `ALL` stays."""
    out = []
    for name in names:
        upper = name.upper()
        if upper != "ALL" and not upper.startswith("CAP_"):
            upper = "CAP_" + upper
        if upper != "ALL" and upper not in CAP_NUMBERS:
            raise InvalidArgument(f'invalid {field}: unknown capability: "{upper}"')
        out.append(upper)
    return tuple(out)


# ---- namespaces ----------------------------------------------------------------------


class NamespaceKind(enum.StrEnum):
    PRIVATE = "private"
    SHAREABLE = "shareable"  # ipc only: private, and others may join it
    NONE = "none"  # ipc only: private, without /dev/shm
    HOST = "host"
    CONTAINER = "container"  # join another container's namespace


@dataclass(frozen=True)
class NamespaceMode:
    kind: NamespaceKind = NamespaceKind.PRIVATE
    container: str = ""  # with CONTAINER: the other container's name or id, as given

    @property
    def private(self) -> bool:
        return self.kind in (NamespaceKind.PRIVATE, NamespaceKind.SHAREABLE, NamespaceKind.NONE)


def _namespace_mode(text: str, what: str, allowed: Sequence[NamespaceKind], container: bool) -> NamespaceMode:
    if text == "":
        return NamespaceMode()
    kind, sep, ref = text.partition(":")
    if container and kind == "container" and sep and ref:
        return NamespaceMode(NamespaceKind.CONTAINER, ref)
    if not sep and kind in {k.value for k in allowed}:
        return NamespaceMode(NamespaceKind(kind))
    raise InvalidArgument(f"invalid {what} mode: {text}")


def parse_ipc_mode(text: str) -> NamespaceMode:
    kinds = (NamespaceKind.PRIVATE, NamespaceKind.SHAREABLE, NamespaceKind.NONE, NamespaceKind.HOST)
    return _namespace_mode(text, "IPC", kinds, container=True)


def parse_pid_mode(text: str) -> NamespaceMode:
    return _namespace_mode(text, "PID", (NamespaceKind.HOST,), container=True)


def parse_uts_mode(text: str) -> NamespaceMode:
    return _namespace_mode(text, "UTS", (NamespaceKind.HOST,), container=False)


def parse_cgroupns_mode(text: str) -> NamespaceMode:
    if text == "":
        return NamespaceMode(NamespaceKind.HOST)  # dockerd's default on cgroup v1 hosts
    if text in ("host", "private"):
        return NamespaceMode(NamespaceKind(text))
    raise InvalidArgument(f"invalid cgroup namespace mode: {text}")


def check_userns_mode(text: str) -> None:
    if text not in ("", "host"):
        raise InvalidArgument(
            f'invalid UsernsMode "{text}": user namespaces are not supported by this daemon; use "host" or leave it empty'
        )


# ---- devices -------------------------------------------------------------------------


class DeviceType(enum.StrEnum):
    ALL = "a"
    CHAR = "c"
    BLOCK = "b"


@dataclass(frozen=True)
class DeviceMapping:
    """`--device /dev/x[:/dev/y[:rwm]]` as HostConfig.Devices carries it."""

    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


@dataclass(frozen=True)
class DeviceRule:
    """A device cgroup rule: `c 1:3 rwm`, `b *:* r`, `a *:* rwm`. None is the `*` wildcard."""

    type: DeviceType
    major: int | None
    minor: int | None
    access: str

    def __str__(self) -> str:
        def num(n: int | None) -> str:
            return "*" if n is None else str(n)

        return f"{self.type.value} {num(self.major)}:{num(self.minor)} {self.access}"


@dataclass(frozen=True)
class DeviceNode:
    """A device node on the host, as the OCI spec's linux.devices entry needs it."""

    path: str  # inside the container
    type: DeviceType  # CHAR or BLOCK
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


def _check_access(access: str) -> bool:
    return bool(access) and len(access) <= 3 and set(access) <= set("rwm") and len(set(access)) == len(access)


def check_device(d: DeviceMapping) -> DeviceMapping:
    if not d.path_on_host.startswith("/"):
        raise InvalidArgument(f"invalid device path: {d.path_on_host}: device path must be absolute")
    target = d.path_in_container or d.path_on_host
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid device path in container: {target}: path must be absolute")
    access = d.cgroup_permissions or "rwm"
    if not _check_access(access):
        raise InvalidArgument(f"invalid device mode: {d.cgroup_permissions}")
    return DeviceMapping(d.path_on_host, target, access)


_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def parse_device_rule(text: str) -> DeviceRule:
    match = _RULE.match(text)
    if match is None or not _check_access(match.group(4)):
        raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = match.groups()
    return DeviceRule(
        DeviceType(kind), None if major == "*" else int(major), None if minor == "*" else int(minor), access
    )


# ---- ulimits -------------------------------------------------------------------------

# go-units' names; the OCI spec wants RLIMIT_<NAME>.
ULIMIT_NAMES = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip


@dataclass(frozen=True)
class Ulimit:
    name: str  # nofile
    soft: int  # -1: unlimited
    hard: int

    @property
    def rlimit(self) -> str:
        return "RLIMIT_" + self.name.upper()


def check_ulimit(u: Ulimit) -> Ulimit:
    if u.name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit type: {u.name}")
    soft = u.soft if u.soft >= 0 else -1
    hard = u.hard if u.hard >= 0 else -1
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {u.soft} > {u.hard}")
    return Ulimit(u.name, soft, hard)


# ---- security options ----------------------------------------------------------------

# dockerd's defaults (moby daemon/pkg/oci/defaults.go), in its order; a privileged container
# has neither. The host may add more masked paths (per-CPU thermal_throttle directories).
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class SecurityOptions:
    no_new_privileges: bool | None = None  # None: the daemon's default (daemon.json no-new-privileges)
    seccomp: SeccompKind = SeccompKind.DEFAULT
    seccomp_profile: str = ""  # the JSON text, with PROFILE
    apparmor: str = ""  # only "unconfined" is accepted: this daemon loads no AppArmor profiles
    label_disable: bool = False
    writable_cgroups: bool | None = None

    def no_new_privileges_or(self, daemon_default: bool) -> bool:
        return self.no_new_privileges if self.no_new_privileges is not None else daemon_default


def _parse_bool(text: str) -> bool | None:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _seccomp_option(value: str) -> tuple[SeccompKind, str]:
    if value == "unconfined":
        return SeccompKind.UNCONFINED, ""
    if value == "builtin":
        return SeccompKind.BUILTIN, ""
    if value.lstrip().startswith("{"):
        parse_profile(value)  # refused now (400), not at start
        return SeccompKind.PROFILE, value
    # The CLI reads a file's content into the option; a path reaching us came from elsewhere.
    raise InvalidArgument(f"seccomp profile must be 'unconfined', 'builtin' or a JSON profile, not {value!r}")


def parse_security_opts(opts: Sequence[str]) -> SecurityOptions:
    """dockerd's parseSecurityOpt, with its error numbering; what we cannot enforce is a 400."""
    nnp: bool | None = None
    seccomp, profile, apparmor, label_disable = SeccompKind.DEFAULT, "", "", False
    writable: bool | None = None
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "writable-cgroups":
            writable = True
            continue
        if opt == "disable":
            label_disable = True
            continue
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:
            key, _, value = opt.partition(":")
        else:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        if key == "no-new-privileges" or key == "writable-cgroups":
            flag = _parse_bool(value)
            if flag is None:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            if key == "no-new-privileges":
                nnp = flag
            else:
                writable = flag
        elif key == "seccomp":
            seccomp, profile = _seccomp_option(value)
        elif key == "apparmor":
            if value != "unconfined":
                raise InvalidArgument(f"AppArmor is not supported by this daemon: only apparmor=unconfined is accepted, not {value!r}")
            apparmor = value
        elif key == "label":
            if value != "disable":
                raise InvalidArgument(f"SELinux labels are not supported by this daemon: only label=disable is accepted, not {value!r}")
            label_disable = True
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return SecurityOptions(nnp, seccomp, profile, apparmor, label_disable, writable)


# ---- sysctls -------------------------------------------------------------------------

_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip


def check_sysctl(key: str, value: str, net_host: bool, ipc_host: bool) -> None:
    """Only namespaced sysctls, and only when the container has that namespace (runc's rule)."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if ipc_host:
            raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
        return
    if key.startswith("net."):
        if net_host:
            raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
        return
    raise InvalidArgument(f"sysctl '{key}={value}' is not allowed")


# ---- extra hosts ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraHost:
    name: str
    ip: str


HOST_GATEWAY = "host-gateway"


def parse_extra_host(text: str) -> ExtraHost:
    """`name:ip` (the first colon splits, so IPv6 works); dockerd's messages."""
    name, sep, ip = text.partition(":")
    if not sep or not name:
        raise InvalidArgument(f'bad format for add-host: "{text}"')
    if ip == HOST_GATEWAY:
        return ExtraHost(name, HOST_GATEWAY)  # the default bridge's gateway, filled in at start
    bare = ip.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        raise InvalidArgument(f'invalid IP address in add-host: "{ip}"') from None
    return ExtraHost(name, str(address))
