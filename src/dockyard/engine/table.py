"""The container table: every container by id and name, its run-time handles, and the one
place where a container's state changes.

Readers (`ps`, `inspect`) take the current immutable snapshot and never wait. Lifecycle
operations of one container take its lock (`live(id).lock`); waiting for an exit never holds
it. `publish` is the only way a state changes: it checks the move against the state table
(model/containers.py), persists it in one short transaction, then replaces the snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from dockyard.errors import Conflict, InvalidArgument, NotFound, StorageFull
from dockyard.linux.fs import SpaceReserve
from dockyard.linux.process import ProcessHandle
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    check_move,
)
from dockyard.model.health import Health
from dockyard.model.names import generate_name, validate_name
from dockyard.store.containers import ContainerRepository
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

_FLUSH_RETRY = 1.0  # seconds between tries to write what a full disk held back


@dataclass(frozen=True)
class ExitStatus:
    code: int
    error: str = ""


@dataclass
class Live:
    """Run-time handles of one container: never persisted, rebuilt at start-up."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exit_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    removal_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    process: ProcessHandle | None = None
    monitor: ProcessHandle | None = None
    runtime_cleanup: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    restart_delay: float = 0.0
    stopped_by_user: bool = False

    def close_handles(self) -> None:
        for handle in (self.process, self.monitor):
            if handle is not None:
                handle.close()
        self.process = self.monitor = None


def _name_conflict(name: str, holder: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{holder}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


class ContainerTable(Component):
    def __init__(self, repo: ContainerRepository, reserve: SpaceReserve | None = None) -> None:
        self._repo = repo
        self._reserve = reserve
        self._unwritten: dict[str, Container | None] = {}  # None: its deletion
        self._flushing = asyncio.Event()
        self._tasks = Tasks("table")
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._live: dict[str, Live] = {}
        for c in repo.all():
            self._containers[c.id] = c
            self._names[c.name] = c.id
            self._live[c.id] = Live()

    # ---- reads -------------------------------------------------------------------------

    def all(self) -> list[Container]:
        return list(self._containers.values())

    def get(self, container_id: str) -> Container | None:
        return self._containers.get(container_id)

    def current(self, c: Container) -> Container:
        """The newest snapshot of `c` (the one given if it is gone meanwhile)."""
        return self._containers.get(c.id, c)

    def live(self, container_id: str) -> Live:
        try:
            return self._live[container_id]
        except KeyError:
            raise NotFound(f"No such container: {container_id}") from None

    def resolve(self, ref: str) -> Container:
        """By full id, name (with or without its slash), or unique id prefix: dockerd's order."""
        found = self._containers.get(ref)
        if found is not None:
            return found
        by_name = self._names.get(ref.removeprefix("/"))
        if by_name is not None:
            return self._containers[by_name]
        if ref and all(ch in "0123456789abcdef" for ch in ref):
            matches = [c for i, c in self._containers.items() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def users_of(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for each container made from the image or mounting it
        (`--mount type=image`)."""
        return [
            (c.id, c.state.running)
            for c in self._containers.values()
            if c.image_id == image_id or any(m.image_id == image_id for m in c.spec.host.mounts if m.type == "image")
        ]

    def count_using(self, image_id: str) -> int:
        return sum(1 for c in self._containers.values() if c.image_id == image_id)

    def volume_users(self, name: str) -> list[str]:
        """Ids of the containers, running or not, whose mounts name volume `name`."""
        return [
            c.id
            for c in self._containers.values()
            if any(m.type == "volume" and m.source == name for m in c.spec.host.all_mounts)
        ]

    # ---- names -------------------------------------------------------------------------

    def reserve_name(self, name: str, container_id: str) -> str:
        """Hold `name` (or a generated one) for a container being made; released on failure."""
        if name:
            name = validate_name(name)
            holder = self._names.get(name)
            if holder is not None:
                raise _name_conflict(name, holder)
        else:
            name = generate_name()
            while name in self._names:
                name = generate_name()
        self._names[name] = container_id
        return name

    def release_name(self, name: str) -> None:
        self._names.pop(name, None)

    def rename(self, container_id: str, new_name: str) -> Container:
        holder = self._names.get(new_name)
        if holder is not None:
            raise _name_conflict(new_name, holder)
        old = self._containers[container_id]
        self._repo.rename(container_id, new_name)
        self._names[new_name] = container_id
        self._names.pop(old.name, None)
        renamed = replace(old, name=new_name)
        self._containers[container_id] = renamed
        return renamed

    # ---- writes ------------------------------------------------------------------------

    def add(self, c: Container) -> None:
        """A new container (its name reserved): persisted, then visible."""
        self._repo.add(c)
        self._containers[c.id] = c
        self._live[c.id] = Live()

    def publish(self, container_id: str, state: ContainerState) -> Container:
        """The one way a state changes: a legal move, persisted, then the new snapshot."""
        c = self._containers[container_id]
        if state.status is not c.state.status:
            check_move(c.state.status, state.status)
        updated = replace(c, state=state)
        self._persist(updated, lambda: self._repo.save_state(container_id, state))
        self._containers[container_id] = updated
        return updated

    def publish_spec(self, container_id: str, spec: ContainerSpec) -> Container:
        """A changed spec (docker update): persisted, then the new snapshot. The caller holds
        the container's lock, so a start reads either the old spec or the new one whole."""
        c = self._containers[container_id]
        self._repo.save_spec(container_id, spec)
        updated = replace(c, spec=spec)
        self._containers[container_id] = updated
        return updated

    def publish_health(self, container_id: str, health: Health | None) -> Container | None:
        """A probe's outcome; None when the container is gone meanwhile."""
        c = self._containers.get(container_id)
        if c is None:
            return None
        updated = replace(c, health=health)
        self._persist(updated, lambda: self._repo.save_health(container_id, health))
        self._containers[container_id] = updated
        return updated

    def drop(self, container_id: str) -> None:
        """The container is gone: from the database, the table, and its waiters' hopes."""
        c = self._containers[container_id]
        self._persist_deletion(container_id)
        del self._containers[container_id]
        self._names.pop(c.name, None)
        live = self._live.pop(container_id)
        status = ExitStatus(c.state.exit_code)
        for fut in live.removal_waiters + live.exit_waiters:
            if not fut.done():
                fut.set_result(status)

    # ---- a full disk -------------------------------------------------------------------
    # What the container did (it exited, it was removed) is a fact whether or not the disk
    # has room to record it: the table moves on in memory, keeps the writes that failed,
    # gives up its reserved space, and writes them once it can.

    def _persist(self, c: Container, write: Callable[[], None]) -> None:
        if c.id in self._unwritten:
            self._unwritten[c.id] = c  # written later, whole, after the older pending ones
            return
        try:
            write()
        except StorageFull as exc:
            self._unwritten[c.id] = c
            self._storage_full(exc)

    def _persist_deletion(self, container_id: str) -> None:
        if container_id in self._unwritten:
            self._unwritten[container_id] = None
            return
        try:
            self._repo.delete(container_id)
        except StorageFull as exc:
            self._unwritten[container_id] = None
            self._storage_full(exc)

    def _storage_full(self, exc: StorageFull) -> None:
        freed = self._reserve is not None and self._reserve.give_up()
        log.error("%s: keeping container state changes in memory until they can be written%s",
                  exc.message, " (the reserved space is freed for them)" if freed else "")  # fmt: skip
        self._flushing.set()

    def _write_back(self) -> bool:
        """Write what is pending, oldest first; False when the disk is still full."""
        for container_id in list(self._unwritten):
            c = self._unwritten[container_id]
            try:
                if c is None:
                    self._repo.delete(container_id)
                else:
                    self._repo.save(c)
            except StorageFull:
                return False
            del self._unwritten[container_id]
        return True

    async def _flush(self) -> None:
        while True:
            await self._flushing.wait()
            if self._write_back():
                log.info("container state changes kept during a full disk are written")
                self._flushing.clear()
                if self._reserve is not None and not await asyncio.to_thread(self._reserve.take):
                    self._flushing.set()  # no room to reserve yet: look again soon
            await asyncio.sleep(_FLUSH_RETRY)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self._reserve is not None:
            await asyncio.to_thread(self._reserve.take)
        self._tasks.spawn(self._flush(), "write-back")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(kind, exc, tb)
        if self._unwritten and not self._write_back():  # one last try before the daemon ends
            log.error("%d container state changes could not be written: the disk is still full", len(self._unwritten))

    # ---- waiting -----------------------------------------------------------------------

    def next_exit(self, container_id: str) -> asyncio.Future[ExitStatus]:
        """Resolved at the container's next exit (or its removal)."""
        fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self.live(container_id).exit_waiters.append(fut)
        return fut

    def removal(self, container_id: str) -> asyncio.Future[ExitStatus]:
        fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self.live(container_id).removal_waiters.append(fut)
        return fut

    def notify_exit(self, container_id: str, status: ExitStatus) -> None:
        live = self._live[container_id]
        waiters, live.exit_waiters = live.exit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(status)

    def counts(self) -> tuple[int, int, int, int]:
        running = paused = stopped = 0
        for c in self._containers.values():
            if c.state.status is ContainerStatus.RUNNING:
                running += 1
            elif c.state.status is ContainerStatus.PAUSED:
                paused += 1
            else:
                stopped += 1
        return len(self._containers), running, paused, stopped
