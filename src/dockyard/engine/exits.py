"""Exits: each running container's monitor (conmon) is watched; its end is reported once.

The monitor knows nothing of what an exit means. It hands container ids, in the order their
monitors ended, to whoever handles exits (engine/restarts.py); start-up reconciliation reports
the containers that ended while the daemon was away through the same door.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

from dockyard.linux.process import ProcessHandle
from dockyard.tasks import Tasks

log = logging.getLogger(__name__)


class ExitMonitor:
    def __init__(self) -> None:
        self._tasks = Tasks("exits")
        self._ended: asyncio.Queue[str] = asyncio.Queue()

    async def __aenter__(self) -> Self:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(kind, exc, tb)

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
