"""`docker update`: change a container's cgroup limits and restart policy.

Decide (the pure rules of model/update.py), do the I/O (`<runtime> update` for a running or
paused container, under its lifecycle lock), persist and publish the new spec (the table),
then emit the `update` event. A container that is not running only gets the new spec: its
next start writes the OCI spec from it. The restart manager reads the policy from the
published spec at each exit, so a changed policy needs nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from dockyard.engine.bundles import cgroup_resources
from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict, Internal, NotFound
from dockyard.linux.hostinfo import read_host_facts
from dockyard.model.admission import HostFacts
from dockyard.model.containers import Container, ContainerStatus, HostSpec
from dockyard.model.events import attributes_of
from dockyard.model.update import ResourceUpdate, apply_update, check_update
from dockyard.runtime.spec import Resources

log = logging.getLogger(__name__)


class LimitSetter(Protocol):
    """What the service needs of the runtime driver (runtime/driver.py RuntimeDriver)."""

    async def update(self, runtime: str, container_id: str, resources: Resources) -> None: ...


class UpdateService:
    def __init__(
        self,
        table: ContainerTable,
        driver: LimitSetter,
        events: EventBus,
        facts: Callable[[], HostFacts] = read_host_facts,
    ) -> None:
        self._table = table
        self._driver = driver
        self._events = events
        self._facts = facts

    async def update(self, ref: str, request: ResourceUpdate) -> tuple[str, ...]:
        """Apply `request` to the container `ref`; the warnings for the response (none yet:
        what this host cannot enforce is a 400, not a warning)."""
        facts = await asyncio.to_thread(self._facts)
        check_update(request, facts)  # dockerd judges the request before it looks the container up
        c = self._table.resolve(ref)
        live = self._table.live(c.id)
        async with live.lock:
            current = self._table.get(c.id)
            if current is None:
                raise NotFound(f"No such container: {ref}")  # removed while we waited
            c = current
            if c.state.status in (ContainerStatus.REMOVING, ContainerStatus.DEAD):
                raise Conflict(f'Cannot update container {c.id}: container is marked for removal and cannot be "update"')
            try:
                host = apply_update(c.spec.host, request)
            except Conflict as exc:
                raise Conflict(f"Cannot update container {c.id}: {exc.message}") from exc
            # A restarting container has no process now: its next start takes the new spec.
            if c.state.running and request.touches_resources:
                await self._apply_live(c, host, facts)
            c = self._table.publish_spec(c.id, replace(c.spec, host=host))
        self._events.publish("container", "update", c.id, attributes_of(c))
        return ()

    async def _apply_live(self, c: Container, host: HostSpec, facts: HostFacts) -> None:
        """The new limits into the running container's cgroup. The runtime may have written some
        before it failed: the old ones are put back, so the cgroup matches the kept spec."""
        try:
            await self._driver.update(c.runtime, c.id, cgroup_resources(host, facts))
        except (Conflict, NotFound):
            # It exited while we held its lock (its exit is recorded after us): the spec alone
            # is enough, as for a stopped container.
            log.debug("container %s: exited before its update; kept for its next start", c.id[:12])
        except Internal as exc:
            try:
                await self._driver.update(c.runtime, c.id, cgroup_resources(c.spec.host, facts))
            except Exception:
                log.warning("container %s: could not put its old limits back", c.id[:12], exc_info=True)
            raise Internal(f"Cannot update container {c.id}: {exc.message}") from exc
