"""Exits: each running container's monitor (conmon) is watched; its end is reported once.

The monitor knows nothing of what an exit means. It hands container ids, in the order their
monitors ended, to whoever handles exits (engine/restarts.py); start-up reconciliation reports
the containers that ended while the daemon was away through the same door.
"""

from __future__ import annotations

import asyncio
import logging

from dockyard.linux.process import ProcessHandle
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)


class ExitMonitor(Component):
    def __init__(self) -> None:
        self._tasks = Tasks("exits")
        self._ended: asyncio.Queue[str] = asyncio.Queue()

    def watch(self, container_id: str, monitor: ProcessHandle) -> None:
        self._tasks.spawn(self._watch(container_id, monitor), f"exit-{container_id[:12]}")

    async def _watch(self, container_id: str, monitor: ProcessHandle) -> None:
        await monitor.wait()
        log.debug("container %s: monitor exited", container_id[:12])
        self._ended.put_nowait(container_id)

    def report(self, container_id: str) -> None:
        """An exit learnt another way (the monitor ended while the daemon was down)."""
        self._ended.put_nowait(container_id)

    async def next(self) -> str:
        return await self._ended.get()
