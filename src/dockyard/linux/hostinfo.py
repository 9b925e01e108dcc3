"""What this host offers containers, read from /proc, /sys and the daemon's own limits
(blocking, small reads: call from a thread). The rules that use these facts are pure, in
`dockyard.model.admission`."""

from __future__ import annotations

import os
import platform
import resource
import stat
from pathlib import Path

from dockyard.model.admission import HostFacts, PathKind, parse_cpuset
from dockyard.model.hostconfig import ULIMIT_NAMES, DeviceNode, DeviceType, caps_from_mask

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Static inits, in the order we prefer them; bound read-only at /sbin/docker-init.
INIT_CANDIDATES = (
    "/usr/libexec/docker/docker-init",
    "/usr/bin/tini-static",
    "/usr/libexec/catatonit/catatonit",
    "/usr/bin/catatonit",
)
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip
# Not device nodes a privileged container should get copied into its /dev.
_SKIP_DEV = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console"})


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cpuset(v1: str, v2: str, fallback: str) -> frozenset[int]:
    for candidate in (CGROUP_ROOT / "cpuset" / v1, CGROUP_ROOT / v2, Path(fallback)):
        text = _read(candidate)
        parsed = parse_cpuset(text) if text else None
        if parsed:
            return parsed
    return frozenset({0})


def _bounding_caps() -> frozenset[str]:
    for line in _read(Path("/proc/self/status")).splitlines():
        if line.startswith("CapBnd:"):
            return caps_from_mask(int(line.split()[1], 16))
    return frozenset()


def _rlimits() -> dict[str, int]:
    out = {}
    for name in ULIMIT_NAMES:
        which = getattr(resource, "RLIMIT_" + name.upper(), None)
        if which is None:
            continue
        _, hard = resource.getrlimit(which)
        out[name] = -1 if hard == resource.RLIM_INFINITY else hard
    return out


def find_init() -> str:
    return next((p for p in INIT_CANDIDATES if os.access(p, os.X_OK)), "")


def read_host_facts() -> HostFacts:
    v1_memory = CGROUP_ROOT / "memory"
    unified = not (v1_memory / "memory.limit_in_bytes").exists()
    memory_dir = CGROUP_ROOT if unified else v1_memory
    blkio = CGROUP_ROOT / "blkio"
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    machine = platform.machine()
    return HostFacts(
        cpus=cpus,
        cpuset_cpus=_cpuset("cpuset.effective_cpus", "cpuset.cpus.effective", "/sys/devices/system/cpu/online"),
        cpuset_mems=_cpuset("cpuset.effective_mems", "cpuset.mems.effective", "/sys/devices/system/node/online"),
        rlimit_hard=_rlimits(),
        caps=_bounding_caps(),
        oom_score_adj=int(_read(Path("/proc/self/oom_score_adj")) or 0),
        swap_limit=(memory_dir / ("memory.memsw.limit_in_bytes" if not unified else "memory.swap.max")).exists()
        or unified,
        memory_swappiness=not unified and (v1_memory / "memory.swappiness").exists(),
        blkio_weight=(blkio / "blkio.weight").exists() or (blkio / "blkio.bfq.weight").exists()
        or (unified and (CGROUP_ROOT / "io.weight").exists()),
        init_path=find_init(),
        architecture=_ARCH.get(machine, machine),
    )


def probe_path(path: str) -> PathKind:
    """What a host path is (following symlinks, as a bind mount or mknod would)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return PathKind.MISSING
    except OSError:
        return PathKind.OTHER
    if stat.S_ISDIR(mode):
        return PathKind.DIRECTORY
    if stat.S_ISREG(mode):
        return PathKind.FILE
    if stat.S_ISCHR(mode):
        return PathKind.CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return PathKind.BLOCK_DEVICE
    return PathKind.OTHER


def device_node(host_path: str, container_path: str) -> DeviceNode | None:
    """The node a host path names, as the container should get it; None if not a device."""
    try:
        st = os.stat(host_path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = DeviceType.CHAR
    elif stat.S_ISBLK(st.st_mode):
        kind = DeviceType.BLOCK
    else:
        return None
    return DeviceNode(container_path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)  # fmt: skip


def host_devices(root: str = "/dev") -> tuple[DeviceNode, ...]:
    """Every device node under /dev (for --privileged), without following symlinks."""
    found: list[DeviceNode] = []
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name in _SKIP_DEV and current == root:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if st.st_rdev == 0:
                    continue
                node = device_node(entry.path, entry.path)
                if node is not None:
                    found.append(node)
    return tuple(sorted(found, key=lambda d: d.path))
