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
from dockyard.api.routes import system as system_routes
from dockyard.config import DaemonConfig
from dockyard.engine.system import ENGINE_VERSION, Counts, SystemService
from dockyard.linux.lockfile import LockFile

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


class _NoCounts:
    def counts(self) -> Counts:
        return Counts(0, 0, 0, 0, 0)


async def _serve(config: DaemonConfig) -> None:
    server_header = f"dockyard/{ENGINE_VERSION} (linux)"
    system = SystemService(config, _daemon_id(config.data_root), _NoCounts())
    router = Router([*system_routes.routes(system)])
    api = ApiServer(router, server_header, config.tls)
    api.check_free(config.hosts)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with asyncio.TaskGroup() as group:
        await api.start(config.hosts, group)
        log.info("dockyard %s ready (data root %s)", ENGINE_VERSION, config.data_root)
        await stop.wait()
        log.info("shutting down")
        await api.stop()


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
