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
