"""Start-up: the database says what should be; the processes say what is. Make them agree.

`plan` is a pure function of what was seen (each container's record, and whether its
monitor still runs); `Reconciler.run` looks, plans, and applies the plan before the API
serves. A changed boot id means nothing of the last boot runs any more.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dockyard.engine.exits import ExitMonitor
from dockyard.engine.health import HealthMonitor
from dockyard.engine.images import ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.engine.restarts import RestartManager
from dockyard.engine.rootfs import RootfsMounts
from dockyard.engine.table import ContainerTable
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.fs import remove_tree
from dockyard.linux.process import ProcessHandle
from dockyard.model.containers import Container, ContainerStatus
from dockyard.network.netns import NetnsPool
from dockyard.runtime.driver import RuntimeDriver

log = logging.getLogger(__name__)


class Step(enum.StrEnum):
    MARK_DEAD = "mark-dead"  # its removal was under way when the daemon stopped
    ADOPT = "adopt"  # its monitor still runs: watch it again
    SETTLE = "settle"  # it ended while the daemon was away: the exit path records how
    SET_EXITED = "set-exited"  # it waited for a restart, a wait that died with the daemon
    START = "start"  # its restart policy wants it running when the daemon starts
    REMOVE = "remove"  # `--rm`, and it has exited


@dataclass(frozen=True)
class Seen:
    container: Container
    monitor_alive: bool  # same boot, and its conmon still runs (never true for others)


@dataclass(frozen=True)
class Action:
    step: Step
    container_id: str


def plan(seen: Sequence[Seen]) -> list[Action]:
    """What to do with each container, in the order to do it."""
    actions: list[Action] = []
    for s in seen:
        c, st = s.container, s.container.state
        if st.status is ContainerStatus.REMOVING:
            # Its removal was cut short: finish it (dockerd leaves it dead for the user to rm).
            actions += [Action(Step.MARK_DEAD, c.id), Action(Step.REMOVE, c.id)]
            continue
        if st.running:
            actions.append(Action(Step.ADOPT if s.monitor_alive else Step.SETTLE, c.id))
            continue  # a settled exit meets its restart policy on the exit path
        if st.status is ContainerStatus.RESTARTING:
            actions.append(Action(Step.SET_EXITED, c.id))
        if st.status in (ContainerStatus.CREATED, ContainerStatus.DEAD):
            if c.spec.host.auto_remove:  # dockerd's restore: a --rm container not running goes
                actions.append(Action(Step.REMOVE, c.id))
            continue
        policy = c.spec.host.restart_policy
        if policy.on_daemon_start(st.exit_code, st.manually_stopped):
            actions.append(Action(Step.START, c.id))
        elif c.spec.host.auto_remove:
            actions.append(Action(Step.REMOVE, c.id))
    return actions


class Reconciler:
    def __init__(
        self,
        table: ContainerTable,
        exits: ExitMonitor,
        restarts: RestartManager,
        netns: NetnsPool,
        mounts: RootfsMounts,
        health: HealthMonitor,
        logs: LogService,
        lifecycle: Lifecycle,
        driver: RuntimeDriver,
        images: ImageService,
        dirs: LayerDirs,
        tmp_dir: Path,
        boot_id: str,
    ) -> None:
        self._images = images
        self._dirs = dirs
        self._tmp = tmp_dir
        self._lifecycle = lifecycle
        self._driver = driver
        self._health = health
        self._logs = logs
        self._table = table
        self._mounts = mounts
        self._exits = exits
        self._restarts = restarts
        self._netns = netns
        self._boot_id = boot_id

    def _sweep(self, owned: set[str]) -> int:
        """What a crash in an import, load or commit left (blocking): spooled uploads, and
        layer directories no layer and no container owns."""
        for entry in self._tmp.iterdir():
            remove_tree(entry)
        removed = 0
        for entry in self._dirs.root.iterdir():
            if entry.name not in owned and entry.name != "empty":
                self._dirs.remove(entry.name)
                removed += 1
        return removed

    def _monitor_alive(self, c: Container) -> bool:
        st = c.state
        if not st.running or st.boot_id != self._boot_id:
            return False
        if not RuntimeDriver.is_monitor_of(st.monitor_pid, c.id):
            return False
        handle = ProcessHandle.adopt(st.monitor_pid, 0)
        if handle is None:
            return False
        handle.close()
        return True

    async def run(self) -> None:
        seen = [Seen(c, self._monitor_alive(c)) for c in self._table.all()]
        in_use = {s.container.state.netns for s in seen if s.monitor_alive and s.container.state.netns}
        self._netns.keep_only(in_use)
        for s in seen:
            if not s.container.state.running:
                await self._lifecycle.clear_leftovers(s.container)
        owned = self._images.layer_dirs() | {c.rw_layer for c in self._table.all()}
        swept = await asyncio.to_thread(self._sweep, owned)
        if swept:
            log.info("removed %d layer directories a crash left half-made", swept)
        for runtime, container_id in self._driver.states():
            if self._table.get(container_id) is None:  # its removal was cut short
                await self._driver.delete(runtime, container_id)
        actions = plan(seen)
        removed = {a.container_id for a in actions if a.step is Step.REMOVE}
        for s in seen:
            if not s.container.state.running and s.container.id not in removed:
                self._lifecycle.ship_leftover_log(s.container)  # in the background: serving waits not
        for action in actions:
            await self._apply(action)
        await self._lifecycle.unmount_idle_volumes()  # after adoption: those still held stay

    async def _apply(self, action: Action) -> None:
        c = self._table.get(action.container_id)
        if c is None:
            return
        match action.step:
            case Step.MARK_DEAD:
                self._table.publish(c.id, replace(c.state, status=ContainerStatus.DEAD))
            case Step.ADOPT:
                self._adopt(c)
                await self._logs.resumed(c)
            case Step.SETTLE:
                log.info("container %s: exited while the daemon was away", c.id[:12])
                self._exits.report(c.id)
            case Step.SET_EXITED:
                self._table.publish(c.id, replace(c.state, status=ContainerStatus.EXITED))
            case Step.START:
                self._restarts.start_on_boot(c.id)
            case Step.REMOVE:
                # A removal a crash cut short keeps the volumes (whether -v was asked is not known).
                self._restarts.remove_on_boot(c.id, volumes=c.spec.host.auto_remove)

    def _adopt(self, c: Container) -> None:
        live = self._table.live(c.id)
        monitor = ProcessHandle.adopt(c.state.monitor_pid, 0)
        if monitor is None:  # it ended just now
            self._exits.report(c.id)
            return
        live.monitor = monitor
        self._mounts.adopt(c)
        self._lifecycle.adopt_volumes(c)
        live.process = ProcessHandle.adopt(c.state.pid, c.state.pid_start_time)
        log.info("container %s: adopted running monitor %d", c.id[:12], c.state.monitor_pid)
        self._exits.watch(c.id, monitor)
        self._health.started(c)  # probes start over, as dockerd's do after a restart
