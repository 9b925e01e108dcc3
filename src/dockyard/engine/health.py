"""Healthchecks of running containers: one probe loop each, results on the container.

The lifecycle says when a container starts, pauses, unpauses and stops; this component
runs its probe (an exec, through the ProbeRunner) on dockerd's schedule, publishes the new
health through the table, and emits `health_status: <status>` when the status changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.model import times
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.events import attributes_of, health_action
from dockyard.model.health import (
    Probe,
    ProbeResult,
    after_probe,
    at_start,
    at_stop,
    next_delay_ns,
    probe_of,
)
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)


class ProbeRunner(Protocol):
    async def probe(self, c: Container, argv: tuple[str, ...], timeout_ns: int) -> ProbeResult:
        """Run `argv` in the container as its healthcheck; never raises for a failed probe."""
        ...


class HealthMonitor(Component):
    def __init__(self, table: ContainerTable, runner: ProbeRunner, events: EventBus) -> None:
        self._table = table
        self._runner = runner
        self._events = events
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._tasks = Tasks("health")

    def _probe(self, c: Container) -> Probe | None:
        return probe_of(c.spec.healthcheck, c.spec.shell)

    def started(self, c: Container) -> None:
        """A (re)start: starting again, probes on their schedule."""
        if self._probe(c) is None:
            return
        self._table.publish_health(c.id, at_start(c.health))
        self._run(c.id)

    def resumed(self, c: Container) -> None:
        if self._probe(c) is not None:
            self._run(c.id)

    def stopped(self, container_id: str) -> None:
        """Exited or paused: no more probes, and dockerd calls it unhealthy meanwhile."""
        loop = self._loops.pop(container_id, None)
        if loop is not None:
            loop.cancel()
        c = self._table.get(container_id)
        if c is not None and c.health is not None:
            self._table.publish_health(container_id, at_stop(c.health))

    def _run(self, container_id: str) -> None:
        if container_id in self._loops or not self._tasks.active:
            return
        task = self._tasks.spawn(self._loop(container_id), f"health-{container_id[:12]}")
        self._loops[container_id] = task
        task.add_done_callback(lambda t: self._loops.pop(container_id, None) if self._loops.get(container_id) is t else None)

    async def _loop(self, container_id: str) -> None:
        while True:
            c = self._table.get(container_id)
            if c is None or c.state.status is not ContainerStatus.RUNNING or c.health is None:
                return
            probe = self._probe(c)
            if probe is None:
                return
            started_ns = times.parse_ns(c.state.started_at)
            await asyncio.sleep(next_delay_ns(probe, c.health, started_ns, time.time_ns()) / 1e9)
            c = self._table.get(container_id)
            if c is None or c.state.status is not ContainerStatus.RUNNING:
                return
            result = await self._runner.probe(c, probe.argv, probe.timeout_ns)
            self._record(container_id, result, probe, started_ns)

    def _record(self, container_id: str, result: ProbeResult, probe: Probe, started_ns: int) -> None:
        c = self._table.get(container_id)
        if c is None or c.health is None or c.state.status is not ContainerStatus.RUNNING:
            return  # stopped while the probe ran: that result no longer counts
        health = after_probe(c.health, result, probe, started_ns)
        updated = self._table.publish_health(container_id, health)
        if updated is not None and health.status is not c.health.status:
            log.debug("container %s: %s", container_id[:12], health.status)
            self._events.publish("container", health_action(health.status), c.id, attributes_of(updated))
