"""What `docker version` and `docker info` report about this host and daemon."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Protocol

from dockyard.config import DaemonConfig
from dockyard.linux.cgroups import CgroupLayout, cgroup_layout
from dockyard.runtime.monitor import CONMON_MONITOR, Monitor
from dockyard.runtime.seccomp import SeccompProfiles, shared_profiles

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
class Component:
    name: str
    version: str
    path: str


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


@dataclass(frozen=True)
class SecurityInfo:
    """`docker info`'s SecurityOptions (dockerd's words) and the warnings that go with them."""

    options: tuple[str, ...]
    warnings: tuple[str, ...]


def security_info(config: DaemonConfig, seccomp: SeccompProfiles) -> SecurityInfo:
    """Only what containers really get: seccomp as in force (a missing default profile is
    said as unconfined), no-new-privileges when the daemon default is on. No apparmor,
    selinux, userns, rootless or cgroupns entries: this daemon applies none of them."""
    report = seccomp.report()
    options = list(report.options)
    if config.no_new_privileges:
        options.append("name=no-new-privileges")
    return SecurityInfo(tuple(options), report.warnings)


class SystemService:
    def __init__(
        self,
        config: DaemonConfig,
        daemon_id: str,
        counts: CountSource,
        *,
        seccomp: SeccompProfiles | None = None,
        monitor: Monitor = CONMON_MONITOR,
    ) -> None:
        """`seccomp`: the daemon's profiles, as given to bundles; when not given, the ones
        shared with every caller of this configuration. Read here, once (a small file).
        `monitor`: the containers' monitor (runtime/monitor.py), listed with the runtimes."""
        self.config = config
        self.monitor = monitor
        self.daemon_id = daemon_id
        self.facts = host_facts()
        self._counts = counts
        self._components: list[Component] | None = None
        profiles = seccomp if seccomp is not None else shared_profiles(config.seccomp_profile, config.seccomp_profile_json)
        self.security = security_info(config, profiles)

    def counts(self) -> Counts:
        return self._counts.counts()

    async def components(self) -> list[Component]:
        """The runtimes and the monitor with their `--version`, asked once and remembered."""
        if self._components is None:
            tools = {name: r.path for name, r in self.config.runtimes.items()} | {self.monitor.kind.value: self.monitor.path}
            found = await asyncio.gather(*(_tool_version(path) for path in tools.values()))
            self._components = [Component(n, v, p) for (n, p), v in zip(tools.items(), found, strict=True)]
        return self._components


async def _tool_version(path: str) -> str:
    """The version word of `path --version` ("runc version 1.1.5+ds1" -> "1.1.5+ds1")."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path, "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(5):
            out, _ = await proc.communicate()
    except (OSError, TimeoutError):
        return ""
    first = out.decode(errors="replace").splitlines()[:1]
    words = first[0].split() if first else []
    return next((w for w in words if w[:1].isdigit()), "")
