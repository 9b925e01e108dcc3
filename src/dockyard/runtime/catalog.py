"""Which OCI runtimes work on this host, how each is run, and which one is the default.

Decided once at start-up from cheap facts (the cgroup layout, the binaries present, the
dockyard-nounified helper), never by starting a container:
- runc works wherever its binary is.
- crun 1.8 refuses a hybrid cgroup host whose v2 side holds a controller ("cgroups in
  hybrid mode not supported"). It works there through dockyard-nounified (nounified.c),
  which runs it in a mount namespace without /sys/fs/cgroup/unified: crun then sees a v1
  host and applies v1 limits under the same cgroup paths runc uses. Every runtime call
  goes through the helper (conmon's create and exec, and our kill, delete, update...), so
  crun always sees the same layout for its state.
- The default, when the user chose none, is the fastest that works. Measured here for
  one bare container (`crun run` / `runc run`: create, start, wait, delete): crun 6 ms
  through the helper (it runs crun from a read-only mount, sparing crun's own self-copy,
  so it is faster than crun alone), runc 18 ms (bench/nounified.py).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from dockyard.config import DaemonConfig, RuntimeOption, RuntimeOrigin
from dockyard.linux.cgroups import CgroupLayout, cgroup_layout
from dockyard.runtime.oci import is_crun

log = logging.getLogger(__name__)

# Fastest first: the default is the first of these that works (see above).
PREFERENCE = ("crun", "runc")
NOUNIFIED = "dockyard-nounified"
_UNIFIED_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"


def helper_dirs() -> tuple[Path, ...]:
    """Where dev/setup installs the helper (this interpreter's prefix), then system places."""
    return (
        Path(sys.prefix) / "libexec" / "dockyard",
        Path("/usr/local/libexec/dockyard"),
        Path("/usr/libexec/dockyard"),
    )


@dataclass(frozen=True)
class RuntimeHost:
    """What decides which runtimes can work here."""

    layout: CgroupLayout
    v2_controllers: tuple[str, ...]  # controllers of a hybrid host's unified hierarchy
    executables: frozenset[str]  # the runtime paths that are executable files
    nounified: str | None  # the dockyard-nounified helper, when installed


@dataclass(frozen=True)
class RuntimePlan:
    runtimes: Mapping[str, RuntimeOption]  # those that work (or that the user named), launchers set
    default: str
    problems: Mapping[str, str]  # runtime name -> why it cannot work here

    def apply(self, config: DaemonConfig) -> DaemonConfig:
        return replace(config, runtimes=dict(self.runtimes), default_runtime=self.default)


def _launch(option: RuntimeOption, host: RuntimeHost) -> tuple[tuple[str, ...], str]:
    """(launcher, problem): how this runtime runs here, or why it cannot ("" when it can)."""
    if option.path not in host.executables:
        return (), f"{option.path} is not an executable file"
    if is_crun(option.path) and host.layout is CgroupLayout.HYBRID and host.v2_controllers:
        if host.nounified is not None:
            return (host.nounified,), ""
        return (), (
            "crun refuses this hybrid cgroup host (cgroup v2 controllers: "
            f"{' '.join(host.v2_controllers)}) and {NOUNIFIED} is not installed (dev/setup builds it)"
        )
    return (), ""


def plan_runtimes(options: Mapping[str, RuntimeOption], requested: str | None, host: RuntimeHost) -> RuntimePlan:
    """The runtimes to offer and the default. A built-in runtime that cannot work here is
    left out, unless it is the requested default; one the user configured is always kept
    (its own error will tell why it fails)."""
    runtimes: dict[str, RuntimeOption] = {}
    problems: dict[str, str] = {}
    for name, option in options.items():
        launcher, problem = _launch(option, host)
        if problem:
            problems[name] = problem
            if option.origin is RuntimeOrigin.BUILTIN and name != requested:
                continue
        runtimes[name] = replace(option, launcher=launcher)
    if requested is not None:
        default = requested
    else:
        working = [name for name in PREFERENCE if name in runtimes and name not in problems]
        default = working[0] if working else "runc"
        if default not in runtimes and default in options:
            # Nothing works: keep runc, so that starts fail with its own words.
            runtimes[default] = options[default]
    return RuntimePlan(runtimes, default, problems)


def probe_host(options: Mapping[str, RuntimeOption]) -> RuntimeHost:
    """The facts plan_runtimes needs: a few stat calls and one small read."""
    layout = cgroup_layout()
    controllers: tuple[str, ...] = ()
    if layout is CgroupLayout.HYBRID:
        try:
            with open(_UNIFIED_CONTROLLERS, encoding="ascii") as f:
                controllers = tuple(f.read().split())
        except OSError:
            controllers = ()
    executables = frozenset(o.path for o in options.values() if _is_executable(o.path))
    return RuntimeHost(layout, controllers, executables, find_nounified())


def find_nounified(dirs: tuple[Path, ...] | None = None) -> str | None:
    return find_helper(NOUNIFIED, dirs)


def find_helper(name: str, dirs: tuple[Path, ...] | None = None) -> str | None:
    """An installed helper of ours (dockyard-nounified, dockyard-monitor), if it is one we may
    run as root: a regular executable file owned by root (or by us) that nobody else can write."""
    for directory in helper_dirs() if dirs is None else dirs:
        path = directory / name
        try:
            st = path.stat()
        except OSError:
            continue
        trusted = st.st_uid in (0, os.geteuid()) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IXUSR and trusted:
            return str(path)
        log.warning("ignoring %s: not a root-owned executable that only its owner can write", path)
    return None


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def resolve_runtimes(config: DaemonConfig) -> DaemonConfig:
    """The daemon's config with the runtimes that work here (each with how it is run) and
    the default chosen: the user's, or the fastest that works. Logs what was left out."""
    plan = plan_runtimes(config.runtimes, config.requested_runtime, probe_host(config.runtimes))
    for name, problem in plan.problems.items():
        if name in plan.runtimes:
            log.warning("runtime %s will fail to start containers: %s", name, problem)
        else:
            log.info("runtime %s is not offered: %s", name, problem)
    launched = {n: o.launcher for n, o in plan.runtimes.items() if o.launcher}
    log.info("default runtime: %s%s", plan.default, f" (launched by {launched})" if launched else "")
    return plan.apply(config)
