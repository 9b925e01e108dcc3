"""Volumes: create, inspect, list, remove, prune, and the ones containers name on first use.

One owner for every volume (an identity map by name); readers take the current snapshot.
A change decides first (name, driver, in use), then makes or removes the directory in a
thread, then writes one row and publishes; a failure after the directory was made removes
it, so nothing is left half-made. A removal sets the data aside before the row goes, and
deletes it after (volumes/local.py), so a row never outlives its data and half-removed data
is never taken for a new volume's.

A volume whose options name a filesystem (tmpfs, a bind of a host directory...) has it
mounted on its `_data` while containers using it run, as dockerd's local driver counts
them: the first start mounts, the last exit unmounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from dockyard.engine.events import EventBus
from dockyard.errors import Conflict, NotFound
from dockyard.model import ids
from dockyard.model.filters import Filters
from dockyard.model.volumes import (
    ANONYMOUS_LABEL,
    LOCAL,
    Volume,
    check_driver,
    check_name,
    check_options,
    local_options,
    prunable,
    select,
)
from dockyard.store.volumes import VolumeRepository
from dockyard.volumes.local import LocalVolumes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """`POST /volumes/create`, parsed (api/schemas/volumes.py). labels/options None: not sent."""

    name: str = ""
    driver: str = LOCAL
    labels: Mapping[str, str] | None = None
    options: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Pruned:
    names: tuple[str, ...]
    space: int


def _created_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class VolumeService:
    def __init__(
        self,
        repo: VolumeRepository,
        local: LocalVolumes,
        events: EventBus,
        users_of: Callable[[str], list[str]] = lambda name: [],
    ) -> None:
        """`users_of(name)`: ids of the containers whose mounts name the volume."""
        self._repo = repo
        self._local = local
        self._events = events
        self._users_of = users_of
        self._volumes: dict[str, Volume] = {}
        self._lock = asyncio.Lock()  # creations and removals, one at a time
        self._claims: dict[str, list[str]] = {}  # volume -> containers being created that name it
        self._holders: dict[str, set[str]] = {}  # volume -> running containers holding its mount
        self._mount_lock = asyncio.Lock()  # mounts and unmounts, one at a time (each is quick)

    async def start(self) -> None:
        """Load the rows, and finish what a crash left of a create or a removal."""
        self._volumes = {v.name: v for v in await asyncio.to_thread(self._repo.all)}
        swept = await asyncio.to_thread(self._local.sweep, list(self._volumes))
        if swept:
            log.info("removed %d volume directories a crash left half-made or half-removed", swept)

    # ---- reading ----------------------------------------------------------------------

    def get(self, name: str) -> Volume:
        found = self._volumes.get(name)
        if found is None:
            raise NotFound(f"get {name}: no such volume")
        return found

    def mountpoint(self, v: Volume) -> str:
        return str(self._local.mountpoint(v.name))

    def users(self, name: str) -> list[str]:
        return [*self._users_of(name), *self._claims.get(name, ())]

    def in_use(self) -> frozenset[str]:
        return frozenset(name for name in self._volumes if self.users(name))

    def query(self, filters: Filters) -> list[Volume]:
        return select(self._volumes.values(), filters, self.in_use())

    def all(self) -> list[Volume]:
        return sorted(self._volumes.values(), key=lambda v: v.name)

    def ref_count(self, name: str) -> int:
        return len(self.users(name))

    async def size(self, v: Volume) -> int:
        return await asyncio.to_thread(self._local.size, v.name)

    # ---- changing ---------------------------------------------------------------------

    async def create(self, request: CreateRequest) -> Volume:
        """Make a volume; one that exists already is returned as it is (dockerd's answer).
        One asked without a name is anonymous, as dockerd labels it (prune takes it)."""
        name = request.name or ids.new_id()
        labels = request.labels
        if not request.name:
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        check_name(name)
        check_driver(name, request.driver or LOCAL)
        check_options(name, request.options or {})
        async with self._lock:
            existing = self._volumes.get(name)
            if existing is not None:
                return existing
            volume = Volume(name, _created_at(), LOCAL, labels, request.options)
            await asyncio.to_thread(self._local.make, name)
            try:
                await asyncio.to_thread(self._repo.add, volume)
            except BaseException:
                await asyncio.shield(asyncio.to_thread(self._local.remove, name))
                raise
            self._volumes[name] = volume
        self._events.publish("volume", "create", name, {"driver": volume.driver})
        return volume

    @contextlib.asynccontextmanager
    async def claimed(
        self, container_id: str, wanted: Iterable[tuple[str, Mapping[str, str], Mapping[str, str]]]
    ) -> AsyncIterator[None]:
        """For a container being created: its volumes, (name, labels, driver options), made
        where missing (labels and options None when none were given, as dockerd makes them on
        first use; one that exists keeps its own) and counted in use until the block ends, by
        when the container is in the table or was not made."""
        held: list[str] = []
        try:
            for name, (labels, options) in {name: (labels, options) for name, labels, options in wanted}.items():
                await self.create(CreateRequest(name, labels=labels or None, options=options or None))
                self._claims.setdefault(name, []).append(container_id)
                held.append(name)
            yield
        finally:
            for name in held:
                claims = self._claims[name]
                claims.remove(container_id)
                if not claims:
                    del self._claims[name]

    async def remove(self, name: str, *, force: bool = False) -> None:
        """Remove a volume and its data; refused while a container uses it, `force` or not."""
        async with self._lock:
            volume = self._volumes.get(name)
            if volume is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            await self._drop(volume)

    async def prune(self, filters: Filters, *, all_named: bool) -> Pruned:
        async with self._lock:
            chosen = prunable(self._volumes.values(), filters, self.in_use(), all_named=all_named)
            names, space = [], 0
            for v in chosen:
                space += await asyncio.to_thread(self._local.size, v.name)
                await self._drop(v)
                names.append(v.name)
        return Pruned(tuple(names), space)

    async def _drop(self, volume: Volume) -> None:
        # Set aside (unmounted, renamed: atomic), then the row, then the data. A crash before
        # the row goes leaves the row and its data, put back at start-up; after, data set
        # aside under a name no volume has, deleted at start-up. A failed delete likewise.
        name = volume.name
        async with self._mount_lock:
            aside = await asyncio.shield(asyncio.to_thread(self._local.set_aside, name))
        try:
            await asyncio.to_thread(self._repo.delete, name)
        except BaseException:
            if aside is not None:
                await asyncio.shield(asyncio.to_thread(self._local.put_back, name, aside))
            raise
        self._volumes.pop(name, None)
        self._holders.pop(name, None)
        self._events.publish("volume", "destroy", name, {"driver": volume.driver})
        if aside is not None:
            try:
                await asyncio.shield(asyncio.to_thread(self._local.discard, aside))
            except Exception:
                log.exception("volume %s: its data could not be deleted; start-up will try again", name)

    # ---- mounts, counted per running container ---------------------------------------

    def _mounted_kind(self, names: Iterable[str]) -> list[str]:
        """Of `names`, the volumes whose options name a filesystem to mount, each once."""
        found = []
        for name in dict.fromkeys(names):
            v = self._volumes.get(name)
            if v is not None and local_options(v.options).needs_mount:
                found.append(name)
        return found

    async def mount_for(self, container_id: str, names: Iterable[str]) -> None:
        """A container starts: each of its volumes with a filesystem is mounted unless another
        running user has it mounted already. A failure unmounts what this call mounted."""
        async with self._mount_lock:
            done: list[str] = []
            try:
                for name in self._mounted_kind(names):
                    holders = self._holders.setdefault(name, set())
                    if not holders and not await asyncio.to_thread(self._local.is_mounted, name):
                        options = local_options(self._volumes[name].options)
                        await asyncio.to_thread(self._local.mount, name, options)
                    holders.add(container_id)
                    done.append(name)
            except BaseException:
                await asyncio.shield(self._let_go(container_id, done))
                raise

    async def unmount_for(self, container_id: str, names: Iterable[str]) -> None:
        """A container stopped (or its start failed): the last user of a volume unmounts it
        (so does one nobody counted, which ended while the daemon was away)."""
        async with self._mount_lock:
            await asyncio.shield(self._let_go(container_id, self._mounted_kind(names)))

    async def _let_go(self, container_id: str, names: Iterable[str]) -> None:
        for name in names:
            holders = self._holders.get(name, set())
            holders.discard(container_id)
            if holders:
                continue
            self._holders.pop(name, None)
            try:
                await asyncio.to_thread(self._local.unmount, name)
            except Exception:
                log.exception("volume %s: unmount failed", name)

    def adopt(self, container_id: str, names: Iterable[str]) -> None:
        """A container found running at start-up holds its volumes' mounts already."""
        for name in self._mounted_kind(names):
            self._holders.setdefault(name, set()).add(container_id)

    async def unmount_idle(self) -> None:
        """Start-up, after the running containers were adopted: a volume still mounted that
        no running container holds (its users ended while the daemon was away) is unmounted."""
        async with self._mount_lock:
            for name in self._mounted_kind(self._volumes):
                if not self._holders.get(name) and await asyncio.to_thread(self._local.is_mounted, name):
                    log.info("volume %s: mounted with no running user; unmounting", name)
                    await asyncio.to_thread(self._local.unmount, name)

    def holders(self, name: str) -> frozenset[str]:
        """The running containers holding the volume's mount (none for a plain directory)."""
        return frozenset(self._holders.get(name, ()))
