"""After each exit: the restart policy (with dockerd's back-off), or `--rm`'s removal.

The restart manager consumes the exit monitor's reports, has the lifecycle record each exit,
and then acts on what the container asked for. A pending restart is a task of this component
whose handle the container's run-time record keeps, so a stop or rm can call it off.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol, Self

from dockyard.engine.exits import ExitMonitor
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.table import ContainerTable
from dockyard.errors import NotFound
from dockyard.model import times
from dockyard.model.containers import ContainerStatus, restart_delay
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)


class Remover(Protocol):
    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...


class RestartManager(Component):
    def __init__(self, table: ContainerTable, lifecycle: Lifecycle, exits: ExitMonitor, remover: Remover) -> None:
        self._table = table
        self._lifecycle = lifecycle
        self._exits = exits
        self._remover = remover
        self._tasks = Tasks("restarts")

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._tasks.spawn(self._consume(), "exits")
        return self

    async def _consume(self) -> None:
        while True:
            container_id = await self._exits.next()
            self._tasks.spawn(self._after_exit(container_id), f"exit-{container_id[:12]}")

    async def _after_exit(self, container_id: str) -> None:
        record = await self._lifecycle.record_exit(container_id)
        if record is None:
            return
        c = record.container
        if record.restarting:
            live = self._table.live(c.id)
            ran_for = (times.parse_ns(c.state.finished_at) - times.parse_ns(c.state.started_at)) / 1e9
            live.restart_delay = restart_delay(live.restart_delay, ran_for)
            live.restart_task = self._tasks.spawn(
                self._restart_later(c.id, live.restart_delay), f"restart-{c.id[:12]}"
            )
        elif c.spec.host.auto_remove:
            try:  # with its anonymous volumes, as dockerd's autoRemove
                await self._remover.remove(c.id, force=True, volumes=True)
            except NotFound:
                pass  # removed meanwhile

    async def _restart_later(self, container_id: str, delay: float) -> None:
        """The restart policy's automatic start, after its back-off delay."""
        await asyncio.sleep(delay)
        c = self._table.get(container_id)
        if c is None:
            return
        live = self._table.live(container_id)
        async with live.lock:
            live.restart_task = None
            c = self._table.get(container_id)
            if c is None or c.state.status is not ContainerStatus.RESTARTING:
                return  # stopped or removed meanwhile
            if live.stopped_by_user:  # a stop or rm is waiting for this lock
                self._lifecycle.call_off_restart(c, live)
                return
            c = self._table.publish(c.id, replace(c.state, restart_count=c.state.restart_count + 1))
            try:
                await self._lifecycle.start_locked(c, live, keep_restart_count=True)
            except Exception:
                log.exception("container %s: restart failed", c.id[:12])
                c = self._table.current(c)
                self._table.publish(c.id, replace(c.state, status=ContainerStatus.EXITED))

    # ---- start-up ----------------------------------------------------------------------

    def start_on_boot(self, container_id: str) -> None:
        self._tasks.spawn(self._start_on_boot(container_id), f"boot-{container_id[:12]}")

    async def _start_on_boot(self, container_id: str) -> None:
        await self._lifecycle.start(container_id)
        log.info("container %s: started by its restart policy", container_id[:12])

    def remove_on_boot(self, container_id: str, *, volumes: bool = False) -> None:
        """`volumes`: its anonymous volumes too (a --rm container's)."""
        self._tasks.spawn(self._remover.remove(container_id, force=True, volumes=volumes),
                          f"autoremove-{container_id[:12]}")  # fmt: skip
