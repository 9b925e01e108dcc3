"""The composition root: builds every component, serves, and shuts down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from dockyard.api.listeners import ApiServer
from dockyard.api.router import Router
from dockyard.api.routes import archive as archive_routes
from dockyard.api.routes import builds as build_routes
from dockyard.api.routes import commits as commit_routes
from dockyard.api.routes import containers as container_routes
from dockyard.api.routes import disk_usage as disk_usage_routes
from dockyard.api.routes import execs as exec_routes
from dockyard.api.routes import images as image_routes
from dockyard.api.routes import networks as network_routes
from dockyard.api.routes import processes as process_routes
from dockyard.api.routes import registry as registry_routes
from dockyard.api.routes import system as system_routes
from dockyard.api.routes import update as update_routes
from dockyard.api.routes import volumes as volume_routes
from dockyard.config import DaemonConfig
from dockyard.distribution.tls import TlsContexts
from dockyard.engine.archive import ArchiveService
from dockyard.engine.attach import Attachments
from dockyard.engine.builds import BuildService
from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.commits import CommitService
from dockyard.engine.connections import Connections
from dockyard.engine.containers import ContainerService
from dockyard.engine.distributions import DistributionService
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.events import EventBus
from dockyard.engine.execs import ExecService
from dockyard.engine.exits import ExitMonitor
from dockyard.engine.firewalling import Firewalling
from dockyard.engine.health import HealthMonitor
from dockyard.engine.imagemanifests import ImageManifests
from dockyard.engine.images import ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.engine.networks import NetworkService
from dockyard.engine.pulls import PullService
from dockyard.engine.pushes import PushService
from dockyard.engine.reconcile import Reconciler
from dockyard.engine.restarts import RestartManager
from dockyard.engine.rootfs import RootfsMounts
from dockyard.engine.staging import MountStaging
from dockyard.engine.stats import StatsService
from dockyard.engine.system import ENGINE_VERSION, Counts, SystemService
from dockyard.engine.table import ContainerTable
from dockyard.engine.update import UpdateService
from dockyard.engine.volumes import VolumeService
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.cgroupstats import CgroupStatsReader
from dockyard.linux.fs import SpaceReserve
from dockyard.linux.lockfile import LockFile
from dockyard.model.registries import RegistrySettings
from dockyard.network.bridge import Bridges, retired_marker
from dockyard.network.dns import DnsServers
from dockyard.network.firewall import Firewall
from dockyard.network.netns import NetnsPool
from dockyard.network.veth import Veths
from dockyard.runtime.catalog import resolve_runtimes
from dockyard.runtime.driver import RuntimeDriver
from dockyard.runtime.logship import LogShipping
from dockyard.runtime.monitor import choose_monitor
from dockyard.runtime.seccomp import SeccompProfiles
from dockyard.store.blobs import BlobLocations
from dockyard.store.containers import ContainerRepository
from dockyard.store.content import ContentStore
from dockyard.store.db import Database
from dockyard.store.events import EventRepository
from dockyard.store.images import ImageRepository
from dockyard.store.networks import NetworkRepository
from dockyard.store.volumes import VolumeRepository
from dockyard.volumes.local import LocalVolumes

log = logging.getLogger(__name__)

_RESERVE = 16 * 1024 * 1024


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level={"warn": logging.WARNING, "fatal": logging.CRITICAL}.get(level, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import uuid

        value = str(uuid.uuid4())
        path.write_text(value + "\n")
        return value


class _Counts:
    def __init__(self, table: ContainerTable, images: ImageService) -> None:
        self._table = table
        self._images = images

    def counts(self) -> Counts:
        total, running, paused, stopped = self._table.counts()
        return Counts(total, running, paused, stopped, self._images.count())


async def _serve(config: DaemonConfig) -> None:
    server_header = f"dockyard/{ENGINE_VERSION} (linux)"
    db = Database(config.data_root / "dockyard.db")
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _compose_and_serve(config, db, stack, server_header)
    finally:
        db.close()


async def _compose_and_serve(
    config: DaemonConfig, db: Database, stack: contextlib.AsyncExitStack, server_header: str
) -> None:
    """Build every component in dependency order; each with background work is entered
    here, so leaving the stack (in reverse) ends the API first and the exit watchers last."""
    events = EventBus(EventRepository(db))
    # Space held back for the database, given up when the disk fills (engine/table.py).
    reserve = SpaceReserve(config.data_root / "reserve", _RESERVE)
    table = await stack.enter_async_context(ContainerTable(ContainerRepository(db), reserve))
    content = ContentStore(config.data_root / "content")
    dirs = LayerDirs(config.data_root / "overlay")
    images = ImageService(ImageRepository(db), content, dirs, events, config.data_root / "tmp", table)
    manifests = ImageManifests(ContentStore(config.data_root / "manifests"), images, table)
    await asyncio.to_thread(manifests.sweep)
    registries = RegistrySettings.build(config.insecure_registries, config.registry_mirrors)
    locations = BlobLocations(db)
    pulling = PullService(images, manifests, events, config.data_root / "downloads", registries,
                          TlsContexts(config.registry_certs_dir), locations=locations)  # fmt: skip
    pulls = await stack.enter_async_context(pulling)
    pushes = await stack.enter_async_context(PushService(images, manifests, locations, events, pulls.registry))
    volumes = VolumeService(VolumeRepository(db), LocalVolumes(config.data_root / "volumes"), events,
                            users_of=table.volume_users)  # fmt: skip
    await volumes.start()
    monitor = choose_monitor(config.monitor)
    log.info("container monitor: %s (%s)", monitor.kind, monitor.path)
    driver = RuntimeDriver(config.runtimes, config.exec_root / "runtime", config.exec_root / "seccomp", monitor)

    def files(container_id: str) -> ContainerFiles:
        return ContainerFiles(config, container_id)

    attachments = Attachments(table, lambda cid: files(cid).attach_socket, events)
    networks = NetworkService(NetworkRepository(db), Bridges(retired_marker(config.data_root)), events, config.network,
                              endpoints_of=lambda network_id: endpoints.attached(network_id),
                              changed=lambda: firewalling.apply(whole=True),
                              created=lambda network: connections.adopt(network))  # fmt: skip
    await stack.enter_async_context(networks)
    endpoints = Endpoints(networks, Veths(), containers=table.resolve)
    firewall = Firewall(config.network.firewall_table) if config.network.iptables else None
    firewalling = Firewalling(networks, firewall)
    await networks.start()
    endpoints.restore(c for c in table.all() if c.state.running)
    await firewalling.restore(c for c in table.all() if c.state.running)
    netns = await stack.enter_async_context(NetnsPool(config.exec_root / "netns"))
    exits = await stack.enter_async_context(ExitMonitor())
    mounts = RootfsMounts(dirs, images.layer_cache_ids)
    execs = await stack.enter_async_context(
        ExecService(table, driver, files, lambda c: dirs.merged(c.rw_layer), events)
    )
    health = await stack.enter_async_context(HealthMonitor(table, execs, events))
    shipping = await stack.enter_async_context(LogShipping())
    logs = LogService(table, shipping, files, config.log_config)
    seccomp = SeccompProfiles(config.seccomp_profile, config.seccomp_profile_json)
    await asyncio.to_thread(seccomp.load)  # the default profile, read and converted once
    dns = await stack.enter_async_context(DnsServers())
    lifecycle = await stack.enter_async_context(
        Lifecycle(table, driver, attachments, exits, netns, mounts, health, logs, seccomp, files, events, endpoints, dns,
                  firewalling, volumes,
                  staging=MountStaging(files, lambda i: [str(dirs.diff(c)) for c in images.layer_cache_ids(i)]))
    )
    containers = await stack.enter_async_context(
        ContainerService(config, table, lifecycle, attachments, driver, execs, logs, images, dirs, events, endpoints,
                         volumes)
    )
    restarts = await stack.enter_async_context(RestartManager(table, lifecycle, exits, containers))
    await Reconciler(
        table, exits, restarts, netns, mounts, health, logs, lifecycle, driver, images, dirs,
        config.data_root / "tmp", lifecycle.boot_id,
    ).run()
    await endpoints.mend([c for c in table.all() if c.state.running])
    lifecycle.restore_dns([c for c in table.all() if c.state.running])

    connections = Connections(table, networks, endpoints, events, firewalling, files=files,
                              serve_dns=lifecycle.serve_dns, dns_running=lambda netns: netns in dns)
    archives = ArchiveService(table, mounts, dirs, images.diff_dirs, files, events, config.data_root / "tmp")
    stats = StatsService(table, CgroupStatsReader(), lambda c: f"/dockyard/{c.id}", events)
    system = SystemService(config, _daemon_id(config.data_root), _Counts(table, images), seccomp=seccomp, monitor=monitor)
    updates = UpdateService(table, driver, events)
    router = Router(
        [
            *system_routes.routes(system, events),
            *image_routes.routes(images, pulls, manifests, pushes),
            *registry_routes.routes(pulls, DistributionService(pulls.registries)),
            *container_routes.routes(containers, lifecycle, logs, attachments),
            *disk_usage_routes.routes(containers, images, table.count_using, volumes),
            *process_routes.routes(stats),
            *exec_routes.routes(execs),
            *archive_routes.routes(archives),
            *commit_routes.routes(CommitService(table, lifecycle, images, dirs, events)),
            *build_routes.routes(BuildService(images, containers, lifecycle, logs, dirs, config.data_root / "tmp", pulls)),
            *update_routes.routes(updates),
            *network_routes.routes(networks, endpoints, connections),
            *volume_routes.routes(volumes),
        ]
    )
    api = ApiServer(router, server_header, config.tls)
    api.check_free(config.hosts)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stack.enter_async_context(api)
    stack.callback(events.close)  # first thing at shutdown: `docker events` clients end
    await api.listen(config.hosts)
    log.info("dockyard %s ready (data root %s)", ENGINE_VERSION, config.data_root)
    await stop.wait()
    if config.live_restore:
        log.info("shutting down; containers keep running")
    else:
        await lifecycle.stop_all(config.shutdown_timeout)
        log.info("shutting down; containers stopped")
    await firewalling.close(keep_rules=config.live_restore)


def run_daemon(config: DaemonConfig) -> int:
    _setup_logging(config.log_level)
    if os.geteuid() != 0:
        log.error("dockyard must run as root")
        return 1
    config = resolve_runtimes(config)  # which runtimes work on this host, and the default
    config.data_root.mkdir(parents=True, exist_ok=True, mode=0o711)
    config.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = LockFile(config.data_root / "dockyard.lock")
    lock.acquire()
    try:
        config.pidfile.parent.mkdir(parents=True, exist_ok=True)
        config.pidfile.write_text(f"{os.getpid()}\n")
        try:
            asyncio.run(_serve(config))
        finally:
            with contextlib.suppress(FileNotFoundError):
                config.pidfile.unlink()
    finally:
        lock.release()
    return 0
