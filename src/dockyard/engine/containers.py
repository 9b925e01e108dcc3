"""Containers: create, start (the API's), remove, prune, rename, and the read side (ps, inspect).

The table (engine/table.py) holds every container; this service makes and unmakes them.
Running containers are stopped through the lifecycle; their writable layer and files go to
the trash (renames, fast), emptied in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, replace
from typing import Self

from dockyard.config import DaemonConfig
from dockyard.engine.admission import check_on_host, check_platform_on_host
from dockyard.engine.attach import Attachments
from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.events import EventBus
from dockyard.engine.execs import ExecService
from dockyard.engine.images import ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.engine.staging import unstage
from dockyard.engine.table import ContainerTable, Live
from dockyard.engine.volumes import VolumeService
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, NotModified
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.fs import Trash, remove_tree
from dockyard.model import times
from dockyard.model.containerquery import select
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
    merge_image_config,
)
from dockyard.model.events import attributes_of
from dockyard.model.filters import Filters, parse_time_filter
from dockyard.model.hostconfig import NamespaceKind, NamespaceMode
from dockyard.model.ids import new_id
from dockyard.model.links import renamed_links
from dockyard.model.mountpoints import anonymous_volumes, inherited, parse_volumes_from, settle
from dockyard.model.mounts import MountOrigin, MountSpec
from dockyard.model.names import validate_name
from dockyard.model.ports import (
    CONFLICT_EXPOSE,
    CONFLICT_PUBLISH,
    HOST_MODE_WARNING,
    exposed_ports,
    validate_port_bindings,
)
from dockyard.model.volumes import ANONYMOUS_LABEL
from dockyard.runtime.driver import RuntimeDriver
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sizes:
    rw: int  # SizeRw: the writable layer
    root_fs: int  # SizeRootFs: that plus the image


@dataclass(frozen=True)
class ContainerPaths:
    resolv: str
    hostname: str
    hosts: str
    log: str
    volumes: str  # the volumes' root: a volume mount's Source is under it
    staging: str = ""  # where its image mounts are staged (engine/staging.py)


@dataclass(frozen=True)
class GraphDriver:
    lower: str
    merged: str
    upper: str
    work: str


@dataclass(frozen=True)
class Created:
    container: Container
    warnings: tuple[str, ...]  # what the create response says (the CLI prints each)


@dataclass(frozen=True)
class ContainerDetails:
    """What `inspect` shows beyond the container record itself."""

    container: Container
    paths: ContainerPaths
    graph: GraphDriver
    sizes: Sizes | None
    exec_ids: tuple[str, ...] = ()


class ContainerService(Component):
    def __init__(
        self,
        config: DaemonConfig,
        table: ContainerTable,
        lifecycle: Lifecycle,
        attachments: Attachments,
        driver: RuntimeDriver,
        execs: ExecService,
        logs: LogService,
        images: ImageService,
        dirs: LayerDirs,
        events: EventBus,
        endpoints: Endpoints,
        volumes: VolumeService,
    ) -> None:
        self._endpoints = endpoints
        self._volumes = volumes
        self.volumes_root = str(config.data_root / "volumes")
        self._execs = execs
        self._logs = logs
        self._config = config
        self._table = table
        self._lifecycle = lifecycle
        self._attachments = attachments
        self._driver = driver
        self._images = images
        self._dirs = dirs
        self._events = events
        self._trash = Trash(config.data_root / "trash")
        self._tasks = Tasks("containers")

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.empty_trash()  # what a crash mid-removal left
        return self

    def files(self, container_id: str) -> ContainerFiles:
        return ContainerFiles(self._config, container_id)

    def empty_trash(self) -> None:
        self._tasks.spawn(asyncio.to_thread(self._trash.empty), "trash")

    # ---- reads -------------------------------------------------------------------------

    def resolve(self, ref: str) -> Container:
        return self._table.resolve(ref)

    def query(self, filters: Filters, include_all: bool, limit: int = -1) -> list[Container]:
        return select(self._table.all(), filters, include_all=include_all, limit=limit, image_ids=self._images.family)

    async def sizes(self, c: Container) -> Sizes:
        rw = await asyncio.to_thread(self._dirs.size, c.rw_layer)
        return Sizes(rw, rw + self._images.size_of(c.image_id))

    async def details(self, ref: str, *, size: bool = False) -> ContainerDetails:
        c = self._table.resolve(ref)
        files = self.files(c.id)
        graph = GraphDriver(
            lower=":".join(self._images.diff_dirs(c.image_id)),
            merged=str(self._dirs.merged(c.rw_layer)),
            upper=str(self._dirs.diff(c.rw_layer)),
            work=str(self._dirs.root / c.rw_layer / "work"),
        )
        paths = ContainerPaths(str(files.resolv), str(files.hostname), str(files.hosts), self._logs.log_path(c),
                               files.volumes_root, str(files.bundle / "mounts"))  # fmt: skip
        sizes = await self.sizes(c) if size else None
        return ContainerDetails(c, paths, graph, sizes, tuple(self._execs.running_ids(c.id)))

    # ---- create ------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec, name: str, platform: str = "") -> Created:
        if platform:
            await asyncio.to_thread(check_platform_on_host, platform)
        image = self._images.resolve(spec.image)
        spec, mount_warnings = self._image_mounts(spec)
        container_id = new_id()
        _check_ports(spec)
        spec = merge_image_config(spec, image.image.config)
        spec = self._settle_mounts(spec)  # after the merge: the image's VOLUMEs get anonymous volumes too
        exposed_ports(spec.exposed_ports)  # the image's too
        spec = self._endpoints.resolve(spec)  # the networks it joins, each found and checked
        mode = spec.host.network_mode
        if mode.startswith("container:"):
            if spec.hostname:
                raise InvalidArgument("conflicting options: hostname and the network mode")
            try:  # as dockerd: one not found now is looked for again at start
                other = self._table.resolve(mode.partition(":")[2])
                spec = replace(spec, hostname=other.spec.hostname,
                               host=replace(spec.host, network_mode=f"container:{other.id}"))  # fmt: skip
            except NotFound:
                pass
        if not spec.hostname:
            spec = replace(spec, hostname=socket.gethostname() if mode == "host" else container_id[:12])
        if not spec.argv:
            raise InvalidArgument("no command specified")
        runtime = spec.host.runtime or self._config.default_runtime
        self._driver.check(runtime)
        if spec.host.auto_remove and spec.host.restart_policy.name not in ("", "no"):
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        spec = replace(spec, host=replace(self._joined_namespaces(spec.host),
                                          log_config=self._logs.config_for_create(spec.host.log_config)))  # fmt: skip
        warnings = await asyncio.to_thread(check_on_host, spec)  # what this host cannot run: 400, nothing made
        warnings = (*mount_warnings, *warnings)
        # Volumes it names are made on first use, and held in use until the container is in the
        # table: a `volume rm` or prune meanwhile is refused. The anonymous ones made for it go
        # again if the create fails (named ones stay, as dockerd's).
        volumes = [(m.source, _volume_labels(m), dict(m.volume_options)) for m in spec.host.all_mounts if m.type == "volume"]
        fresh = [m.source for m in spec.host.all_mounts
                 if m.type == "volume" and m.anonymous and m.origin is not MountOrigin.VOLUMES_FROM]  # fmt: skip
        try:
            return await self._create_claimed(container_id, spec, name, image.id, runtime, warnings, volumes)
        except BaseException:
            await asyncio.shield(self._remove_volumes(fresh))
            raise

    async def _create_claimed(
        self,
        container_id: str,
        spec: ContainerSpec,
        name: str,
        image_id: str,
        runtime: str,
        warnings: tuple[str, ...],
        volumes: list[tuple[str, dict[str, str], dict[str, str]]],
    ) -> Created:
        mode = spec.host.network_mode
        async with self._volumes.claimed(container_id, volumes):
            if mode == "host" and any(spec.host.port_bindings.values()):
                warnings = (*warnings, HOST_MODE_WARNING)
            name = self._table.reserve_name(name, container_id)
            files = self.files(container_id)
            rw_layer = self._dirs.new_cache_id()
            container = Container(
                id=container_id,
                name=name,
                created=times.now(),
                image_id=image_id,
                spec=spec,
                state=ContainerState(),
                runtime=runtime,
                rw_layer=rw_layer,
            )
            try:
                await asyncio.to_thread(self._prepare_files, files, rw_layer, spec.hostname)
                self._table.add(container)
            except BaseException:
                self._table.release_name(name)
                await asyncio.to_thread(self._remove_files, files, rw_layer)
                raise
            self._events.publish("container", "create", container_id, attributes_of(container))
            return Created(container, warnings)

    def _image_mounts(self, spec: ContainerSpec) -> tuple[ContainerSpec, tuple[str, ...]]:
        """`--mount type=image`: each image is found now (dockerd's 404 otherwise) and kept
        by id, so a tag moved later does not change what the container mounts."""
        if not any(m.type == "image" for m in spec.host.mounts):
            return spec, ()
        mounts = tuple(
            replace(m, image_id=self._images.resolve(m.source).id) if m.type == "image" else m for m in spec.host.mounts
        )
        return replace(spec, host=replace(spec.host, mounts=mounts)), ("Image mount is an experimental feature",)

    def _settle_mounts(self, spec: ContainerSpec) -> ContainerSpec:
        """The container's mount points (model/mountpoints.py), kept with it: --volumes-from's
        containers looked up now, anonymous volumes named."""
        sources = []
        for text in spec.host.volumes_from:
            wanted = parse_volumes_from(text)
            try:
                other = self._table.resolve(wanted.container)
            except NotFound as exc:  # dockerd's 400 (a 404 would have the CLI pull the image)
                raise InvalidArgument(str(exc)) from exc
            sources.append(inherited(other.spec.host.all_mounts, wanted.read_only))
        points = settle(spec.host.all_mounts, spec.volumes, sources, new_id)
        return replace(spec, host=replace(spec.host, mount_points=points))

    async def _remove_volumes(self, names: list[str]) -> None:
        """Remove these (anonymous) volumes; one another container still uses stays, as dockerd."""
        for volume in names:
            with contextlib.suppress(NotFound, Conflict):
                await self._volumes.remove(volume)

    def _joined_namespaces(self, h: HostSpec) -> HostSpec:
        """`--ipc/--pid container:<name>` name the other container by id from now on, as
        dockerd rewrites them. One that does not exist is left as given: the start refuses
        it (a 404 at create would make the CLI try to pull the image)."""
        ipc, pid = self._by_id(h.ipc), self._by_id(h.pid)
        return replace(h, ipc_mode=ipc or h.ipc_mode, pid_mode=pid or h.pid_mode)

    def _by_id(self, mode: NamespaceMode) -> str:
        """`container:<id>` for a mode naming an existing container; "" otherwise."""
        if mode.kind is not NamespaceKind.CONTAINER:
            return ""
        other = self._find(mode.container)
        return f"container:{other.id}" if other is not None else ""

    def _find(self, ref: str) -> Container | None:
        try:
            return self._table.resolve(ref)
        except (NotFound, InvalidArgument):
            return None

    def _prepare_files(self, files: ContainerFiles, rw_layer: str, hostname: str) -> None:
        self._dirs.create_rw(rw_layer)
        files.write_host_files(hostname)

    def _remove_files(self, files: ContainerFiles, rw_layer: str) -> None:
        """Move the container's directories to the trash (fast renames); emptied later."""
        self._dirs.discard(rw_layer, self._trash)
        self._trash.discard(files.data)
        unstage(files.bundle / "mounts")  # never a tree walk into a volume's part bound there
        remove_tree(files.bundle)  # a few small files on tmpfs

    # ---- start (as the API asks it) ----------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self._table.resolve(ref)
        try:
            await self._lifecycle.start(c.id)
        except DockyardError as exc:
            if c.spec.host.auto_remove and not isinstance(exc, NotModified):  # as dockerd: a --rm container that cannot start goes
                with contextlib.suppress(NotFound, Conflict):
                    await self.remove(c.id, force=True, volumes=True)
            raise

    # ---- remove ------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """`volumes` (rm -v, and --rm's own removals): its anonymous volumes go too."""
        for _ in range(3):
            c = self._table.resolve(ref)
            live = self._table.live(c.id)
            if c.state.running or c.state.status is ContainerStatus.RESTARTING:
                if not force:
                    state = "restarting" if c.state.status is ContainerStatus.RESTARTING else "running"
                    raise Conflict(
                        f"cannot remove container \"/{c.name}\": container is {state}: stop the "
                        "container before removing or force remove"
                    )
                self._lifecycle.mark_stopped(c)  # no restart policy brings it back
            if c.state.running:
                await self._lifecycle.kill_for_removal(c)
            async with live.lock:
                current = self._table.get(c.id)
                if current is None:
                    return  # removed meanwhile (auto-remove)
                current = self._lifecycle.call_off_restart(current, live)
                if current.state.running:
                    continue  # an automatic restart won the race: kill it again
                await self._remove_locked(current, live)
                if volumes:
                    await self._remove_volumes(anonymous_volumes(current.spec.host.all_mounts))
                return
        raise Conflict(f"container {ref} keeps starting again; not removing it")

    async def _remove_locked(self, c: Container, live: Live) -> None:
        """The removal itself, under the container's lock, once nothing runs."""
        if c.state.status is ContainerStatus.REMOVING:
            raise Conflict(f"removal of container {c.id} is already in progress")
        self._table.publish(c.id, replace(c.state, status=ContainerStatus.REMOVING))
        if live.runtime_cleanup is not None:
            # The runtime forgets the last run before the container is gone: nothing of it outlives `rm`.
            with contextlib.suppress(Exception):
                await live.runtime_cleanup
            live.runtime_cleanup = None
        await self._logs.removed(c)
        try:
            await asyncio.to_thread(self._remove_files, self.files(c.id), c.rw_layer)
        except Exception:
            self._table.publish(c.id, replace(c.state, status=ContainerStatus.DEAD))
            raise
        self._table.drop(c.id)
        self._attachments.release(c.id)
        self._execs.forget(c.id)
        self.empty_trash()
        self._events.publish("container", "destroy", c.id, attributes_of(c))
        log.debug("container %s: removed", c.id[:12])

    async def prune(self, filters: Filters) -> tuple[list[str], int]:
        """Remove every stopped container the filters select: (ids, bytes freed)."""
        filters.validate(("label", "label!", "until"))
        now = time.time_ns()
        until = min((parse_time_filter(v, now) for v in filters.values("until")), default=None)
        removed: list[str] = []
        freed = 0
        for c in self._table.all():
            if c.state.running or c.state.status is ContainerStatus.REMOVING:
                continue
            if not filters.match_labels(c.spec.labels):
                continue
            if until is not None and times.parse_ns(c.created) > until:
                continue
            size = await asyncio.to_thread(self._dirs.size, c.rw_layer)
            try:
                await self.remove(c.id)
            except (NotFound, Conflict):
                continue  # started or removed meanwhile
            removed.append(c.id)
            freed += size
        self._events.publish("container", "prune", "", {"reclaimed": str(freed)})
        return removed, freed

    # ---- rename ------------------------------------------------------------------------

    async def rename(self, ref: str, new_name: str) -> None:
        c = self._table.resolve(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        new_name = validate_name(new_name)
        if new_name == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        renamed = self._table.rename(c.id, new_name)
        self._endpoints.renamed(c.id, new_name)
        await self._follow_rename(c.name, new_name)
        self._events.publish("container", "rename", c.id, attributes_of(renamed, oldName="/" + c.name))

    async def _follow_rename(self, old: str, new: str) -> None:
        """Legacy links name the linked container: each one naming `old` now names `new`."""
        for other in self._table.all():
            if not other.spec.host.links:
                continue
            try:
                live = self._table.live(other.id)
            except NotFound:
                continue  # removed meanwhile
            async with live.lock:
                current = self._table.get(other.id)
                if current is None:
                    continue
                links = renamed_links(current.spec.host.links, old, new)
                if links != current.spec.host.links:
                    self._table.publish_spec(other.id, replace(current.spec, host=replace(current.spec.host, links=links)))

    def note_attach(self, c: Container) -> None:
        self._events.publish("container", "attach", c.id, attributes_of(c))


def _volume_labels(m: MountSpec) -> dict[str, str]:
    """The labels of a volume made for a mount: VolumeOptions.Labels, and dockerd's anonymous label."""
    return {**dict(m.volume_labels), **({ANONYMOUS_LABEL: ""} if m.anonymous else {})}


def _check_ports(spec: ContainerSpec) -> None:
    """The request's ports, as dockerd checks them at create (before the image's are merged)."""
    validate_port_bindings(spec.host.port_bindings)
    exposed_ports(spec.exposed_ports)
    if spec.host.network_mode.startswith("container:"):
        if any(spec.host.port_bindings.values()) or spec.host.publish_all_ports:
            raise InvalidArgument(CONFLICT_PUBLISH)
        if spec.exposed_ports:
            raise InvalidArgument(CONFLICT_EXPOSE)
