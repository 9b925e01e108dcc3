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
from dockyard.api.routes import containers as container_routes
from dockyard.api.routes import disk_usage as disk_usage_routes
from dockyard.api.routes import images as image_routes
from dockyard.api.routes import system as system_routes
from dockyard.config import DaemonConfig
from dockyard.engine.containers import ContainerService
from dockyard.engine.events import EventBus
from dockyard.engine.images import ImageService
from dockyard.engine.logs import LogService
from dockyard.engine.system import ENGINE_VERSION, Counts, SystemService
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.lockfile import LockFile
from dockyard.network.netns import NetnsPool
from dockyard.store.containers import ContainerRepository
from dockyard.store.content import ContentStore
from dockyard.store.db import Database
from dockyard.store.events import EventRepository
from dockyard.store.images import ImageRepository

log = logging.getLogger(__name__)


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
    def __init__(self, containers: ContainerService, images: ImageService) -> None:
        self._containers = containers
        self._images = images

    def counts(self) -> Counts:
        total, running, paused, stopped = self._containers.counts()
        return Counts(total, running, paused, stopped, self._images.count())


async def _serve(config: DaemonConfig) -> None:
    server_header = f"dockyard/{ENGINE_VERSION} (linux)"
    db = Database(config.data_root / "dockyard.db")
    events = EventBus(EventRepository(db))
    content = ContentStore(config.data_root / "content")
    dirs = LayerDirs(config.data_root / "overlay")
    images = ImageService(ImageRepository(db), content, dirs, events, config.data_root / "tmp")
    netns = NetnsPool(config.exec_root / "netns")
    containers = ContainerService(config, ContainerRepository(db), images, dirs, events, netns)
    images.set_users(containers)
    logs = LogService(containers)
    system = SystemService(config, _daemon_id(config.data_root), _Counts(containers, images))
    router = Router(
        [
            *system_routes.routes(system, events),
            *image_routes.routes(images, dirs, containers.count_using),
            *container_routes.routes(containers, images, logs, dirs),
            *disk_usage_routes.routes(containers, images),
        ]
    )
    api = ApiServer(router, server_header, config.tls)
    api.check_free(config.hosts)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        async with asyncio.TaskGroup() as group:
            containers.bind(group)
            await containers.reconcile()
            await api.start(config.hosts, group)
            log.info("dockyard %s ready (data root %s)", ENGINE_VERSION, config.data_root)
            await stop.wait()
            log.info("shutting down; containers keep running")
            await api.stop()
            await netns.close()
            raise _Shutdown
    except* _Shutdown:
        pass
    finally:
        db.close()


class _Shutdown(Exception):
    """Ends the daemon's TaskGroup, cancelling exit watchers (conmon keeps the containers)."""


def run_daemon(config: DaemonConfig) -> int:
    _setup_logging(config.log_level)
    if os.geteuid() != 0:
        log.error("dockyard must run as root")
        return 1
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
