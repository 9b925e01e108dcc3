"""Admission: can this container spec run on this host? dockerd's create-time checks that
depend on the machine (cpus, cgroup files, inherited limits, capabilities, host paths).

Pure: the host is described by a HostFacts value and a path probe, both read by
`dockyard.linux.hostinfo`, so every rule is tested without the machine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dockyard.errors import InvalidArgument
from dockyard.model.containers import ContainerSpec, HostSpec
from dockyard.model.hostconfig import ALL_CAPS, normalize_caps

_RLIM_INFINITY = -1


class PathKind(enum.StrEnum):
    MISSING = "missing"
    DIRECTORY = "directory"
    FILE = "file"
    CHAR_DEVICE = "char"
    BLOCK_DEVICE = "block"
    OTHER = "other"


@dataclass(frozen=True)
class HostFacts:
    cpus: int = 1  # CPUs this daemon may run on (Go's runtime.NumCPU)
    cpuset_cpus: frozenset[int] = frozenset({0})
    cpuset_mems: frozenset[int] = frozenset({0})
    rlimit_hard: Mapping[str, int] = field(default_factory=dict)  # ulimit name -> inherited hard (-1: unlimited)
    caps: frozenset[str] = frozenset(ALL_CAPS)  # the bounding set
    oom_score_adj: int = 0  # the daemon's own
    swap_limit: bool = True  # memory.memsw.* (v1) or memory.swap.max (v2)
    memory_swappiness: bool = True
    blkio_weight: bool = False
    init_path: str = ""  # a static init to bind at /sbin/docker-init ("": none installed)
    os: str = "linux"
    architecture: str = "amd64"  # GOARCH spelling


def parse_cpuset(text: str) -> frozenset[int] | None:
    """`0-2,4` -> {0, 1, 2, 4}; None when malformed (the kernel's list format)."""
    out: set[int] = set()
    if not text.strip():
        return frozenset()
    for part in text.strip().split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            return None
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            return None
        out.update(range(first, last + 1))
    return frozenset(out)


def format_cpuset(values: frozenset[int]) -> str:
    """{0, 1, 2, 4} -> `0-2,4`."""
    runs: list[str] = []
    ordered = sorted(values)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(runs)


def _check_cpus(h: HostSpec, facts: HostFacts) -> None:
    if h.nano_cpus and (h.nano_cpus < 0 or h.nano_cpus > facts.cpus * 1_000_000_000):
        raise InvalidArgument(
            f"range of CPUs is from 0.01 to {facts.cpus}.00, as there are only {facts.cpus} CPUs available"
        )
    for text, available, what, label in (
        (h.cpuset_cpus, facts.cpuset_cpus, "cpus", "CPUs"),
        (h.cpuset_mems, facts.cpuset_mems, "mems", "memory nodes"),
    ):
        if not text:
            continue
        asked = parse_cpuset(text)
        if asked is None:
            raise InvalidArgument(f"Invalid value {text} for cpuset {what}")
        if not asked <= available:
            raise InvalidArgument(
                f"Requested {label} are not available - requested {text}, available: {format_cpuset(available)}"
            )


def _above(value: int, limit: int) -> bool:
    if limit == _RLIM_INFINITY:
        return False
    return value == _RLIM_INFINITY or value > limit


def _check_limits(h: HostSpec, facts: HostFacts) -> None:
    can_raise = "CAP_SYS_RESOURCE" in facts.caps
    if not can_raise:
        for u in h.ulimits:
            limit = facts.rlimit_hard.get(u.name)
            if limit is None:
                continue
            for which, value in (("soft", u.soft), ("hard", u.hard)):
                if _above(value, limit):
                    shown = "unlimited" if value == _RLIM_INFINITY else str(value)
                    raise InvalidArgument(
                        f"ulimit {u.name}: {which} limit {shown} is above the daemon's inherited hard limit "
                        f"{limit}; raising it needs CAP_SYS_RESOURCE, which this host does not grant"
                    )
        if h.oom_score_adj and h.oom_score_adj < facts.oom_score_adj:
            raise InvalidArgument(
                f"OomScoreAdj {h.oom_score_adj} is below the daemon's own ({facts.oom_score_adj}); "
                "lowering it needs CAP_SYS_RESOURCE, which this host does not grant"
            )


def _check_cgroup_support(h: HostSpec, facts: HostFacts) -> None:
    if h.memory_swap > 0 and h.memory_swap != h.memory * 2 and not facts.swap_limit:
        raise InvalidArgument("MemorySwap cannot be set: the kernel has no swap accounting (memory.memsw) here")
    if h.memory_swappiness is not None and h.memory_swappiness >= 0 and not facts.memory_swappiness:
        raise InvalidArgument("MemorySwappiness cannot be set: the memory cgroup here has no swappiness file")
    if h.blkio_weight and not facts.blkio_weight:
        raise InvalidArgument(
            "BlkioWeight cannot be set: the kernel's block I/O scheduler offers no weight here (no blkio.weight)"
        )


def _check_caps(h: HostSpec, facts: HostFacts) -> None:
    for what, names in (("CapAdd", h.cap_add), ("CapDrop", h.cap_drop)):
        for name in normalize_caps(names, what):
            if name != "ALL" and name not in facts.caps:
                raise InvalidArgument(
                    f'invalid {what}: capability not supported by your kernel or not available in the current environment: "{name}"'
                )


def _check_paths(h: HostSpec, probe: Callable[[str], PathKind]) -> None:
    for m in h.mounts:
        if m.type == "bind" and not m.create_mountpoint and probe(m.source) is PathKind.MISSING:
            raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: {m.source}')
    for d in h.devices:
        kind = probe(d.path_on_host)
        if kind is PathKind.MISSING:
            raise InvalidArgument(
                f'error gathering device information while adding custom device "{d.path_on_host}": no such file or directory'
            )
        if kind not in (PathKind.CHAR_DEVICE, PathKind.BLOCK_DEVICE):
            raise InvalidArgument(f"{d.path_on_host} is not a device node (a directory of devices is not supported yet)")


def admit(spec: ContainerSpec, facts: HostFacts, probe: Callable[[str], PathKind]) -> None:
    """Raise InvalidArgument (400) for what this host cannot give the container."""
    h = spec.host
    _check_cpus(h, facts)
    _check_limits(h, facts)
    _check_cgroup_support(h, facts)
    _check_caps(h, facts)
    _check_paths(h, probe)
    if h.init_enabled and not facts.init_path:
        raise InvalidArgument("--init: no static init is installed on this host (install tini or catatonit)")


def check_resources(h: HostSpec, facts: HostFacts) -> None:
    """The cgroup limits alone (CPUs, cpusets, swap, swappiness, blkio weight): what
    `docker update` may change, checked against this host as at create."""
    _check_cpus(h, facts)
    _check_cgroup_support(h, facts)


def check_platform(requested: str, facts: HostFacts) -> None:
    """The `platform` query of create: this daemon runs only its own os/architecture."""
    if not requested:
        return
    parts = requested.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f'"{requested}": invalid platform specifier')
    os_name = parts[0]
    arch = parts[1] if len(parts) > 1 else facts.architecture
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    if os_name != facts.os or arch != facts.architecture:
        raise InvalidArgument(
            f"image platform {requested} cannot run on this {facts.os}/{facts.architecture} host"
        )


def create_warnings(spec: ContainerSpec, facts: HostFacts) -> tuple[str, ...]:
    """What the create response's Warnings should say (the CLI prints each after
    "WARNING: "): where this host grants less than the container asked for. dockerd's
    `--privileged` fails on a host whose bounding set lacks a capability; we grant what the
    bounding set holds, and say so here (inspect has no field for granted capabilities)."""
    h = spec.host
    missing = [c for c in ALL_CAPS if c not in facts.caps]
    if not missing:
        return ()
    wants_all = h.privileged or "ALL" in normalize_caps(h.cap_add, "CapAdd")
    if not wants_all:
        return ()
    dropped = set(normalize_caps(h.cap_drop, "CapDrop")) if not h.privileged else set()
    missing = [c for c in missing if c not in dropped]
    if not missing:
        return ()
    asked = "--privileged" if h.privileged else "--cap-add ALL"
    lacking = ", ".join(missing)
    return (f"{asked}: the daemon's capability bounding set lacks {lacking}; the container gets every other capability",)
