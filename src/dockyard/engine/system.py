"""What `docker version` and `docker info` report about this host and daemon."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Protocol

from dockyard.config import DaemonConfig
from dockyard.linux.cgroups import CgroupLayout, cgroup_layout

ENGINE_VERSION = package_version("dockyard")


@dataclass(frozen=True)
class Counts:
    containers: int
    running: int
    paused: int
    stopped: int
    images: int


class CountSource(Protocol):
    def counts(self) -> Counts: ...


@dataclass(frozen=True)
class HostFacts:
    kernel: str
    os_name: str
    arch: str
    ncpu: int
    mem_total: int
    hostname: str
    cgroup_version: str


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cgroup_version() -> str:
    # A hybrid host (v1 controllers + a v2 "unified" mount) counts as v1, as dockerd says.
    return "2" if cgroup_layout() is CgroupLayout.V2 else "1"


def host_facts() -> HostFacts:
    return HostFacts(
        kernel=platform.release(),
        os_name=_os_name(),
        arch=platform.machine(),
        ncpu=os.cpu_count() or 1,
        mem_total=_mem_total(),
        hostname=socket.gethostname(),
        cgroup_version=_cgroup_version(),
    )


class SystemService:
    def __init__(self, config: DaemonConfig, daemon_id: str, counts: CountSource) -> None:
        self.config = config
        self.daemon_id = daemon_id
        self.facts = host_facts()
        self._counts = counts

    def counts(self) -> Counts:
        return self._counts.counts()
