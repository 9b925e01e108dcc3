"""`docker stats` and `docker top`: what a running container uses, and what runs in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict
from dockyard.linux.cgroupstats import CgroupStatsReader
from dockyard.linux.ps import run_ps
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.events import attributes_of
from dockyard.model.stats import STATS_INTERVAL, StatsMode, StatsSample
from dockyard.model.top import Top, parse_ps, ps_arguments

__all__ = ["StatsFeed", "StatsMode", "StatsService", "Top"]

Pair = tuple[StatsSample | None, StatsSample | None]  # (current, previous)


@dataclass(frozen=True)
class StatsFeed:
    container: Container
    samples: AsyncIterator[Pair]


class StatsService:
    def __init__(
        self,
        table: ContainerTable,
        reader: CgroupStatsReader,
        cgroup_of: Callable[[Container], str],
        events: EventBus,
    ) -> None:
        self._table = table
        self._reader = reader
        self._cgroup_of = cgroup_of
        self._events = events

    async def _sample(self, container_id: str) -> StatsSample | None:
        c = self._table.get(container_id)
        if c is None or not c.state.running or not c.state.pid:
            return None
        return await asyncio.to_thread(self._reader.sample, self._cgroup_of(c), c.state.pid)

    def feed(self, ref: str, mode: StatsMode) -> StatsFeed:
        c = self._table.resolve(ref)

        async def samples() -> AsyncIterator[Pair]:
            if mode is StatsMode.ONE_SHOT:
                yield await self._sample(c.id), None
                return
            first = await self._sample(c.id)
            if mode is StatsMode.STREAM:
                yield first, None
            previous = first
            while True:
                await asyncio.sleep(STATS_INTERVAL)
                if self._table.get(c.id) is None:
                    return  # removed: the stream ends, as dockerd's does
                current = await self._sample(c.id)
                yield current, previous if current is not None else None
                if mode is StatsMode.PRIMED:
                    return
                previous = current

        return StatsFeed(c, samples())

    async def top(self, ref: str, ps_args: str) -> Top:
        args = ps_arguments(ps_args)  # dockerd checks the arguments before the container
        c = self._table.resolve(ref)
        if c.state.status is ContainerStatus.RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        pids = await asyncio.to_thread(self._reader.pids, self._cgroup_of(c))
        top = parse_ps(await run_ps(args, pids), pids)
        self._events.publish("container", "top", c.id, attributes_of(c))
        return top
