"""Which cgroup layout this host has."""

from __future__ import annotations

import enum
import os


class CgroupLayout(enum.StrEnum):
    V1 = "v1"
    HYBRID = "hybrid"  # v1 controllers plus a v2 "unified" mount
    V2 = "v2"


def cgroup_layout(root: str = "/sys/fs/cgroup") -> CgroupLayout:
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return CgroupLayout.V2
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return CgroupLayout.HYBRID
    return CgroupLayout.V1


def own_procs_file(root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """The cgroup.procs file of this process's own cgroup in one hierarchy (None: none found)."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    layout = cgroup_layout(root)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if layout is CgroupLayout.V2:
            where = root if controllers == "" else None
        else:
            where = os.path.join(root, controllers) if controllers in ("pids", "memory", "cpu") else None
        if where is not None:
            candidate = os.path.join(where, path.lstrip("/"), "cgroup.procs")
            if os.path.exists(candidate):
                return candidate
    return None


def prepay_migration(procs_file: str) -> None:
    """Move this process into the cgroup it is already in (blocking; best effort).

    Every write to a cgroup.procs file takes the kernel's global threadgroup rwsem for
    writing, and the first one after a quiet spell waits an RCU grace period for it
    (7-15 ms here); writes within about a grace period of the last one do not. Done while a
    container start mounts and writes its bundle, the runtime's own writes find the rwsem
    warm and the wait runs beside the start instead of inside `<runtime> create`.
    """
    try:
        with open(procs_file, "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        pass  # e.g. EBUSY in a v2 cgroup with controllers for its children: nothing gained, nothing lost
