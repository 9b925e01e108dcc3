"""The OCI runtimes (runc, crun, ...) and the monitor launch, behind one driver.

The engine names a runtime by its configured name and a container by its id; the driver
knows where each runtime keeps its state and how the monitor (dockyard-monitor or conmon,
runtime/monitor.py) starts a container under it. A
failed start raises `StartFailed` with dockerd's exit code (runtime/failures.py), classified
once, where the runtime's words are read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.config import RuntimeOption
from dockyard.errors import InvalidArgument
from dockyard.linux.cgroups import own_procs_file, prepay_migration
from dockyard.runtime import monitor as monitors
from dockyard.runtime.execsession import ExecProcess, ExecRequest, start_exec
from dockyard.runtime.execspec import ExecSpec
from dockyard.runtime.monitor import CONMON_MONITOR, Monitor
from dockyard.runtime.oci import OciRuntime, is_crun
from dockyard.runtime.seccompfilters import CompiledFilters, FilterUse
from dockyard.runtime.spec import Resources


@dataclass(frozen=True)
class Launch:
    """One start of a container: its bundle is written, its rootfs mounted."""

    container_id: str
    name: str
    runtime: str
    bundle: Path
    log_path: Path | None  # the monitor's output spool; None: no log kept
    log_size_max: int
    exit_dir: Path
    persist_dir: Path
    tty: bool
    stdin: bool
    stdin_once: bool
    # The key to keep the seccomp program the runtime compiles now under (seccompfilters.py).
    seccomp_key: str | None = None


@dataclass(frozen=True)
class Launched:
    pid: int  # the container's init process
    monitor_pid: int  # its monitor


@dataclass(frozen=True)
class Exit:
    code: int | None  # None: the monitor died without recording one
    oom_killed: bool


class RuntimeDriver:
    def __init__(
        self, runtimes: Mapping[str, RuntimeOption], state_root: Path, filters_root: Path, monitor: Monitor = CONMON_MONITOR
    ) -> None:
        """`runtimes`: the daemon's, as runtime/catalog.py resolved them (with their launchers);
        `filters_root`: where compiled seccomp programs are kept (runtime/seccompfilters.py);
        `monitor`: what starts and watches each container (runtime/monitor.py choose_monitor)."""
        self.monitor = monitor
        self._runtimes = {
            name: OciRuntime(name, opt.path, str(state_root / name), opt.args, opt.launcher)
            for name, opt in runtimes.items()
        }
        self._filters = {
            name: CompiledFilters(opt.path, filters_root / name)
            for name, opt in runtimes.items()
            if is_crun(opt.path)
        }
        self._procs_file = own_procs_file()
        self._prepaying = False

    def check(self, name: str) -> None:
        if name not in self._runtimes:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")

    def _get(self, name: str) -> OciRuntime:
        self.check(name)
        return self._runtimes[name]

    async def prepay_cgroup_move(self) -> None:
        """Take the wait of the runtime's first cgroup write ahead of `create`, off the loop
        (linux/cgroups.py prepay_migration); one at a time: a burst of starts shares one."""
        if self._procs_file is None or self._prepaying:
            return
        self._prepaying = True
        try:
            await asyncio.to_thread(prepay_migration, self._procs_file)
        finally:
            self._prepaying = False

    async def create(self, launch: Launch) -> Launched:
        """The monitor runs `<runtime> create`; the process waits for `start`. Raises StartFailed."""
        runtime = self._get(launch.runtime)
        if runtime.has_state(launch.container_id):
            await runtime.delete(launch.container_id, force=True)  # a stopped daemon's leftover
        created = await monitors.create(
            monitors.MonitorRequest(
                container_id=launch.container_id,
                name=launch.name,
                runtime_path=runtime.executable,
                runtime_args=runtime.global_args,
                bundle=launch.bundle,
                log_path=launch.log_path,
                log_size_max=launch.log_size_max,
                exit_dir=launch.exit_dir,
                persist_dir=launch.persist_dir,
                tty=launch.tty,
                stdin=launch.stdin,
                stdin_once=launch.stdin_once,
                monitor=self.monitor,
            )
        )
        filters = self._filters.get(launch.runtime)
        if launch.seccomp_key is not None and filters is not None:
            filters.keep(launch.seccomp_key, Path(runtime.root) / launch.container_id / "seccomp.bpf")
        return Launched(pid=created.pid, monitor_pid=created.monitor_pid)

    def seccomp_filter(self, runtime: str, seccomp: Mapping[str, Any]) -> FilterUse | None:
        """For a runtime that takes a compiled program (crun): the one to hand it for this
        linux.seccomp, or the key to keep the one it compiles. None: the runtime compiles."""
        filters = self._filters.get(runtime)
        return filters.use_for(seccomp) if filters is not None else None

    async def exec(
        self, runtime: str, container_id: str, exec_id: str, bundle: Path, spec: ExecSpec, *, stdin: bool, attach: bool
    ) -> ExecProcess:
        """Start an exec session in a running container (its own monitor); raises StartFailed."""
        oci = self._get(runtime)
        return await start_exec(
            ExecRequest(
                container_id=container_id,
                exec_id=exec_id,
                bundle=bundle,
                directory=bundle / "exec" / exec_id,
                runtime_path=oci.executable,
                runtime_args=oci.global_args,
                spec=spec,
                stdin=stdin,
                attach=attach,
                monitor=self.monitor,
            )
        )

    async def start(self, runtime: str, container_id: str) -> None:
        await self._get(runtime).start(container_id)

    async def delete(self, runtime: str, container_id: str) -> None:
        await self._get(runtime).delete(container_id, force=True)

    async def pause(self, runtime: str, container_id: str) -> None:
        await self._get(runtime).pause(container_id)

    async def resume(self, runtime: str, container_id: str) -> None:
        await self._get(runtime).resume(container_id)

    async def update(self, runtime: str, container_id: str, resources: Resources) -> None:
        """New cgroup limits for a running or paused container (`<runtime> update`)."""
        await self._get(runtime).update(container_id, resources)

    @staticmethod
    def exit_of(exit_dir: Path, persist_dir: Path, container_id: str) -> Exit:
        """What the monitor recorded when the container ended."""
        return Exit(monitors.read_exit_code(exit_dir, container_id), monitors.oom_killed(persist_dir))

    @staticmethod
    def resize(bundle: Path, height: int, width: int) -> None:
        monitors.resize(bundle, height, width)

    @staticmethod
    def is_monitor_of(pid: int, container_id: str) -> bool:
        """Is `pid` (still) the monitor (of either kind) of this container? Guards adoption
        against pid reuse, also across a change of the daemon's monitor."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return monitors.is_monitor_argv(argv, container_id)

    def states(self) -> list[tuple[str, str]]:
        """(runtime, container id) for every container some runtime still keeps state of."""
        found = []
        for name, oci in self._runtimes.items():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                found += [(name, entry.name) for entry in Path(oci.root).iterdir() if entry.is_dir()]
        return found

    @staticmethod
    def monitor_pid(bundle: Path) -> int:
        """The pid the monitor wrote for the last start from this bundle (0: none)."""
        try:
            return int((bundle / monitors.PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return 0
